"""`webhook-signature`: only Scalekit can trigger provisioning (checklist item 3).

The check plays Scalekit and an attacker at the app's webhook URL. Deliveries:

- **must be accepted (2xx)**: a correctly signed event; the valid signature as the second of
  two space-separated signatures (key rotation); a valid signature over a body whose
  whitespace and key order differ from compact JSON (catches verification of re-serialised
  JSON); only the ``webhook-*`` headers (what Scalekit's SDKs and docs use);
- **must be rejected with 4xx**: no signature headers; signed with the wrong secret; body
  changed after signing; timestamp 6 minutes old; timestamp 6 minutes ahead; a signature
  without the ``v1,`` prefix; a signature that is not base64;
- **either 2xx or 4xx**: only the ``svix-*`` headers (reported: which header families the
  app honours); a replay of an already-delivered ``webhook-id`` with a fresh timestamp and a
  valid signature (as a late Scalekit retry looks).

Every delivery that must be rejected carries a ``user_created`` for its own unmistakable test
user. With a probe, once a control event is visible in the app, each of those users is looked
up: any trace is FAIL. The replay must have no visible second effect. (Whether the *same
event twice* creates duplicates is judged by ``bad-data``.)

Essential assertions (PASS needs every one observed; one that could not be is SKIP):
  * the correctly signed control delivery was accepted;
  * every forged or malformed delivery was answered (its status judged);
  * in a run that may change data, the rejected deliveries were looked up in the app once a
    genuine test user was visible there, and left no trace.

Severity (README, "Severity policy"): FAIL when a forged delivery is accepted or left a
trace, when a valid variant Scalekit really sends (key rotation, non-compact JSON, a late
retry of a delivered ``webhook-id``) is refused or answered 5xx, or when ``webhook-*``
headers alone are not honoured. A 5xx to a forged delivery is WARN: it was not accepted, and
Scalekit never sends one, so it costs no retries; it is hardening (answer 401).

Statuses: SKIP when ``webhook.url``/``webhook.secret`` are missing, or when the traces could
not be looked up in a run that may change data (no probe, or genuine test users never
appeared). When the runner says it may not change data (``--read-only``, or production
without consent) harmless ``directory_enabled`` events are sent instead of user events, and
the trace and replay findings are SKIP without making the check SKIP. ERROR when a delivery
got no answer at all. PASS otherwise.
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


class Options(EventOptions, PropagationOptions):
    concurrency: int = option(default=4, description="deliveries sent at once", ge=1)


_DOCS = "https://docs.scalekit.com/authenticate/implement-workflows/implement-webhooks"

CODES = (
    FindingCode(
        "SIG001",
        "The webhook URL and its signing secret are configured",
        why="Without the secret a genuine delivery cannot be told from a forged one, so "
        "nothing about signature handling can be tested.",
        fix="Set webhook.url and webhook.secret (as ${SCALEKIT_WEBHOOK_SECRET}) in the config.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "SIG002",
        "Test events are addressed to the configured organisation",
        why="An app that (rightly) refuses events for organisations it does not know rejects "
        "them for that reason alone, which can hide or fake results.",
        fix="Set scalekit.organization_id (org_…) in the config.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "SIG003",
        "A correctly signed delivery is accepted with 2xx",
        why="An app that refuses genuine deliveries provisions no one, and forged deliveries "
        "cannot be told apart from them.",
        fix="Use the endpoint's signing secret and verify the raw body with the webhook-* headers.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "SIG004",
        "Forged, stale, tampered and malformed deliveries are refused with 4xx",
        why="Without verification anyone who finds the URL can create, change or deprovision "
        "users.",
        fix="Verify every request with the SDK (verify_webhook_payload) or a Standard Webhooks "
        "library on the raw body before doing anything else, and answer 401 when it fails.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "SIG005",
        "Forged or malformed deliveries are refused without a server error (hardening)",
        why="A 5xx shows the handler crashing on hostile input and invites the sender to try "
        "again; Scalekit never sends such a delivery, so it costs no retries.",
        fix="Treat any verification or parse error as a failed verification and answer 401.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "SIG006",
        "Valid variants Scalekit sends (key rotation, non-compact JSON) are accepted",
        why="During secret rotation Scalekit sends several signatures, and it does not promise "
        "compact JSON: an app that refuses these rejects genuine events.",
        fix="Accept when any v1 signature matches, and verify the raw request bytes, never a "
        "re-serialisation of the parsed body.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "SIG007",
        "The webhook-* headers alone are honoured; one header family alone never gets a 5xx",
        why="Scalekit's SDKs and docs use webhook-id, webhook-timestamp and webhook-signature; "
        "an app that reads only svix-* breaks when they are not also sent.",
        fix="Read the webhook-* headers (svix-* may be accepted as well), and refuse with 401 "
        "what cannot be verified.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "SIG008",
        "A replay of an already-delivered webhook-id is answered 2xx or 4xx",
        why="Scalekit delivers at least once: retries reuse the webhook-id with a fresh "
        "timestamp and signature, and a 5xx on a duplicate starts a retry loop.",
        fix="Record processed webhook-ids and answer duplicates with 2xx without applying them "
        "again.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "SIG009",
        "A replay of an already-delivered event has no visible second effect",
        why="A late retry applied twice can roll back later changes (re-activating a "
        "deprovisioned user) or duplicate data.",
        fix="Record processed webhook-ids, and make every handler an idempotent upsert.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "SIG010",
        "Deliveries that must be refused leave no trace in the app",
        why="Whatever the status code said, a record written before the refusal means forged "
        "data reached the app's database.",
        fix="Verify the signature before parsing or writing anything; configure a probe so the "
        "app's state can be read.",
        docs_url=_DOCS,
    ),
)

CHECK = CheckInfo(
    id="webhook-signature",
    title="Webhook signature validation",
    checklist_item=3,
    options=Options,
    needs=(Need.WEBHOOK,),
    mutates=True,
    sharing="shared",  # judges only its own sig-* test users
    # When it may not change data it sends harmless directory events instead of user events:
    # forged ones must still be refused, so a read-only gate still proves enforcement.
    read_only=ReadOnly.REDUCED,
    docs_url=_DOCS,
    description="forged, stale, tampered and malformed deliveries get 4xx and leave no trace; "
    "key rotation and non-compact JSON still verify; which header families are honoured",
    codes=CODES,
)

run = deferred(f"{__name__}.check", "run")
cleanup = deferred(f"{__name__}.check", "cleanup")
