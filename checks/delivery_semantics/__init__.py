"""`delivery-semantics`: out-of-order, retried and concurrent deliveries (checklist item 4;
it covers item 6 too: duplicate users and conflicting identifiers fail safely).

Scalekit retries a delivery that got no 2xx (its docs give several schedules, from "up to 3
times" to 8 attempts over about 27 hours) and says it may deliver the same event more than
once, so a receiver meets duplicates, reordering and concurrent copies in production. The
check plays Scalekit with correctly signed events for test users and watches the app through
the probe. One finding per scenario, each with its timeline (steps named ``<scenario>: …``):

- **stale update delivered last**: an older ``user_updated`` arriving after a newer one must
  not overwrite it (order by ``occurred_at``, or re-read the Directory API);
- **update after delete**: a late ``user_updated`` (``active: true``) after ``user_deleted``
  must not make the user active again;
- **delete before create**: ``user_deleted`` delivered before its ``user_created`` must not
  end with an active user;
- **concurrent duplicates**: N identical deliveries (one ``webhook-id``) released together
  behind a barrier, and two event ids for one ``user_created`` at once: no 5xx, one user each;
- **dropped and redelivered**: a delivery whose connection drops before the answer, sent
  again with the same ``webhook-id``: exactly one effect (the user exists, once);
- **re-hire**: a new directory user with a deleted user's email becomes active (a 4xx is
  WARN when ``options.rehire_refused_by_design`` says the refusal is deliberate, else FAIL);
- **group rename**: ``group_updated`` with a new display name keeps the members' roles;
- **same email in a second organisation** and **directory disabled**: these act on a whole
  organisation, so they run only against ``test_organization`` from the config (else SKIP);
- **burst**: ``burst_size`` updates for a few test users, judged on the time until the probe
  shows every change applied (the processing backlog, not the acknowledgement latency),
  against ``burst_budget_s``.

A scenario whose bad outcome is an absence of change ("must not resurrect") is watched for
``settle_s`` after the last delivery; it fails as soon as the bad state shows.

Statuses:
  PASS  every scenario's expected state was observed (and held for ``settle_s``).
  WARN  the app refused a re-hire with a 4xx the config declares deliberate.
  FAIL  a scenario ended in the wrong state, a delivery got 5xx (or no answer), a correctly
        signed event the app must apply was refused, or the burst was not applied in budget.
  SKIP  read-only run, no webhook URL/secret, no probe (nothing could be observed), or a
        scenario could not be judged because a step it builds on did not happen (the check is
        then SKIP, never PASS, unless another scenario failed). The organisation-wide
        scenarios without ``test_organization`` are a SKIP finding that leaves the rest to
        decide.
  ERROR the probe failed, or the webhook could not be reached for a raw delivery.
"""

from __future__ import annotations

from scim_readiness.api import (
    CheckInfo,
    FindingCode,
    Need,
    deferred,
    option,
)
from scim_readiness.plugin.options import EventOptions

#: A dropped delivery is cut this long after its request was written: the app has read it
#: and is working on it, and its answer is never read.
DROP_AFTER_S = 0.15
#: How many budgets long a burst is watched before giving up on measuring its backlog.
BACKLOG_WATCH = 4
COUNT_LIMIT = 1_000_000
LIFECYCLE = "user-lifecycle"
_RETRIED = (
    "Scalekit retries every delivery that got no 2xx (up to 8 attempts over about 27 hours) "
    "and may deliver the same event more than once"
)


class Options(EventOptions):
    step_timeout_s: float = option(
        default=30.0,
        description="how long a step waits for the app to reflect a delivery (s)",
        gt=0,
        le=600,
    )
    settle_s: float = option(
        default=3.0,
        description="how long a state that must not change is watched after the last delivery (s)",
        ge=0,
    )
    concurrency: int = option(
        default=8, description="identical deliveries released together behind a barrier", ge=2
    )
    burst_size: int = option(
        default=100, description="test users updated at once in the burst", ge=1, le=10_000
    )
    burst_budget_s: float = option(
        default=60.0, description="how long the burst may take until every update shows (s)", gt=0
    )
    rehire_refused_by_design: bool = option(
        default=False,
        description="the app refuses a re-hire's email on purpose (documented): WARN, not FAIL",
    )


_DOCS = "https://docs.scalekit.com/directory/reference/directory-events/"
_WEBHOOK_DOCS = "https://docs.scalekit.com/reference/webhooks/overview"

NOT_TESTED = FindingCode(
    "DLV001",
    "Deliveries can be sent and their effect observed",
    "Every scenario sends correctly signed events for test users and reads the result through "
    "the probe; without a webhook secret, a probe, or permission to change data, none of them "
    "can be judged, and the item is not evaluated.",
    "Run without --read-only, with the webhook (url, secret) and probe sections configured.",
    _DOCS,
)
PLACEHOLDER_ORG = FindingCode(
    "DLV002",
    "Events are addressed to the configured organisation",
    "An app that (rightly) refuses events for organisations it does not know rejects deliveries "
    "addressed to a placeholder for that reason alone, which can hide or fake results.",
    "Set scalekit.organization_id (org_…) in the config.",
    _DOCS,
)
STALE_UPDATE = FindingCode(
    "DLV003",
    "Stale update delivered last: the newer state wins",
    "Retries reorder deliveries: an app that applies whatever arrives last rolls users back "
    "to old names, emails or an old active flag.",
    "Store each user's occurred_at and ignore events older than it (or re-read the user "
    "from the Directory API before applying).",
    _WEBHOOK_DOCS,
)
UPDATE_AFTER_DELETE = FindingCode(
    "DLV004",
    "Update delivered after the delete: the deleted user stays inactive",
    "A retried user_updated arriving after user_deleted gives a departed employee their "
    "access back, with nothing in the IdP to show it.",
    "Keep a tombstone per deleted directory user id and ignore every later create or "
    "update for it.",
    _WEBHOOK_DOCS,
)
DELETE_BEFORE_CREATE = FindingCode(
    "DLV005",
    "Delete delivered before the create: no active user",
    "When user_created is retried and user_deleted is not, the delete arrives first; an "
    "app that drops it lets the late create provision someone who was already removed.",
    "Record user_deleted for an unknown directory user id as a tombstone, and refuse to "
    "activate a tombstoned id.",
    _WEBHOOK_DOCS,
)
CONCURRENT_DUPLICATES = FindingCode(
    "DLV006",
    "Identical deliveries at once: one user per directory user",
    f"{_RETRIED}, sometimes concurrently; a look-up-then-insert without a unique "
    "constraint creates duplicate accounts, and a constraint violation answered 5xx is "
    "retried for hours.",
    "Put a unique constraint on the directory user id, record processed webhook-ids in "
    "the transaction that applies the event, and answer a conflict with 2xx.",
    _WEBHOOK_DOCS,
)
CONCURRENT_ANSWERS = FindingCode(
    "DLV007",
    "Identical deliveries at once: no 5xx",
    "A 5xx makes Scalekit retry the delivery for hours; concurrent copies of one event are "
    "normal and must be answered below 500.",
    "Answer a duplicate or a unique-constraint conflict with 2xx, not 5xx.",
    _WEBHOOK_DOCS,
)
DROPPED_REDELIVERY = FindingCode(
    "DLV008",
    "Delivery dropped before its answer, then redelivered: exactly one effect",
    "Scalekit redelivers with the same webhook-id when it got no answer; an app that "
    "marks the id processed before the work is done drops the redelivery and the change "
    "is lost.",
    "Mark the webhook-id processed in the same transaction that applies the event, and "
    "finish the work even when the client has gone.",
    _WEBHOOK_DOCS,
)
REHIRE = FindingCode(
    "DLV009",
    "Re-hire with a deleted user's email: the new directory user becomes active",
    "People come back; an app that keeps a deleted user's email taken answers 409 to the "
    "re-hire, which Scalekit retries (up to 8 attempts over about 27 hours) and which "
    "never succeeds: the person cannot sign in.",
    "Make email unique among live users only (free it on delete), keyed per tenant; or "
    "re-link the old record to the new directory user id.",
    _DOCS,
)
GROUP_RENAME = FindingCode(
    "DLV010",
    "Group renamed: mapped roles unchanged",
    "Scalekit assigns roles by group id; an app that maps roles by group name strips "
    "everyone's role when an admin renames a group.",
    "Map roles by the directory group id (or apply the roles each event carries), never "
    "by display name.",
    _DOCS,
)
SECOND_ORGANIZATION = FindingCode(
    "DLV011",
    "Same email in a second organisation: both users active, each in its own tenant",
    "A consultant or a company with two tenants has the same email in two "
    "organisations; an app-wide unique email refuses the second (409, retried forever).",
    "Scope email uniqueness to the tenant (organisation).",
    _DOCS,
)
DIRECTORY_DISABLED = FindingCode(
    "DLV012",
    "Directory disabled: the directory's users lose access",
    "organization.directory_disabled means nobody that directory provisions should keep "
    "access; answered 200 and ignored, every user keeps signing in.",
    "On organization.directory_disabled, deactivate (and end the sessions of) the users "
    "that directory provisioned.",
    _DOCS,
)
BURST_APPLIED = FindingCode(
    "DLV013",
    "Burst of updates applied: every update shows within the budget",
    "Google Workspace syncs about hourly in bulk, and a resync sends every user at once; an "
    "app that acknowledges at once but applies slowly shows stale access (a deactivated user "
    "still signing in) for as long as its backlog lasts.",
    "Apply updates with enough workers for a full resync, and watch the backlog, not just "
    "the acknowledgement latency.",
    _WEBHOOK_DOCS,
)


CHECK = CheckInfo(
    id="delivery-semantics",
    title="Out-of-order, retried and concurrent deliveries",
    checklist_item=4,
    needs=(Need.WEBHOOK,),
    mutates=True,
    # Its own test users only; the burst, which floods the app, holds it alone (app_alone).
    sharing="shared",
    docs_url="https://docs.scalekit.com/directory/reference/directory-events/",
    description="Reordered, duplicated, concurrent and dropped deliveries, re-hires, group "
    "renames, organisation-wide events and a burst: the newer state wins and access ends.",
    default_timeout_s=300.0,
    options=Options,
    codes=(
        NOT_TESTED,
        PLACEHOLDER_ORG,
        STALE_UPDATE,
        UPDATE_AFTER_DELETE,
        DELETE_BEFORE_CREATE,
        CONCURRENT_DUPLICATES,
        CONCURRENT_ANSWERS,
        DROPPED_REDELIVERY,
        REHIRE,
        GROUP_RENAME,
        SECOND_ORGANIZATION,
        DIRECTORY_DISABLED,
        BURST_APPLIED,
    ),
)

run = deferred(f"{__name__}.check", "run")
cleanup = deferred(f"{__name__}.check", "cleanup")
