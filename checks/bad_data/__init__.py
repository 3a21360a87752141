"""`bad-data`: duplicate and invalid data fail safely, with actionable errors (checklist
item 6).

Every delivery is correctly signed, so what is tested is the app's handling of the data,
not its signature check. Deliveries, in order:

- **the same event twice** (same ``webhook-id``): both answered 2xx (or the second 4xx), one
  user in the app;
- **two ``user_created`` with different event ids for the same directory user**: both 2xx,
  one user (``user_created`` is an upsert: Scalekit re-sends it);
- **two directory users with the same email**: the second is refused (4xx) and the first keeps
  its identity. FAIL when the first record was taken over or merged (an account-takeover
  risk); WARN when the second was stored as a separate account;
- **invalid payloads**: invalid JSON, no ``data``, no ``email``, wrong types
  (``active: "yes"``), non-UTF-8 bytes → 4xx, or a 2xx that stores nothing (judged by the
  effect, not the status: answering at once and processing in the background is Scalekit's
  own advice); a 1 MiB body → 4xx (WARN if accepted); deeply nested JSON → 4xx or a 2xx that
  stores nothing broken; an unknown event type → 2xx and ignored (WARN for 4xx: Scalekit
  would retry it). A record left by any of them is FAIL (a partial record);
- **after the barrage** the health URL (``webhook.health_url``), or the webhook itself with a
  harmless event, still answers 2xx.

Severity (README, "Severity policy"): a 5xx is FAIL for payloads Scalekit could plausibly
send (missing fields, wrong types, unknown types, a body its parser refuses) — the handler
crashed, and Scalekit retries it for hours. For inputs only a holder of the signing secret
could craft (a 1 MiB body, JSON nested 20,000 levels deep) a 5xx or a dropped connection is
WARN: hardening, not readiness.

Essential assertions (PASS needs every one observed; one that could not be is SKIP):
  * each delivery's answer (a status code, or none);
  * the app's records: a genuine test user seen through the probe, then duplicates counted
    and the invalid deliveries' users looked up;
  * the app still healthy after the barrage.

Findings quote the status and body excerpt the app returned, so an engineer sees whether
its errors are actionable. The check is SKIP with ``--read-only`` (it creates test users),
without ``webhook.url``/``webhook.secret``, and when the app's records cannot be observed
(no probe, or a genuine test user never appeared), whatever the status codes were.
"""

from __future__ import annotations

from scim_readiness.api import (
    CheckInfo,
    FindingCode,
    Need,
    ReadOnly,
    deferred,
    option,
)
from scim_readiness.plugin.options import EventOptions, PropagationOptions
from scim_readiness.webhooks import CONFIGURE_PROBE


class Options(EventOptions, PropagationOptions):
    concurrency: int = option(default=4, description="invalid deliveries sent at once", ge=1)
    max_scan_users: int = option(
        default=50_000, description="most app users read when looking for partial records", ge=1
    )


_DOCS = "https://docs.scalekit.com/reference/webhooks/overview"
_ACTIONABLE = (
    "Answer invalid payloads with 400 and a body naming the problem (which field, what was "
    "expected), validate the whole event before writing anything, and keep the handler from "
    "raising on any input."
)
_UPSERT = (
    "Make user_created an upsert keyed on the directory user id (a unique index on it) and "
    "skip already-processed webhook-ids."
)

CODES = (
    FindingCode(
        "BAD001",
        "The webhook URL and its signing secret are configured",
        why="Every delivery must be correctly signed so the app judges the data, not the "
        "signature.",
        fix="Set webhook.url and webhook.secret in the config.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD002",
        "Test events are addressed to the configured organisation",
        why="An app that (rightly) refuses events for organisations it does not know rejects "
        "them for that reason alone, which can hide or fake results.",
        fix="Set scalekit.organization_id (org_…) in the config.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD003",
        "A well-formed, correctly signed user_created is accepted (2xx, not redirected)",
        why="A genuine new user that is refused or redirected is never provisioned, and the "
        "handling of bad data cannot be told apart from it.",
        fix="Accept well-formed user_created events for the configured organisation at the "
        "configured URL.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD004",
        "The same event delivered twice is answered 2xx (or 4xx for the repeat)",
        why="Scalekit delivers at least once; a 5xx on a repeat makes it retry for hours.",
        fix="Record processed webhook-ids and answer a repeat with 2xx without applying it again.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD005",
        "A user_created re-sent for the same directory user is answered 2xx",
        why="Scalekit re-sends user_created (e.g. after a resync); refusing it leaves the "
        "directory and the app disagreeing.",
        fix="Treat user_created as an upsert keyed on the directory user id (data.id).",
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD006",
        "A second directory user with an existing email is refused with 4xx, not a 5xx",
        why="The conflict is a data problem a directory admin must fix; a 5xx hides it and "
        "makes Scalekit retry for hours.",
        fix="Detect the existing email before writing and answer 409 naming both directory "
        "user ids.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD007",
        "A case variant of an existing email is refused with 4xx (or linked), not a 5xx",
        why="One mailbox written in other letter case is the same address; a 5xx makes "
        "Scalekit retry for hours and hides the conflict.",
        fix="Compare emails case-insensitively before writing and answer 409.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD008",
        "Invalid payloads (bad JSON, missing fields, wrong types, non-UTF-8) get 4xx or an "
        "ignoring 2xx, never a 5xx",
        why="A handler that crashes on invalid input makes Scalekit retry for hours, and the "
        "admin never sees an actionable error.",
        fix=_ACTIONABLE,
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD009",
        "Hostile bodies (1 MiB, JSON nested 20,000 deep) are refused without a crash (hardening)",
        why="Only a holder of the signing secret can send them, but an endpoint without body "
        "and depth limits can be made to buffer, parse and crash.",
        fix="Enforce a body size and nesting limit that answers 413/400.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD010",
        "An unknown event type is acknowledged with 2xx and ignored",
        why="Scalekit adds event types; refusing them makes every new event retry until it "
        "is dropped, and can get the endpoint disabled.",
        fix="Answer unknown event types with 2xx and ignore them.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD011",
        "The app is still healthy after the invalid deliveries",
        why="A few malformed requests that take the endpoint down make every later event "
        "retry, and provisioning stops.",
        fix="Bound body size and parsing depth, catch every error per request, and never let "
        "one request poison shared state.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD012",
        "The app's records can be read after the deliveries (a probe, and a genuine test "
        "user seen through it)",
        why="Status codes alone cannot show duplicates, merged accounts or partial records; "
        "only the app's state can.",
        fix=CONFIGURE_PROBE,
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD013",
        "The same event delivered twice leaves one user in the app",
        why="Duplicate accounts for one person: deprovisioning disables one and leaves the "
        "other active.",
        fix=_UPSERT,
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD014",
        "Two user_created events for one directory user leave one user in the app",
        why="Duplicate accounts for one person: deprovisioning disables one and leaves the "
        "other active, and roles drift apart.",
        fix=_UPSERT,
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD015",
        "After an email conflict the first user keeps its identity, unshared",
        why="A second directory user that takes over or shares the first user's record can "
        "sign in as (or change) that user: an account takeover.",
        fix="Key users on the directory user id; when an email already belongs to another "
        "directory user, refuse with 409 and record nothing.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD016",
        "Invalid deliveries leave no (partial) record in the app",
        why="Partial or invalid records break sign-in, roles and later updates.",
        fix=_ACTIONABLE,
        docs_url=_DOCS,
    ),
    FindingCode(
        "BAD017",
        "A case variant of an existing email does not become a second account",
        why="One mailbox, two accounts: resets and invitations reach both, and "
        "deprovisioning one leaves the other active.",
        fix="Enforce uniqueness on the casefolded email, and refuse a second directory user "
        "for an existing address with 409.",
        docs_url=_DOCS,
    ),
)

CHECK = CheckInfo(
    id="bad-data",
    title="Duplicate and invalid data fail safely",
    checklist_item=6,
    options=Options,
    needs=(Need.WEBHOOK,),
    mutates=True,
    sharing="shared",  # judges only its own bad-* test users
    read_only=ReadOnly.NONE,  # every delivery it judges carries a test user
    docs_url=_DOCS,
    description="duplicate events and users, conflicting emails, invalid and hostile payloads: "
    "4xx (or 2xx-ignore), never 5xx, never a partial record, app stays healthy",
    codes=CODES,
)

run = deferred(f"{__name__}.check", "run")
cleanup = deferred(f"{__name__}.check", "cleanup")
