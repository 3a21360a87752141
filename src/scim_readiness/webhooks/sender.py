"""Delivering webhooks to the app as Scalekit would, and capturing what came back.

The webhook checks send many deliveries (valid, forged, malformed); each one goes through
:class:`Sender`, which builds the envelope and the Standard Webhooks headers with
``scim_readiness.events`` and returns an :class:`Outcome`: status, latency, redirect target
and a short, redacted excerpt of the app's answer, ready to quote in a finding.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

# Re-exported: callers describe failed requests through delivery.describe_http_error.
from scim_readiness.clients.answers import (
    EXCERPT_CHARS,
    MAX_ANSWER_BYTES,
    excerpt,
    redact,
    request_capped,
)
from scim_readiness.clients.answers import describe_http_error as describe_http_error
from scim_readiness.events import (
    HEADER_FAMILIES,
    SIGNATURE_HEADERS,
    build_event,
    encode_body,
    signed_headers,
)
from scim_readiness.guards import refuse_plain_http_signing
from scim_readiness.plugin.options import EventOptions

if TYPE_CHECKING:
    import httpx

    from scim_readiness.plugin.context import CheckContext
    from scim_readiness.plugin.identities import TestIdentity
    from scim_readiness.plugin.ledger import LedgerEntry

#: Used when the config names no organisation: obviously not a real Scalekit id.
FAKE_ORGANIZATION_ID = "org_scimreadinessnotconfigured"
CLEANUP_CONCURRENCY = 8
# One sequence for the whole process: every check of a run shares the run id, and an app that
# deduplicates webhook-ids must never see two different test events with the same id.
_EVENT_SEQUENCE = itertools.count(1)


#: What a redirected delivery means, said once for every webhook check.
REDIRECT_WHY = (
    "Webhook senders, Scalekit among them, do not follow redirects: a 3xx answer is a "
    "delivery that was not accepted, retried and finally dropped, so no user is provisioned."
)


def redirect_blocker(outcome: Outcome) -> str:
    """The one-line cause for a check that cannot go on because a correctly signed delivery
    was answered with a redirect (webhook-endpoint reports the redirect itself)."""
    return (
        f"blocked by webhook-endpoint: the webhook answered a correctly signed delivery with a "
        f"redirect ({outcome.summary()}); redirects are not followed, so nothing was delivered"
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of three samples is the slowest one)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery got back. ``status`` is None when no HTTP answer came at all."""

    label: str
    status: int | None
    latency_s: float
    excerpt: str = ""
    location: str | None = None
    error: str | None = None
    event_id: str | None = None
    # The connection could not be made (refused, DNS, TLS handshake): the request was never
    # sent, so the app cannot have acted on it.
    never_sent: bool = False

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def rejected(self) -> bool:
        """A client error: how a receiver must turn away a delivery it will never accept."""
        return self.status is not None and 400 <= self.status < 500

    @property
    def server_error(self) -> bool:
        return self.status is not None and self.status >= 500

    @property
    def redirected(self) -> bool:
        return self.status is not None and 300 <= self.status < 400

    def summary(self) -> str:
        """``HTTP 401 in 12 ms: {"error":"invalid signature"}`` or the connection failure."""
        millis = f"{self.latency_s * 1000:.0f} ms"
        if self.status is None:
            return f"no HTTP answer after {millis} ({self.error or 'connection failed'})"
        text = f"HTTP {self.status} in {millis}"
        if self.location:
            text += f" → {self.location}"
        if self.excerpt:
            text += f": {self.excerpt}"
        else:
            text += " (empty body)"
        return text

    def evidence(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "delivery": self.label,
            "status": self.status,
            "latency_ms": round(self.latency_s * 1000, 1),
        }
        if self.event_id:
            found["webhook_id"] = self.event_id
        if self.excerpt:
            found["body_excerpt"] = self.excerpt
        if self.location:
            found["location"] = self.location
        if self.error:
            found["error"] = self.error
        return found


@dataclass(frozen=True, slots=True)
class EventTarget:
    """Where events are addressed: the configured organisation (or a fake one, flagged)."""

    organization_id: str
    environment_id: str
    organization_is_fake: bool = False


def event_target(ctx: CheckContext) -> EventTarget:
    org = ctx.config.scalekit.organization_id
    # The config does not name the environment id; receivers rarely check it, and a run-derived
    # value keeps test events recognisable.
    env = EventOptions.of(ctx).environment_id or f"env_{ctx.run_id}"
    if org:
        return EventTarget(org, env)
    return EventTarget(FAKE_ORGANIZATION_ID, env, organization_is_fake=True)


def warn_if_fake_organization(ctx: CheckContext, target: EventTarget) -> None:
    if target.organization_is_fake:
        ctx.findings.warned(
            "Events addressed to a placeholder organisation",
            expected="scalekit.organization_id set to the organisation whose directory "
            "provisions this app",
            observed=f"not configured; events carry organization_id {target.organization_id}",
            why="An app that (rightly) refuses events for organisations it does not know "
            "will reject these deliveries for that reason alone, which can hide or fake results.",
            fix="Set scalekit.organization_id (org_…) in the config.",
        )


@dataclass(slots=True)
class Sender:
    """Sends deliveries to one webhook URL. Use as ``async with Sender(...) as sender``.

    With ``fresh_connections`` every delivery opens its own connection (TLS handshake
    included), as an independent sender would; otherwise one connection is reused.

    Redirects are never followed, as Scalekit does not follow them: a 3xx is the answer.
    A signed delivery over plain ``http://`` to a production target is never sent: creating
    a signing sender for one, or posting signature headers there, raises
    :class:`~scim_readiness.errors.DeliveryRefused` (the runner records SKIP with the reason).
    """

    ctx: CheckContext
    url: str
    secret: str
    target: EventTarget
    timeout_s: float
    fresh_connections: bool = False
    _client: httpx.AsyncClient | None = field(default=None, init=False)
    _secrets: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        # Refused at once, before a check records test users it could never send.
        if self.secret:
            refuse_plain_http_signing(self.ctx.config, self.url)

    async def __aenter__(self) -> Sender:
        self._secrets = tuple(self.ctx.config.secret_values())
        if not self.fresh_connections:
            self._client = self.ctx.http(timeout_s=self.timeout_s)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def now(self) -> int:
        return int(self.ctx.clock.now())

    def next_event_id(self) -> str:
        """A webhook-id unique in this run, recognisable as a test event (``evt_<run id>…``)."""
        return self.ctx.identities.event_id(next(_EVENT_SEQUENCE))

    def event(
        self, event_type: str, data: Mapping[str, Any], *, event_id: str | None = None
    ) -> dict[str, Any]:
        """An envelope for the configured organisation; a fresh id unless ``event_id``."""
        return build_event(
            event_type,
            data,
            organization_id=self.target.organization_id,
            environment_id=self.target.environment_id,
            event_id=event_id or self.next_event_id(),
        )

    def headers(
        self,
        msg_id: str,
        body: bytes,
        *,
        timestamp: int | None = None,
        families: Iterable[str] = HEADER_FAMILIES,
        secret: str | None = None,
        signature: str | None = None,
    ) -> dict[str, str]:
        """Signed headers for ``body``, by default with the configured secret and now."""
        return signed_headers(
            secret if secret is not None else self.secret,
            msg_id,
            self.now() if timestamp is None else timestamp,
            body,
            families=families,
            signature=signature,
        )

    async def send_event(self, label: str, event: Mapping[str, Any]) -> Outcome:
        """A correctly signed delivery of ``event`` as compact JSON, both header families."""
        body = encode_body(event)
        event_id = str(event["id"])
        return await self.post(label, body, self.headers(event_id, body), event_id=event_id)

    async def post(
        self,
        label: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        event_id: str | None = None,
        url: str | None = None,
        timeout_s: float | None = None,
    ) -> Outcome:
        """POST ``body`` as ``application/json`` and capture the answer; never raises for
        network trouble (that becomes an Outcome with ``status=None``)."""
        import httpx

        if SIGNATURE_HEADERS & {name.lower() for name in headers}:
            refuse_plain_http_signing(self.ctx.config, url or self.url)
        all_headers = {"content-type": "application/json", **headers}
        client = self._client
        owned = client is None or timeout_s is not None
        if owned:
            client = self.ctx.http(timeout_s=timeout_s or self.timeout_s)
        assert client is not None  # noqa: S101 - narrowing for the type checker
        started = time.perf_counter()
        try:
            # The status is the acknowledgement; of the body only an excerpt is quoted.
            response = await request_capped(
                client,
                "POST",
                url or self.url,
                cap=MAX_ANSWER_BYTES,
                truncate=True,
                content=body,
                headers=all_headers,
            )
            content = response.content
        except httpx.TimeoutException:
            return Outcome(
                label,
                None,
                time.perf_counter() - started,
                # "no complete answer": the answer may have begun (headers, a dripping body).
                error=f"no complete answer within {timeout_s or self.timeout_s:g} s",
                event_id=event_id,
            )
        except httpx.HTTPError as exc:
            outcome = Outcome(
                label,
                None,
                time.perf_counter() - started,
                error=describe_http_error(exc),
                event_id=event_id,
                never_sent=isinstance(exc, httpx.ConnectError),
            )
            _note_delivery(body, outcome)
            return outcome
        finally:
            if owned:
                await client.aclose()
        latency = time.perf_counter() - started
        location = response.headers.get("location") if response.is_redirect else None
        if location is not None:
            # Shown in findings: a redirect target may carry a token in its query.
            from scim_readiness.redact import mask_url_tokens

            location = redact(mask_url_tokens(location), self._secrets)
            if len(location) > 2 * EXCERPT_CHARS:  # cut after redacting, never before
                location = location[: 2 * EXCERPT_CHARS - 1] + "…"
        outcome = Outcome(
            label,
            response.status_code,
            latency,
            excerpt=excerpt(content, self._secrets),
            location=location,
            event_id=event_id,
        )
        _note_delivery(body, outcome)
        return outcome


# ---------------------------------------------------------------------------- test users

# Directory user ids that some delivery of this process may have applied: it got a 2xx, or no
# definite answer (a time-out: the app may have acted before it stopped answering). A test
# user none of whose deliveries is here was provably never accepted, and the end-of-run
# sweep closes its ledger entry instead of counting it as left behind.
_MAYBE_APPLIED: set[str] = set()
_NOTE_LIMIT_BYTES = 64 * 1024


def _note_delivery(body: bytes, outcome: Outcome) -> None:
    definitely_not = outcome.never_sent or (outcome.status is not None and not outcome.accepted)
    if definitely_not or len(body) > _NOTE_LIMIT_BYTES:
        return
    try:
        event = json.loads(body)
    except ValueError:
        return
    data = event.get("data") if isinstance(event, dict) else None
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        _MAYBE_APPLIED.add(data["id"])


def maybe_applied(directory_user_id: str) -> bool:
    """Whether any delivery this process sent about ``directory_user_id`` may have been
    applied by the app (see ``_MAYBE_APPLIED``)."""
    return directory_user_id in _MAYBE_APPLIED


def record_test_user(ctx: CheckContext, identity: TestIdentity, *, expect_applied: bool) -> None:
    """Ledger entry for a user a delivery may create; call *before* sending it.

    ``expect_applied`` says whether the delivery is one the app should apply (cleanup then
    deactivates and deletes) or one it should refuse (cleanup only sends ``user_deleted``,
    which a correct app answers without creating anything).
    """
    ctx.ledger.created(
        "user",
        identity.directory_user_id,
        channel="events",
        check_id=ctx.info.id,
        email=identity.email,
        dp_id=identity.dp_id,
        given_name=identity.given_name,
        family_name=identity.family_name,
        organization_id=ctx.config.scalekit.organization_id,
        expect_applied=expect_applied,
    )


def user_event_data(identity: TestIdentity, organization_id: str, **fields: Any) -> dict[str, Any]:
    """``user_created``/``user_updated`` data for a test identity."""
    from scim_readiness.events import user_data

    values: dict[str, Any] = {
        "id": identity.directory_user_id,
        "organization_id": organization_id,
        "email": identity.email,
        "given_name": identity.given_name,
        "family_name": identity.family_name,
        "dp_id": identity.dp_id,
    }
    values.update(fields)
    return user_data(**values)


async def remove_test_users(ctx: CheckContext) -> tuple[list[str], list[str]]:
    """Remove the users this check recorded in this run and has not removed yet, through
    signed events (``user_updated active:false`` for applied ones, then ``user_deleted``).

    Returns (removed, failed) descriptions; failures stay in the ledger as unremovable so
    ``scim-readiness cleanup`` can retry them.
    """
    from scim_readiness.events import EventType, user_deleted_data
    from scim_readiness.plugin.identities import TestIdentity

    entries = [
        entry
        for entry in ctx.ledger.outstanding(ctx.run_id)
        if entry.check_id == ctx.info.id
        and entry.kind == "user"
        and entry.channel == "events"
        and ctx.identities.proves(entry)
    ]
    url, secret = ctx.config.webhook.url, ctx.config.webhook.secret
    if not entries or not url or secret is None:
        return [], [e.object_id for e in entries]
    target = event_target(ctx)
    removed: list[str] = []
    failed: list[str] = []

    async def remove(sender: Sender, entry: LedgerEntry) -> None:
        details = entry.details
        org = str(details.get("organization_id") or target.organization_id)
        identity = TestIdentity(
            label="cleanup",
            directory_user_id=entry.object_id,
            dp_id=str(details.get("dp_id") or ""),
            email=str(details.get("email") or ""),
            given_name=str(details.get("given_name") or ""),
            family_name=str(details.get("family_name") or ""),
        )
        if details.get("expect_applied", True):
            # Deactivate first: an app that ignores deletions still ends with no active
            # test user.
            await sender.send_event(
                "cleanup deactivate",
                sender.event(EventType.USER_UPDATED, user_event_data(identity, org, active=False)),
            )
        outcome = await sender.send_event(
            "cleanup delete",
            sender.event(
                EventType.USER_DELETED,
                user_deleted_data(
                    id=identity.directory_user_id,
                    organization_id=org,
                    email=identity.email,
                    dp_id=identity.dp_id or None,
                ),
            ),
        )
        if outcome.accepted:
            ctx.ledger.removed("user", entry.object_id, channel="events", check_id=ctx.info.id)
            removed.append(entry.object_id)
        else:
            ctx.ledger.unremovable(
                "user",
                entry.object_id,
                channel="events",
                check_id=ctx.info.id,
                reason=f"user_deleted answered {outcome.summary()}",
            )
            failed.append(f"{entry.object_id}: {outcome.summary()}")

    # Users are independent of each other: remove a few at a time, so a slow app costs
    # seconds, not minutes.
    gate = asyncio.Semaphore(CLEANUP_CONCURRENCY)

    async def bounded(sender: Sender, entry: LedgerEntry) -> None:
        async with gate:
            await remove(sender, entry)

    async with Sender(
        ctx,
        url,
        secret.get_secret_value(),
        target,
        ctx.config.webhook.timeout_s,
        fresh_connections=True,
    ) as sender:
        await asyncio.gather(*(bounded(sender, entry) for entry in entries))
    return removed, failed
