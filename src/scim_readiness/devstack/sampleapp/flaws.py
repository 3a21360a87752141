"""Named flaws: each switches one behaviour of the reference app to a mistake seen in real
integrations, so every check can be shown to catch the defect it exists for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

FLAWS: Mapping[str, str] = MappingProxyType(
    {
        "no-signature-check": "the webhook endpoint never verifies signatures",
        "skip-verify-when-secret-missing": (
            "verification is skipped when the app has no webhook secret configured"
        ),
        "verify-reserialized-body": (
            "verifies json.dumps(json.loads(body)) instead of the raw request bytes"
        ),
        "accept-stale-timestamp": (
            "checks the HMAC but not the timestamp tolerance (replays of old deliveries pass)"
        ),
        "svix-headers-only": "reads only svix-* headers and ignores webhook-* headers",
        "create-not-idempotent": (
            "no event-id deduplication and user_created always inserts a new row"
        ),
        "merge-on-email": (
            "a second directory user with an existing email takes over the first user's record"
        ),
        "ignore-deactivation": "user_updated with active:false leaves the user active",
        "ignore-delete": "user_deleted is acknowledged with 2xx but the user stays active",
        "roles-ignored": "roles in events are never applied",
        "first-role-only": "only the first role of an event is applied",
        "crash-on-unknown-event": "an unknown event type makes the endpoint answer 500",
        "crash-on-invalid-json": "a body that is not JSON makes the endpoint answer 500",
        "slow-ack": "the endpoint does its work before answering and answers after a long delay",
        "portal-link-unauthenticated": (
            "the admin-portal-link endpoint hands out links without authentication"
        ),
        "wrong-tenant-mapping": (
            "users are filed under the Scalekit organization id instead of the app's tenant"
        ),
        "ascii-only-names": (
            "a user whose name is not plain ASCII (Zoë, 美咲) makes the endpoint answer 500"
        ),
        "case-sensitive-email": (
            "email uniqueness is case-sensitive: Ann@x.example and ann@x.example become two "
            "accounts"
        ),
        # Preflight flaws: the checker cannot observe the app at all; every check that
        # needs what is broken must end ERROR "blocked by …", none FAIL.
        "probe-404": (
            "every probe route answers 404, as when the probe URL names a route the app "
            "does not have"
        ),
        "webhook-hangs": "the webhook endpoint accepts connections and never answers",
        "legacy-event-names": (
            "handles only old event names (scalekit.dir.user.create...) and acknowledges "
            "current names without acting"
        ),
        # Delivery semantics: reordered, retried and concurrent deliveries.
        "stale-update-wins": (
            "user_updated ignores occurred_at: an older update delivered last overwrites newer data"
        ),
        "update-resurrects-deleted": (
            "user_deleted only clears the active flag: a late user_updated makes the user active"
        ),
        "delete-before-create-forgotten": (
            "user_deleted for a user not yet created is dropped, so the create makes it active"
        ),
        "racy-duplicate-deliveries": (
            "look-up and insert in separate transactions without a unique constraint: "
            "concurrent copies of one user_created create several users"
        ),
        "dedupe-before-apply": (
            "marks a webhook-id processed before applying it and abandons the work when the "
            "client disconnects, so the redelivery is dropped as a duplicate"
        ),
        "email-reuse-refused": (
            "a deleted user's email stays taken: a re-hire gets 409 (retried, never succeeds)"
        ),
        "email-unique-across-tenants": (
            "emails are unique across all tenants: the same person in a second organisation "
            "gets 409"
        ),
        "directory-disabled-ignored": (
            "organization.directory_disabled is acknowledged but the directory's users stay active"
        ),
        "roles-follow-group-name": (
            "roles are looked up by group name: renaming a group takes its members' roles"
        ),
        "slow-update-backlog": (
            "profile updates are acknowledged at once and applied by one slow worker (a backlog)"
        ),
        "sessions-survive-deprovisioning": (
            "sessions and API tokens keep working after the user is deactivated or deleted"
        ),
    }
)


def validate_flaws(names: Iterable[str]) -> frozenset[str]:
    """The flaw names as a set; ValueError listing the valid names for any unknown one."""
    chosen = frozenset(names)
    unknown = sorted(chosen - FLAWS.keys())
    if unknown:
        raise ValueError(
            f"unknown flaw(s): {', '.join(unknown)}; valid flaws: {', '.join(sorted(FLAWS))}"
        )
    return chosen
