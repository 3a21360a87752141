"""`user-lifecycle`: user create, update and deprovision round trips (checklist item 4).

One test user goes through six steps; after each change the app is watched through the probe
(poll with backoff, up to option ``step_timeout_s``) and the step's propagation
time goes on the timeline:

1. create → the user exists, active, with the email and name sent;
2. update the profile (name and the ``department`` attribute) → reflected;
3. change the email → reflected on the same user, not on a second one;
4. deactivate (``user_updated`` with ``active: false`` / SCIM PATCH ``active``) → no access;
5. reactivate → active again;
6. delete (``user_deleted`` / SCIM DELETE) → deactivated or removed.

With ``probe.access`` configured, access is judged by access, not only by the ``active``
flag: a session and an API token are issued for the user after steps 1 and 5, and after
steps 4 and 6 both must stop working within the step budget ("Access ends on deactivation",
"Access ends on delete": FAIL naming what still works; SKIP without ``probe.access``).

Changes are driven as Scalekit would send them (option ``mode: events``: signed
events straight to the webhook) or as the IdP would (``mode: scim``: SCIM requests to the
directory's endpoint; Scalekit then delivers the webhooks).

Statuses:
  PASS  every step showed the expected state in the app within its budget.
  WARN  the user was removed outright on delete although ``data_model.keep_records_on_delete``
        says the app keeps records (audit history is lost).
  FAIL  a step did not show the expected state in time (the step is named, with the last state
        seen), or the app refused a correctly signed event. When the user never appears, one
        user_created under its legacy name (scalekit.dir.user.create) is sent too: an app
        that acts on that one only is named as such in the finding.
  SKIP  read-only run, the mode's config is missing, or no probe is configured (the changes are
        still sent and must be accepted, but nothing can be observed, so nothing passes). A
        step after one that failed is "not judged" when the app already showed the state it
        waits for (a reactivation after an ignored deactivation), or its start is unknown.
        The profile update is "not observable" (a SKIP finding; the others still PASS the
        check) when the probe shows neither the user's name nor its department: the app
        would look the same before and after it.
  ERROR the SCIM endpoint or the probe failed, so the app could not be evaluated; a probe
        failure at the create leaves the later steps "not judged", never failed.
"""

from __future__ import annotations

from scim_readiness.api import (
    CheckInfo,
    FindingCode,
    Need,
    ReadOnly,
    deferred,
)
from scim_readiness.plugin.options import RoundTripOptions

_DOCS = "https://docs.scalekit.com/reference/webhooks/overview"

OPTIONS = FindingCode(
    "ULC001",
    "The check's options are valid",
    "Invalid options would drive the wrong channel or wait the wrong time.",
    "Set checks.user-lifecycle.options.mode to events or scim and step_timeout_s to a number "
    "of seconds.",
)
MODE = FindingCode(
    "ULC002",
    "The config can drive the chosen mode",
    "mode events needs the webhook URL and secret, mode scim the directory's SCIM endpoint; "
    "without them no change can be made.",
    "Add the missing section to the config, or choose the other mode.",
)
CREATE = FindingCode(
    "ULC003",
    "A user created in the directory appears in the app, active, with its email and name",
    "Users the directory provisions must be able to sign in; an app that does not create them "
    "on the current event names leaves every new hire locked out.",
    "Handle organization.directory.user_created (and user_updated) as an upsert keyed on "
    "data.id; match the current event type names exactly.",
    _DOCS,
)
PROFILE = FindingCode(
    "ULC004",
    "A profile update (name, department) reaches the app",
    "Profile changes in the IdP must reach the app, or names and attributes drift from the "
    "source of truth.",
    "Apply given_name, family_name and the attributes you store on "
    "organization.directory.user_updated.",
    _DOCS,
)
EMAIL = FindingCode(
    "ULC005",
    "An email change reaches the same app user, without creating a second one",
    "Emails change (marriage, domain moves); keying users on email instead of the directory "
    "user id duplicates or orphans accounts.",
    "Look users up by data.id (the directory user id), then update the email.",
    _DOCS,
)
DEACTIVATE = FindingCode(
    "ULC006",
    "A deactivation in the directory makes the app user inactive (or removes it)",
    "Suspending someone in the IdP arrives as user_updated with active: false; an app that "
    "ignores it keeps a departed employee's access.",
    "On user_updated with data.active false, deactivate the user and end their sessions.",
    _DOCS,
)
REACTIVATE = FindingCode(
    "ULC007",
    "A reactivation in the directory makes the app user active again",
    "A reinstated user must regain access without a support ticket.",
    "On user_updated with data.active true, reactivate the user.",
    _DOCS,
)
DELETE = FindingCode(
    "ULC008",
    "A delete in the directory deactivates or removes the app user (keeping the record when "
    "the app keeps records)",
    "Deleting a user in the IdP must remove access; a 2xx without effect leaves an account "
    "nobody controls.",
    "On organization.directory.user_deleted, deactivate (or delete) the user keyed on data.id "
    "and end their sessions.",
    _DOCS,
)
ACCESS_DEACTIVATION = FindingCode(
    "ULC009",
    "Sessions and API tokens stop working when the user is deactivated",
    "A departed employee keeps acting through a session or an API token issued before the "
    "change, although the app shows the user inactive.",
    "On deactivation, revoke the user's sessions and API tokens (and check the user's state "
    "on every authenticated request).",
)
ACCESS_DELETE = FindingCode(
    "ULC010",
    "Sessions and API tokens stop working when the user is deleted",
    "A departed employee keeps acting through a session or an API token issued before the "
    "change, although the app shows the user gone.",
    "On delete, revoke the user's sessions and API tokens (and check the user's state on "
    "every authenticated request).",
)
LIFECYCLE = FindingCode(
    "ULC011",
    "Every lifecycle change was observed in the app",
    "Acceptance of a change proves nothing about what the app did with it; only the app's "
    "state shows the lifecycle works.",
    "Configure a probe (http or command) so the check can read the app's users, and fix the "
    "steps named in the other findings.",
    _DOCS,
)
CLEANUP = FindingCode(
    "ULC012",
    "The check's test users are removed again",
    "Test users left behind clutter the app and the directory.",
    "Run `scim-readiness cleanup` once the cause is fixed.",
)

CHECK = CheckInfo(
    id="user-lifecycle",
    title="User create, update and deprovision round trips",
    checklist_item=4,
    options=RoundTripOptions,
    needs=(Need.WEBHOOK,),
    mutates=True,
    sharing="shared",  # judges only its own lifecycle* test users
    read_only=ReadOnly.NONE,  # every step changes the app: nothing to run without changes
    docs_url=_DOCS,
    description="Creates, updates, deactivates, reactivates and deletes a test user through "
    "signed events (or the directory's SCIM endpoint) and watches the app through the probe.",
    default_timeout_s=300.0,
    codes=(
        OPTIONS,
        MODE,
        CREATE,
        PROFILE,
        EMAIL,
        DEACTIVATE,
        REACTIVATE,
        DELETE,
        ACCESS_DEACTIVATION,
        ACCESS_DELETE,
        LIFECYCLE,
        CLEANUP,
    ),
)

run = deferred(f"{__name__}.check", "run")
cleanup = deferred(f"{__name__}.check", "cleanup")
