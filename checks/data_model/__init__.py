"""`data-model`: Alignment with the app's user and organisation model (checklist item 7).

Maps the Scalekit organisation to the app's tenant (its ``external_id``, or
``data_model.expected_tenant``), then reconciles the whole directory with the app: every
directory user and group is streamed from the Directory API (30 per page) while the app's
users are streamed from the probe's list endpoint, and a streaming join keyed on the
directory user id reports, with counts and a few samples, users missing in the app, active
app users whose directory user is gone (an offboarding hole), active-state, email, role and
tenant mismatches. Nothing is requested per user, and memory holds one compact tuple per
user still waiting for its partner. Finally the share of directory users lacking each
required attribute.

Essential assertions (PASS needs every one observed; one that could not be is SKIP):
  * every directory user reconciles with the app: at least one directory user (other than
    the checker's test identities) was compared; an empty directory shows nothing.

Statuses:

* PASS: the tenant maps, every user reconciles, required attributes are present.
* WARN: some users lack a required attribute; the probe does not report tenants.
* FAIL: the organisation has no external id / the app files users under another tenant;
  any drift between directory and app (missing, extra active, active, email or role
  mismatch, two app users for one directory user).
* ERROR: Scalekit or the probe failed mid-way (what was read so far is not judged).
* SKIP: no probe configured (or one without ``list_users``), no organisation to read, or
  a directory with no users to compare (unless the app holds active users it lacks: FAIL).
  When the environment's roles cannot be read, the role comparison is a SKIP finding with the
  reason and the rest is judged.

Roles are compared with the roles Scalekit reports for each user (what its events carry);
the config's group→role map (with ``default_role`` and ``precedence``) stands in only when the
directory reports none. Whether the map itself is right is group-roles' question. The
checker's own test identities are left out: mutating checks create and remove them mid-run.

Options (``checks.data-model.options``): see :class:`Options`.
"""

from __future__ import annotations

from typing import Literal

from scim_readiness.api import (
    CheckInfo,
    CheckOptions,
    FindingCode,
    Need,
    deferred,
    option,
)

from .drift import Drift


class Options(CheckOptions):
    compare_roles: bool = option(default=True, description="compare each user's roles")
    samples: int = option(default=5, description="examples listed per kind of mismatch", ge=0)
    progress: bool | Literal["auto"] = option(
        default="auto", description="progress lines on stderr (auto: when it is a terminal)"
    )
    progress_interval_s: float = option(
        default=2.0, description="seconds between progress lines", ge=0
    )


_DOCS = "https://docs.scalekit.com/directory/guides/user-provisioning-basics/"

APP_LISTED = FindingCode(
    "DMD001",
    "The probe can list the app's users",
    "Without a list of the app's users nothing can be compared with the directory; asking "
    "for them one by one would not scale.",
    "Configure probe with list_users (probe.http.list_users, a URL template with {cursor}, "
    "or probe.command.list_users).",
)
TARGET = FindingCode(
    "DMD002",
    "The organisation and its directory can be read from Scalekit",
    "The directory's users are what the app is compared with.",
    "Set scalekit.organization_id (and directory_id) and working client credentials; the "
    "environment check names credential problems.",
)
EXTERNAL_ID = FindingCode(
    "DMD003",
    "The organisation has an external id that maps it to the app's tenant",
    "Without a mapping the app cannot tell which tenant an event's users belong to; apps then "
    "guess (by domain or name), which mixes customers up.",
    "Set the organisation's external id to the app's tenant id when creating it (or update "
    "it via the API).",
    _DOCS,
)
RECONCILED = FindingCode(
    "DMD004",
    "Every directory user reconciles with the app",
    "Drift between the directory and the app means people with access they should not have, "
    "or without access they need.",
    "Fix the kinds of drift the other findings name; when a side could not be listed, check "
    "Scalekit's status and the probe's list_users setting.",
    _DOCS,
)
TENANT = FindingCode(
    "DMD005",
    "The app files the directory's users under the organisation's tenant",
    "Users land in the wrong customer's workspace: they see another tenant's data, or their "
    "own admins cannot manage them.",
    "Look the tenant up by the event's organization_id → organisation.external_id, never use "
    "the Scalekit organisation id itself as the tenant; expose the user's tenant in the probe "
    "(probe.*.fields.tenant) so it can be confirmed.",
    _DOCS,
)

#: How each kind of drift is recorded: its code (what is tested, why it matters, the fix)
#: and the title of its finding. Tenant mismatches are reported with the tenant mapping.
_DRIFT: dict[Drift, tuple[FindingCode, str]] = {
    Drift.MISSING_IN_APP: (
        FindingCode(
            "DMD006",
            "Every active directory user is in the app",
            "People the IdP provisioned cannot use the app.",
            "Replay the missed user_created events (or read the Directory API) and upsert on the "
            "directory user id.",
            _DOCS,
        ),
        "Active directory users are missing in the app",
    ),
    Drift.NOT_LINKED_IN_APP: (
        FindingCode(
            "DMD007",
            "Every directory user in the app is linked by its directory user id, not by email",
            "These people can use the app, but it cannot tell them from a new person when their "
            "email changes, and events keyed on the directory user id (updates, deactivation, "
            "deletion) may not find them.",
            "Store data.id (the directory user id) on each user and look users up by it; link "
            "these existing accounts once by email, then stop matching on email.",
            _DOCS,
        ),
        "Directory users are in the app by email only, not linked by directory user id",
    ),
    Drift.EXTRA_IN_APP: (
        FindingCode(
            "DMD008",
            "No active app user is missing from the directory (offboarding)",
            "An offboarding hole: people removed in the IdP still have access.",
            "Handle organization.directory.user_deleted by deactivating (or deleting) the user, "
            "and deactivate these users now.",
            _DOCS,
        ),
        "Active app users are no longer in the directory",
    ),
    Drift.STILL_ACTIVE_IN_APP: (
        FindingCode(
            "DMD009",
            "Users deactivated in the directory are inactive in the app",
            "An offboarding hole: suspended people keep access.",
            "Handle user_updated with active:false by revoking access; deactivate these users now.",
            _DOCS,
        ),
        "Users deactivated in the directory are still active in the app",
    ),
    Drift.INACTIVE_IN_APP: (
        FindingCode(
            "DMD010",
            "Active directory users are active in the app",
            "People the IdP says may work cannot sign in; reactivation events were lost or "
            "ignored.",
            "Handle user_updated with active:true by reactivating the user.",
            _DOCS,
        ),
        "Active directory users are inactive in the app",
    ),
    Drift.EMAIL_MISMATCH: (
        FindingCode(
            "DMD011",
            "App users have the directory's email",
            "Sign-in by email and notifications reach the wrong address; a later user with the old "
            "address may be merged into this one.",
            "Apply email changes from user_updated; key users on the directory user id, not email.",
            _DOCS,
        ),
        "App users have a different email than the directory",
    ),
    Drift.ROLE_MISMATCH: (
        FindingCode(
            "DMD012",
            "App roles are those the directory grants",
            "People keep privileges they lost in the IdP, or lack ones they were given.",
            "Recompute roles from each event's roles (or groups via the role map) on every "
            "user_updated, replacing rather than adding.",
            _DOCS,
        ),
        "App roles differ from what the directory's groups grant",
    ),
    Drift.DUPLICATE_IN_APP: (
        FindingCode(
            "DMD013",
            "Each directory user has one app user",
            "Deactivating the directory user may leave a twin active; duplicate creates were not "
            "idempotent.",
            "Make user_created an upsert on the directory user id and merge the duplicates.",
            _DOCS,
        ),
        "Several app users are linked to one directory user",
    ),
}

COMPARED = FindingCode(
    "DMD015",
    "The directory has users to compare with the app",
    "With no directory user compared, nothing shows that the app's users reconcile with the "
    "directory; an empty directory is not a pass.",
    "Assign users to the app in the IdP so the directory syncs them (the checker's own test "
    "identities are left out), or accept data-model as not evaluated for this run.",
    _DOCS,
)
ATTRIBUTES = FindingCode(
    "DMD014",
    "Every directory user has the attributes the app requires",
    "Users without a required attribute are created incomplete, or refused by the app.",
    "Map the attribute in the IdP's SCIM attribute mappings (or the directory's attribute "
    "mappings), or give the app a default.",
    _DOCS,
)

CHECK = CheckInfo(
    id="data-model",
    title="Alignment with the app's user and organisation model",
    checklist_item=7,
    options=Options,
    needs=(Need.SCALEKIT, Need.PROBE),
    mutates=False,
    sharing="exclusive",  # compares every user: no test users in flight meanwhile
    docs_url=_DOCS,
    description=(
        "organisation external_id maps to the app's tenant; every directory user reconciles "
        "with the app (missing, extra, inactive, email, role); required attributes present"
    ),
    # Paging 100,000 users takes 3,334 Directory API calls; every call is bounded on its own.
    default_timeout_s=900.0,
    codes=(
        APP_LISTED,
        TARGET,
        EXTERNAL_ID,
        RECONCILED,
        TENANT,
        *(code for code, _ in _DRIFT.values()),
        ATTRIBUTES,
        COMPARED,
    ),
)

run = deferred(f"{__name__}.check", "run")
