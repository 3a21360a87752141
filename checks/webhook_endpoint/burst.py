"""Webhook bursts: N correctly signed, harmless events at concurrency C, as Scalekit sends them
when an IdP pushes a large change, with throughput and acknowledgement-latency percentiles.

This is the optional burst part of ``webhook-endpoint``, switched on in the config::

    checks:
      webhook-endpoint:
        options:
          burst: {events: 500, concurrency: 10}

It FAILs when the endpoint's p95 acknowledgement latency exceeds ``webhook.latency_budget_s``,
or when any delivery of the burst is not answered with a 2xx (Scalekit retries those, so the
app falls further behind exactly when it is busiest).

The sender is deliberately lean, so the figures are the endpoint's and not the checker's:
events are built and signed with :mod:`scim_readiness.events` exactly as the other webhook
checks do, but they travel over C persistent HTTP/1.1 connections written directly on asyncio
streams. ``delivery.Sender`` (httpx) costs over a millisecond of CPU per request, which caps
a sender near 1,000 deliveries/s on a small machine; this path sustains several thousand
(``bench/burst_bench.py`` measures both against a minimal receiver on loopback). Trust is the
tool's usual one (system store plus ``--ca-bundle``, verification always on); the latency of a
delivery is measured from writing the request to reading the whole answer, so connection set-up
(TLS handshakes, one per connection) is counted in the throughput but not in the percentiles.

The connection itself is :mod:`scim_readiness.clients.http1`, shared with the emulator's delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from scim_readiness import __version__
from scim_readiness.api import ConfigError, DeliveryRefused, FindingRecorder
from scim_readiness.clients.answers import excerpt
from scim_readiness.clients.http import ssl_context
from scim_readiness.clients.http1 import Connection, HttpError, Target
from scim_readiness.events import build_event, directory_data, encode_body, signed_headers
from scim_readiness.guards import refuse_plain_http_signing
from scim_readiness.model import percentile
from scim_readiness.parts import CheckParts
from scim_readiness.webhooks.sender import REDIRECT_WHY

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext

OPTION = "burst"
MAX_EVENTS = 100_000
MAX_CONCURRENCY = 256
DEFAULT_CONCURRENCY = 10
#: A burst stops early after this many consecutive deliveries got no HTTP answer at all
#: (at least the concurrency): the endpoint is down, and waiting out N timeouts tells nothing.
MIN_DEAD_STREAK = 5
_EXAMPLE = "{events: 500, concurrency: 10}"
_KEEP = 5  # distinct errors and sample answers kept as evidence
#: The code of every finding the burst records (webhook-endpoint's catalogue).
CODE = "WHE010"


# ---------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class BurstPlan:
    events: int
    concurrency: int


def parse_plan(
    raw: object, *, where: str = f"checks.webhook-endpoint.options.{OPTION}"
) -> BurstPlan | None:
    """The burst asked for in the config, or None when the option is absent.

    Raises ValueError with a message naming ``where`` for anything else than
    ``{events: N, concurrency: C}`` with 1 <= N <= 100,000 and 1 <= C <= 256.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a mapping like {_EXAMPLE}, got {raw!r}")
    unknown = sorted(str(key) for key in raw if key not in ("events", "concurrency"))
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {', '.join(unknown)}; expected {_EXAMPLE}")
    if "events" not in raw:
        raise ValueError(f"{where} needs events: N (how many deliveries), e.g. {_EXAMPLE}")
    events = _whole(raw["events"], f"{where}.events", 1, MAX_EVENTS)
    concurrency = _whole(
        raw.get("concurrency", min(DEFAULT_CONCURRENCY, events)),
        f"{where}.concurrency",
        1,
        MAX_CONCURRENCY,
    )
    return BurstPlan(events=events, concurrency=min(concurrency, events))


def _whole(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number from {low} to {high:,}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high:,}, got {value:,}")
    return value


# ---------------------------------------------------------------------------- the result


@dataclass(frozen=True, slots=True)
class BurstResult:
    """What a burst observed. Latencies are of deliveries that got an HTTP answer."""

    plan: BurstPlan
    elapsed_s: float
    latencies_s: tuple[float, ...]
    statuses: Mapping[int, int]  # HTTP status -> how many deliveries got it
    no_answer: int  # deliveries that got no HTTP answer (refused, reset, timed out)
    connections: int  # connections opened (each with its TLS handshake)
    errors: tuple[str, ...] = ()  # the first distinct reasons for no answer
    samples: tuple[str, ...] = ()  # the first distinct non-2xx answers, redacted
    stopped: str | None = None  # why the burst ended before all N were sent

    @property
    def sent(self) -> int:
        return len(self.latencies_s) + self.no_answer

    @property
    def accepted(self) -> int:
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    @property
    def not_accepted(self) -> int:
        return self.sent - self.accepted

    @property
    def throughput_per_s(self) -> float:
        """Deliveries answered per second over the whole burst (set-up included)."""
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_s(self, pct: float) -> float | None:
        if not self.latencies_s:
            return None
        return percentile(self.latencies_s, pct)

    def stats(self) -> str:
        """``512 deliveries/s; p50 12 ms, p95 30 ms, p99 41 ms`` (or why there are none)."""
        if not self.latencies_s:
            return "no delivery got an HTTP answer"
        p50, p95, p99 = (self.percentile_s(p) or 0.0 for p in (50, 95, 99))
        return (
            f"{self.throughput_per_s:,.0f} deliveries/s; "
            f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        )

    def answers(self) -> str:
        """``HTTP 204 x498, HTTP 503 x2, no answer x0``."""
        parts = [f"HTTP {status} x{count}" for status, count in sorted(self.statuses.items())]
        if self.no_answer:
            parts.append(f"no answer x{self.no_answer}")
        return ", ".join(parts) or "nothing sent"

    def metrics(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "burst_events": self.sent,
            "burst_concurrency": self.plan.concurrency,
            "burst_deliveries_per_s": round(self.throughput_per_s, 1),
        }
        for pct in (50, 95, 99):
            value = self.percentile_s(pct)
            if value is not None:
                found[f"burst_p{pct}_ms"] = round(value * 1000, 1)
        return found

    def evidence(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "events_planned": self.plan.events,
            "events_sent": self.sent,
            "concurrency": self.plan.concurrency,
            "elapsed_s": round(self.elapsed_s, 3),
            "connections": self.connections,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "no_answer": self.no_answer,
            **self.metrics(),
        }
        if self.errors:
            found["errors"] = list(self.errors)
        if self.samples:
            found["sample_answers"] = list(self.samples)
        if self.stopped:
            found["stopped"] = self.stopped
        return found


# ---------------------------------------------------------------------------- the sender


def _reason(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message or exc}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {' '.join(text.split())}"[:200]


@dataclass(slots=True)
class _Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    no_answer: int = 0
    connections: int = 0
    dead_streak: int = 0
    errors: dict[str, None] = field(default_factory=dict)
    samples: dict[str, None] = field(default_factory=dict)
    stopped: str | None = None


EventFactory = Callable[[int], Mapping[str, Any]]


def _request_writer(
    target: Target, secret: str, make_event: EventFactory, clock: Callable[[], float]
) -> Callable[[int], bytes]:
    """What writes delivery n as raw HTTP/1.1 bytes: compact JSON, signed now, with the
    Standard Webhooks headers in both families."""
    fixed = (
        f"POST {target.path} HTTP/1.1\r\n"
        f"host: {target.host_header}\r\n"
        f"user-agent: scim-readiness/{__version__} (burst)\r\n"
        "content-type: application/json\r\n"
        "accept: */*\r\n"
    ).encode("latin-1")

    def request_bytes(n: int) -> bytes:
        event = make_event(n)
        body = encode_body(event)
        headers = signed_headers(secret, str(event["id"]), int(clock()), body)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return b"%scontent-length: %d\r\n%s\r\n%s" % (
            fixed,
            len(body),
            lines.encode("latin-1"),
            body,
        )

    return request_bytes


@dataclass(slots=True)
class _Workers:
    """The burst's C workers: each takes the next delivery number, sends it on its own
    persistent connection and tallies what came back, until N are sent or the burst stops."""

    target: Target
    plan: BurstPlan
    request_bytes: Callable[[int], bytes]
    ssl_context: ssl.SSLContext | None
    timeout_s: float
    max_duration_s: float | None
    secrets: tuple[str, ...]  # blanked out of quoted answers
    tally: _Tally = field(default_factory=_Tally)
    numbers: itertools.count[int] = field(default_factory=itertools.count)
    started: float = field(default_factory=time.perf_counter)
    deadline: float | None = field(init=False)
    dead_limit: int = field(init=False)

    def __post_init__(self) -> None:
        limit = self.max_duration_s
        self.deadline = self.started + limit if limit is not None else None
        self.dead_limit = max(MIN_DEAD_STREAK, self.plan.concurrency)

    def next_number(self) -> int | None:
        """The next delivery to send, or None when the burst is done or out of time."""
        n = next(self.numbers)
        if n >= self.plan.events:
            return None
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.tally.stopped = f"stopped after {self.max_duration_s:g} s (the burst's time limit)"
            return None
        return n

    async def work(self) -> None:
        conn: Connection | None = None
        try:
            while self.tally.stopped is None:
                n = self.next_number()
                if n is None:
                    return
                data = self.request_bytes(n)
                try:
                    async with asyncio.timeout(self.timeout_s):
                        if conn is None or not conn.open:
                            if conn is not None:
                                conn.close()
                            conn = await Connection.connect(self.target, self.ssl_context)
                            self.tally.connections += 1
                        sent_at = time.perf_counter()
                        status, body = await conn.request(data)
                    latency = time.perf_counter() - sent_at
                except (OSError, TimeoutError, HttpError) as exc:  # ssl.SSLError is an OSError
                    self.no_answer(exc)
                    if conn is not None:
                        conn.close()
                        conn = None
                    continue
                self.answered(status, body, latency)
        finally:
            if conn is not None:
                conn.close()

    def no_answer(self, exc: BaseException) -> None:
        tally = self.tally
        tally.no_answer += 1
        tally.dead_streak += 1
        if len(tally.errors) < _KEEP:
            tally.errors[_reason(exc, self.timeout_s)] = None
        if tally.dead_streak >= self.dead_limit:
            tally.stopped = (
                f"stopped after {tally.dead_streak} deliveries in a row got no HTTP answer"
            )

    def answered(self, status: int, body: bytes, latency: float) -> None:
        tally = self.tally
        tally.dead_streak = 0
        tally.latencies.append(latency)
        tally.statuses[status] += 1
        if not 200 <= status < 300 and len(tally.samples) < _KEEP:
            text = excerpt(body, self.secrets)
            tally.samples[f"HTTP {status}: {text}" if text else f"HTTP {status}"] = None

    def result(self) -> BurstResult:
        tally = self.tally
        return BurstResult(
            plan=self.plan,
            elapsed_s=time.perf_counter() - self.started,
            latencies_s=tuple(tally.latencies),
            statuses=dict(tally.statuses),
            no_answer=tally.no_answer,
            connections=tally.connections,
            errors=tuple(tally.errors),
            samples=tuple(tally.samples),
            stopped=tally.stopped,
        )


async def send_burst(
    url: str,
    secret: str,
    plan: BurstPlan,
    make_event: EventFactory,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout_s: float = 10.0,
    max_duration_s: float | None = None,
    redact: Sequence[str] = (),
    clock: Callable[[], float] = time.time,
) -> BurstResult:
    """Deliver ``plan.events`` events (``make_event(n)`` for n = 0…N-1), each compact JSON with
    Standard Webhooks headers in both families, over ``plan.concurrency`` connections.

    Never raises for network trouble: refused, reset and timed-out deliveries are counted as
    ``no_answer``. Stops early after a run of deliveries with no answer (the endpoint is down)
    or after ``max_duration_s``; ``BurstResult.stopped`` then says why.
    ``redact`` lists secrets to blank out of quoted answers.
    """
    target = Target.of(url)
    signed_headers(secret, "probe", 0, b"")  # a bad secret raises ValueError here, once
    workers = _Workers(
        target,
        plan,
        _request_writer(target, secret, make_event, clock),
        ssl_context,
        timeout_s,
        max_duration_s,
        secrets=tuple(s for s in (secret, *redact) if s),
    )
    tasks = [asyncio.create_task(workers.work()) for _ in range(plan.concurrency)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _ in range(2):  # let the aborted transports run their connection_lost callbacks
            await asyncio.sleep(0)
    return workers.result()


# ---------------------------------------------------------------------------- the check step


class EndpointView(Protocol):
    """What the burst needs from ``webhook-endpoint``'s parsed endpoint."""

    url: str
    reachable: bool
    deliverable: bool


async def burst_step(ctx: CheckContext, ep: EndpointView) -> None:
    """The burst part of ``webhook-endpoint`` (a step after the single signed deliveries).

    Records nothing when ``options.burst`` is absent. ERROR: the option is malformed.
    SKIP: no secret, or the endpoint cannot be delivered to (earlier steps say why).
    FAIL: a delivery was not acknowledged with 2xx (a redirect included: it is not
    followed), or p95 exceeds the latency budget. WARN: the burst hit its time limit before
    all events were sent. PASS otherwise.
    """
    try:
        plan: BurstPlan | None = ctx.option(OPTION)  # parsed by parse_plan (the check's Options)
    except ConfigError as exc:
        ctx.findings.errored(
            "Burst option is invalid",
            observed=exc.message,
            fix=f"Write it as checks.webhook-endpoint.options.{OPTION}: {_EXAMPLE}, "
            "or remove it to skip the burst.",
            code=CODE,
        )
        return
    if plan is None:
        return
    title = _title(plan)
    secret = _signing_secret(ctx, ep, title)
    if secret is None:
        return
    event_type: str = ctx.option("harmless_event_type")
    check_timeout = ctx.settings.timeout_s or ctx.info.default_timeout_s
    async with contextlib.AsyncExitStack() as holding:
        # The burst floods the app: it holds it alone, so it neither slows nor times the other
        # checks' changes; the wait is bounded so the burst keeps the time it needs.
        wait_s = check_timeout / 4
        try:
            async with asyncio.timeout(wait_s):
                await holding.enter_async_context(ctx.app_alone())
        except TimeoutError:
            ctx.findings.skipped(
                f"{title}: not sent",
                observed=f"other checks were still at work on the app after {wait_s:g} s",
                why="A burst beside other checks' changes would slow their work and time "
                "theirs along with the endpoint's.",
                fix="Raise checks.webhook-endpoint.timeout_s so the burst can wait for the "
                "other checks (it waits a quarter of it), or run it alone with "
                "--only webhook-endpoint.",
                code=CODE,
            )
            return
        await _send(ctx, ep.url, secret, plan, title, check_timeout, event_type)


async def _send(
    ctx: CheckContext,
    url: str,
    secret: str,
    plan: BurstPlan,
    title: str,
    check_timeout: float,
    event_type: str,
) -> None:
    budget = ctx.config.webhook.latency_budget_s
    try:
        result = await send_burst(
            url,
            secret,
            plan,
            _event_factory(ctx, event_type),
            ssl_context=ssl_context(ctx.tls) if url.startswith("https:") else None,
            timeout_s=max(ctx.config.webhook.timeout_s, budget),
            # Leave the check time to report: a burst cut by the runner's timeout says nothing.
            max_duration_s=check_timeout / 2,
            redact=ctx.config.secret_values(),
            clock=ctx.clock.now,
        )
    except ValueError as exc:  # a secret that is not whsec_…, a URL that is not http(s)
        ctx.findings.errored(f"{title}: not sent", observed=str(exc), code=CODE)
        return
    record_burst(ctx, result, budget=budget, event_type=event_type)


def _title(plan: BurstPlan) -> str:
    return f"Burst of {plan.events:,} signed events at concurrency {plan.concurrency}"


def _signing_secret(ctx: CheckContext, ep: EndpointView, title: str) -> str | None:
    """The secret to sign the burst with; None (SKIP recorded) when there is none, the
    endpoint cannot be delivered to, or nothing signed may go to its URL."""
    secret = ctx.config.webhook.secret
    if secret is None or not secret.get_secret_value():
        ctx.findings.skipped(
            f"{title}: not sent",
            observed="no webhook secret configured",
            why="Only correctly signed events measure how the endpoint copes with load.",
            fix="Set webhook.secret (as ${SCALEKIT_WEBHOOK_SECRET}) in the config.",
            code=CODE,
        )
        return None
    if not ep.reachable or not ep.deliverable:
        ctx.findings.skipped(
            f"{title}: not sent",
            observed="the endpoint cannot be delivered to (see the findings above)",
            code=CODE,
        )
        return None
    # The burst has its own transport (for speed), so it applies the senders' rule itself.
    try:
        refuse_plain_http_signing(ctx.config, ep.url)
    except DeliveryRefused as refused:
        ctx.findings.skipped(
            f"{title}: not sent", observed=refused.message, fix=refused.hint, code=CODE
        )
        return None
    return secret.get_secret_value()


def _event_factory(ctx: CheckContext, event_type: str) -> EventFactory:
    """Harmless events of ``event_type`` for the configured organisation and directory."""
    target = CheckParts(ctx).event_target()
    data = directory_data(
        id=ctx.config.scalekit.directory_id or f"dir_{ctx.run_id}",
        organization_id=target.organization_id,
    )

    def make_event(n: int) -> dict[str, Any]:
        # Ids carry the run id (recognisable as test events) and differ from every other
        # delivery of the run, so an app that deduplicates webhook-ids processes each one.
        return build_event(
            event_type,
            data,
            organization_id=target.organization_id,
            environment_id=target.environment_id,
            event_id=f"evt_{ctx.run_id}burst{n:06d}",
        )

    return make_event


def record_burst(ctx: CheckContext, result: BurstResult, *, budget: float, event_type: str) -> None:
    """Turn a burst's result into findings and metrics (see ``burst_step``)."""
    plan = result.plan
    ctx.findings.metrics.update(result.metrics())
    title = _title(plan)
    evidence = {**result.evidence(), "latency_budget_s": budget, "event_type": event_type}
    observed = (
        f"{result.sent:,} sent in {result.elapsed_s:.2f} s: {result.answers()}; {result.stats()}"
    )
    if result.samples:
        observed += "; first answers: " + " | ".join(result.samples[:2])
    if result.errors:
        observed += "; " + " | ".join(result.errors[:2])
    kw: dict[str, Any] = {"observed": observed, "evidence": evidence, "code": CODE}
    if _burst_failed(ctx.findings, result, title, budget, kw):
        return
    if result.stopped:
        ctx.findings.warned(
            f"{title}: {result.stopped}",
            expected=f"{plan.events:,} deliveries",
            why="Only part of the burst was measured.",
            fix="Raise checks.webhook-endpoint.timeout_s, or ask for fewer events.",
            **kw,
        )
        return
    ctx.findings.passed(
        f"{title}: acknowledged within the latency budget",
        expected=f"a 2xx for every delivery, p95 within {budget:g} s",
        **kw,
    )


def _burst_failed(
    findings: FindingRecorder, result: BurstResult, title: str, budget: float, kw: dict[str, Any]
) -> bool:
    """FAIL when only redirects, or any other non-2xx, or a p95 over ``budget`` came back;
    True then. ``kw``: what every burst finding carries (observed, evidence, code)."""
    redirects = sum(n for status, n in result.statuses.items() if 300 <= status < 400)
    if redirects and redirects == result.not_accepted:
        findings.failed(
            f"{title}: {redirects:,} answered with a redirect",
            expected=f"a 2xx from the registered URL itself within {budget:g} s",
            why=REDIRECT_WHY,
            fix="Register the final URL in Scalekit instead.",
            **kw,
        )
        return True
    if result.not_accepted:
        findings.failed(
            f"{title}: {result.not_accepted:,} not acknowledged with 2xx",
            expected=f"a 2xx for every delivery within {budget:g} s",
            why="Scalekit retries every delivery that does not get a 2xx; an endpoint that "
            "sheds load under a burst (a bulk assignment in the IdP) falls further behind "
            "and may lose events after the last retry.",
            fix="Acknowledge as soon as the signature is verified and the event is stored, "
            "process in a background queue, and size the endpoint (workers, connection "
            "limits, rate limits) for bursts.",
            **kw,
        )
        return True
    p95 = result.percentile_s(95)
    if p95 is not None and p95 > budget:
        findings.failed(
            f"{title}: p95 acknowledgement {p95 * 1000:.0f} ms is over the latency budget",
            expected=f"p95 within {budget:g} s",
            why="Under load a slow acknowledgement counts as a failed delivery: Scalekit "
            "retries it, adding to the load that made it slow.",
            fix="Return 2xx as soon as the event is verified and stored; do the provisioning "
            "work in a background job.",
            **kw,
        )
        return True
    return False
