"""Delivering webhooks to the app as Scalekit would, and capturing what came back.

The webhook checks send many deliveries (valid, forged, malformed); each one goes through
:class:`Sender`, which builds the envelope and the Standard Webhooks headers with
``scim_readiness.events`` and returns an :class:`Outcome`: status, latency, redirect target
and a short, redacted excerpt of the app's answer, ready to quote in a finding.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from scim_readiness.clients.answers import (
    CUT_SHORT,
    EXCERPT_CHARS,
    MAX_ANSWER_BYTES,
    excerpt,
    redact,
)
from scim_readiness.clients.http1 import Answer, ConnectFailed, HttpError, NotSent, Pool, Target
from scim_readiness.events import (
    HEADER_FAMILIES,
    SIGNATURE_HEADERS,
    build_event,
    encode_body,
    signed_headers,
)
from scim_readiness.guards import refuse_plain_http_signing
from scim_readiness.webhooks.test_users import note_delivery, user_event_data

if TYPE_CHECKING:
    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.config import Config, ScalekitSection
    from scim_readiness.plugin.contract import Clock, FindingRecorder
    from scim_readiness.plugin.identities import TestIdentities
    from scim_readiness.plugin.ledger import Ledger, LedgerEntry

#: Used when the config names no organisation: obviously not a real Scalekit id.
FAKE_ORGANIZATION_ID = "org_scimreadinessnotconfigured"
# Test users removed at once, each on its own kept-alive connection: the removals are
# independent, and a check that made 100 users (delivery-semantics' burst) then waits about
# 2 x 100 / 32 round trips instead of 2 x 100 / 8. Scalekit itself delivers far more at once
# in a resync.
CLEANUP_CONCURRENCY = 32
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


def event_target(
    scalekit: ScalekitSection, run_id: str, environment_id: str | None = None
) -> EventTarget:
    """Events for the configured organisation, carrying ``environment_id`` (the option of
    that name), else one derived from ``run_id``."""
    org = scalekit.organization_id
    # The config does not name the environment id; receivers rarely check it, and a run-derived
    # value keeps test events recognisable.
    env = environment_id or f"env_{run_id}"
    if org:
        return EventTarget(org, env)
    return EventTarget(FAKE_ORGANIZATION_ID, env, organization_is_fake=True)


def warn_if_fake_organization(findings: FindingRecorder, target: EventTarget, *, code: str) -> None:
    """WARN (with the calling check's ``code``) when events go to a placeholder organisation."""
    if target.organization_is_fake:
        findings.warned(
            "Events addressed to a placeholder organisation",
            expected="scalekit.organization_id set to the organisation whose directory "
            "provisions this app",
            observed=f"not configured; events carry organization_id {target.organization_id}",
            why="An app that (rightly) refuses events for organisations it does not know "
            "will reject these deliveries for that reason alone, which can hide or fake results.",
            fix="Set scalekit.organization_id (org_…) in the config.",
            code=code,
        )


@dataclass(slots=True)
class Sender:
    """Sends deliveries to one webhook URL. Use as ``async with Sender(...) as sender``.

    Deliveries go over kept-alive HTTP/1.1 connections (:class:`~scim_readiness.clients.
    http1.Pool`), one per delivery in flight, so concurrent deliveries do not queue behind
    each other and sequential ones do not pay a TLS handshake each. A delivery that meets a
    kept connection the app had closed (after a 413, or idle) goes out on a new one: nothing
    of it had been written, so the app cannot see it twice, and it never fails for the
    client's reasons. With ``fresh_connections`` every delivery opens its own connection
    (TLS handshake included), as an independent sender would: for the checks that judge the
    connection itself (webhook-endpoint, the preflight).

    Redirects are never followed, as Scalekit does not follow them: a 3xx is the answer.
    A signed delivery over plain ``http://`` to a production target is never sent: creating
    a signing sender for one, or posting signature headers there, raises
    :class:`~scim_readiness.errors.DeliveryRefused` (the runner records SKIP with the reason).

    ``config`` decides whether the URL is a production target and holds the secrets that are
    cut out of every answer shown; ``tls`` is the trust for https; ``clock`` stamps the
    signatures; ``identities`` names the webhook-ids. :class:`Senders` supplies all four.
    """

    url: str
    secret: str
    target: EventTarget
    timeout_s: float
    fresh_connections: bool = False
    config: Config = field(kw_only=True)
    tls: TlsSettings = field(kw_only=True)
    clock: Clock = field(kw_only=True)
    identities: TestIdentities = field(kw_only=True)
    _pools: dict[tuple[str, str, int], Pool] = field(default_factory=dict, init=False)
    _entered: bool = field(default=False, init=False)
    _secrets: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        # Refused at once, before a check records test users it could never send.
        if self.secret:
            refuse_plain_http_signing(self.config, self.url)

    async def __aenter__(self) -> Sender:
        self._secrets = tuple(self.config.secret_values())
        self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._entered = False
        self._close_pools()

    def _close_pools(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    @property
    def connections_opened(self) -> int:
        """Connections opened so far by this sender (the handshakes its deliveries paid)."""
        return sum(pool.connections for pool in self._pools.values())

    def _pool(self, target: Target) -> Pool:
        key = (target.scheme, target.host, target.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._new_pool(target, keep_alive=not self.fresh_connections)
            self._pools[key] = pool
        return pool

    def _new_pool(self, target: Target, *, keep_alive: bool) -> Pool:
        from scim_readiness.clients.http import ssl_context

        context = ssl_context(self.tls) if target.scheme == "https" else None
        return Pool(target, context, keep_alive=keep_alive)

    def now(self) -> int:
        return int(self.clock.now())

    def next_event_id(self) -> str:
        """A webhook-id unique in this run, recognisable as a test event (``evt_<run id>…``)."""
        return self.identities.event_id(next(_EVENT_SEQUENCE))

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

    async def send_events(
        self, deliveries: Iterable[tuple[str, Mapping[str, Any]]], *, concurrency: int = 8
    ) -> list[Outcome]:
        """Correctly signed deliveries of independent events, at most ``concurrency`` in
        flight (each on its own kept-alive connection): the outcomes in the order given.

        For events whose order does not matter to the app (each about another test user, or
        a batch the check releases together on purpose): N of them cost about N/concurrency
        round trips instead of N. Events one user's state depends on in order must go one
        after another through :meth:`send_event`.
        """
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(label: str, event: Mapping[str, Any]) -> Outcome:
            async with gate:
                return await self.send_event(label, event)

        return list(await asyncio.gather(*(one(label, event) for label, event in deliveries)))

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
        if SIGNATURE_HEADERS & {name.lower() for name in headers}:
            refuse_plain_http_signing(self.config, url or self.url)
        limit = timeout_s or self.timeout_s
        started = time.perf_counter()
        try:
            target = Target.of(url or self.url)
            request = request_bytes(target, body, headers)
        except ValueError as exc:
            return Outcome(label, None, 0.0, error=str(exc), event_id=event_id, never_sent=True)
        # Used without ``async with``: a pool of this delivery's own, dropped after it.
        pool = self._pool(target) if self._entered else self._new_pool(target, keep_alive=False)
        try:
            async with asyncio.timeout(limit):
                answer = await pool.exchange(request)
        except TimeoutError:
            # "no complete answer": the answer may have begun (headers, a dripping body), and
            # the app may have acted on the request before it stopped answering.
            outcome = Outcome(
                label,
                None,
                time.perf_counter() - started,
                error=f"no complete answer within {limit:g} s",
                event_id=event_id,
            )
        except (HttpError, OSError) as exc:
            outcome = Outcome(
                label,
                None,
                time.perf_counter() - started,
                error=describe_failure(exc, endpoint=target.host_header),
                event_id=event_id,
                never_sent=isinstance(exc, ConnectFailed | NotSent),
            )
        except asyncio.CancelledError:
            # Ctrl-C while waiting for the answer: the request may be out, and the app may
            # apply it after the sweep has looked; never let the sweep call it never created.
            note_delivery(body, refused=False)
            raise
        else:
            outcome = self._outcome(label, answer, time.perf_counter() - started, event_id)
        finally:
            if not self._entered:
                pool.close()
        refused = outcome.never_sent or (outcome.status is not None and not outcome.accepted)
        note_delivery(body, refused=refused)
        return outcome

    def _outcome(self, label: str, answer: Answer, latency: float, event_id: str | None) -> Outcome:
        location: str | None = None
        raw_location = answer.headers.get(b"location")
        if answer.status in _REDIRECTS and raw_location is not None:
            # Shown in findings: a redirect target may carry a token in its query.
            from scim_readiness.redact import mask_url_tokens

            shown = raw_location.decode("latin-1")
            location = redact(mask_url_tokens(shown), self._secrets)
            if len(location) > 2 * EXCERPT_CHARS:  # cut after redacting, never before
                location = location[: 2 * EXCERPT_CHARS - 1] + "…"
        return Outcome(
            label,
            answer.status,
            latency,
            excerpt=excerpt(answer.body[:MAX_ANSWER_BYTES], self._secrets),
            location=location,
            event_id=event_id,
        )


@dataclass(frozen=True, slots=True)
class Senders:
    """What every sender of a run is made with (see :class:`Sender`): the config, TLS trust,
    the clock and the run's test identities."""

    config: Config
    tls: TlsSettings
    clock: Clock
    identities: TestIdentities

    def sender(
        self,
        url: str,
        secret: str,
        target: EventTarget,
        timeout_s: float,
        *,
        fresh_connections: bool = False,
    ) -> Sender:
        """A sender to ``url`` (not yet entered: ``async with``); signing with ``secret``
        unless it is empty."""
        return Sender(
            url,
            secret,
            target,
            timeout_s,
            fresh_connections,
            config=self.config,
            tls=self.tls,
            clock=self.clock,
            identities=self.identities,
        )

    def to_webhook(self, target: EventTarget, timeout_s: float | None = None) -> Sender:
        """A sender to the configured webhook, signing with its secret, waiting ``timeout_s``
        (default: ``webhook.timeout_s``); ValueError when the URL or secret is not set."""
        webhook = self.config.webhook
        if not webhook.url or webhook.secret is None:
            raise ValueError("sending to the webhook needs webhook.url and webhook.secret")
        return self.sender(
            webhook.url,
            webhook.secret.get_secret_value(),
            target,
            webhook.timeout_s if timeout_s is None else timeout_s,
        )


#: The statuses whose Location is a redirect (as httpx and Scalekit's sender read them).
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def request_bytes(target: Target, body: bytes, headers: Mapping[str, str]) -> bytes:
    """One POST of ``body`` to ``target`` as HTTP/1.1 bytes: ``application/json`` unless
    ``headers`` says otherwise, keep-alive, the body's length. ValueError for a header that
    would break the request (a line break in it)."""
    from scim_readiness import __version__
    from scim_readiness.clients.http import USER_AGENT

    merged = {
        "host": target.host_header,
        "user-agent": f"{USER_AGENT}/{__version__}",
        "accept": "*/*",
        "content-type": "application/json",
    }
    for name, value in headers.items():
        merged[name.lower()] = value
    merged["content-length"] = str(len(body))
    lines = [f"POST {target.path} HTTP/1.1"]
    for name, value in merged.items():
        if any(c in name or c in value for c in "\r\n\0") or not name:
            raise ValueError(f"header {name[:40]!r} cannot be sent: it holds a line break")
        lines.append(f"{name}: {value}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    try:
        encoded = head.encode("latin-1")
    except UnicodeEncodeError:
        encoded = head.encode("utf-8")  # what httpx sends for a header outside latin-1
    return encoded + body


def describe_failure(exc: BaseException, *, endpoint: str = "the webhook") -> str:
    """A one-line reason for a delivery that got no answer, without a traceback, in the
    words the other clients use (refused, not trusted, closed before a complete answer); a
    refused certificate is named with ``endpoint`` (host:port) and the fix, as everywhere."""
    import socket
    import ssl

    from scim_readiness.clients.trust import certificate_problem

    cause = exc.__cause__ if isinstance(exc, ConnectFailed) and exc.__cause__ else exc
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, socket.gaierror):
        return f"could not resolve the host: {cause.strerror or cause}"
    if (refused := certificate_problem(cause)) is not None:
        return refused.sentence(endpoint)
    if isinstance(cause, ssl.SSLError):
        return f"TLS handshake failed: {cause.reason or cause}"
    if isinstance(cause, NotSent):
        return f"not sent: {cause}"
    if isinstance(cause, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return CUT_SHORT
    if isinstance(cause, HttpError) and "closed" in str(cause):
        return f"{CUT_SHORT} ({cause})"
    text = str(cause) or type(cause).__name__
    return f"{type(cause).__name__}: {text}"[:300]


# ---------------------------------------------------------------------------- test users


async def remove_test_users(
    ledger: Ledger, check_id: str, target: EventTarget, senders: Senders
) -> tuple[list[str], list[str]]:
    """Remove the users check ``check_id`` recorded in the run of ``senders.identities`` and
    has not removed yet, through signed events to the configured webhook
    (``user_updated active:false`` for applied ones, then ``user_deleted``), addressed to
    ``target`` unless a user's line names its organisation.

    Returns (removed, failed) descriptions; failures stay in the ledger as unremovable so
    ``scim-readiness cleanup`` can retry them.
    """
    from scim_readiness.events import EventType, user_deleted_data
    from scim_readiness.plugin.identities import TestIdentity

    identities = senders.identities
    entries = [
        entry
        for entry in ledger.outstanding(identities.run_id)
        if entry.check_id == check_id
        and entry.kind == "user"
        and entry.channel == "events"
        and identities.proves(entry)
    ]
    webhook = senders.config.webhook
    if not entries or not webhook.url or webhook.secret is None:
        return [], [e.object_id for e in entries]
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
            ledger.removed("user", entry.object_id, channel="events", check_id=check_id)
            removed.append(entry.object_id)
        else:
            ledger.unremovable(
                "user",
                entry.object_id,
                channel="events",
                check_id=check_id,
                reason=f"user_deleted answered {outcome.summary()}",
            )
            failed.append(f"{entry.object_id}: {outcome.summary()}")

    # Users are independent of each other: remove a few at a time, so a slow app costs
    # seconds, not minutes.
    gate = asyncio.Semaphore(CLEANUP_CONCURRENCY)

    async def bounded(sender: Sender, entry: LedgerEntry) -> None:
        async with gate:
            await remove(sender, entry)

    async with senders.to_webhook(target) as sender:
        await asyncio.gather(*(bounded(sender, entry) for entry in entries))
    return removed, failed
