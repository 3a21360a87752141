"""Webhook delivery as Scalekit does it: signed (Standard Webhooks, both header families),
retried on anything but a 2xx on the directory quickstart's schedule (``RETRY_SCHEDULE_S``,
scaled for local work), each attempt bounded by Scalekit's 10 s answer deadline, and every
attempt recorded in a log tests and checks can read.

Runs on the emulator's event loop. Events arrive from any thread through ``submit``.

Requests are written as HTTP/1.1 directly on asyncio streams (:mod:`scim_readiness.clients.http1`,
shared with the burst sender), one kept-alive connection per delivery in flight. httpx
cost about a millisecond of CPU per delivery here, and more with more connections in its
pool, so 16 deliveries in flight were slower than one; this way a delivery costs the
emulator tens of microseconds
(``bench/emulator_bench.py`` measures it).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scim_readiness import events
from scim_readiness.clients.http1 import Connection, HttpError, Target

#: Seconds between attempts, from Scalekit's directory quickstart: the first attempt at once,
#: then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h later (eight attempts, about 27.6 h).
#: Multiplied by the delay scale (``emulate --retry-scale``); attempts past the table wait
#: as long as the last entry.
RETRY_SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
#: Scalekit requires an answer within 10 seconds; a slower one is a failed attempt.
ANSWER_DEADLINE_S = 10.0


def retry_delay_s(attempts_made: int) -> float:
    """Unscaled wait before the next attempt, after ``attempts_made`` (>= 1) attempts."""
    return RETRY_SCHEDULE_S[min(attempts_made, len(RETRY_SCHEDULE_S) - 1)]


def describe_schedule(scale: float, attempts: int) -> str:
    """The retry schedule in words, for the banner: ``0, 5 s, 5 min, …``."""

    def span(seconds: float) -> str:
        if seconds == 0:
            return "0"
        for unit, size in (("h", 3600.0), ("min", 60.0), ("s", 1.0)):
            if seconds >= size:
                return f"{seconds / size:g} {unit}"
        return f"{seconds * 1000:g} ms"

    delays = [0.0] + [retry_delay_s(n) * scale for n in range(1, attempts)]
    return ", ".join(span(d) for d in delays)


@dataclass(frozen=True, slots=True)
class Attempt:
    status: int | None  # HTTP status, or None when no answer came
    error: str | None  # why there was no (2xx) answer, in plain words
    latency_s: float
    at: float  # epoch seconds when the attempt started


@dataclass(slots=True)
class Delivery:
    event_id: str
    event_type: str
    endpoint: str
    event: dict[str, Any]
    body: bytes
    attempts: list[Attempt] = field(default_factory=list)
    delivered: bool = False
    finished: bool = False  # delivered, or gave up after the last attempt

    @property
    def status_codes(self) -> list[int | None]:
        return [attempt.status for attempt in self.attempts]


class DeliveryLog:
    """Thread-safe record of every delivery; ``wait_for`` blocks (bounded) until a condition
    on the log holds."""

    def __init__(self) -> None:
        self._items: list[Delivery] = []
        self._changed = threading.Condition()
        self.delivered_count = 0
        self.finished_count = 0
        # Who is waiting, so a change wakes only waiters it may satisfy: waking a waiting
        # thread for each of thousands of deliveries costs the delivering thread the GIL.
        self._delivered_targets: list[int] = []
        self._idle_waiters = 0
        self._condition_waiters = 0

    def _notify(self) -> None:  # with the lock held
        if (
            self._condition_waiters
            or (self._idle_waiters and self.finished_count == len(self._items))
            or (self._delivered_targets and self.delivered_count >= min(self._delivered_targets))
        ):
            self._changed.notify_all()

    def _add(self, delivery: Delivery) -> None:
        with self._changed:
            self._items.append(delivery)
            self._notify()

    def _update(self, delivery: Delivery, *, finished: bool) -> None:
        with self._changed:
            if finished and not delivery.finished:
                delivery.finished = True
                self.finished_count += 1
                self.delivered_count += delivery.delivered
            self._notify()

    def all(self) -> list[Delivery]:
        with self._changed:
            return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Any:
        return iter(self.all())

    def of_type(self, event_type: str) -> list[Delivery]:
        return [d for d in self.all() if d.event_type == event_type]

    def for_event(self, event_id: str) -> list[Delivery]:
        return [d for d in self.all() if d.event_id == event_id]

    def pending(self) -> int:
        return len(self._items) - self.finished_count

    def _wait(self, ready: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not ready():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def wait_delivered(self, count: int, timeout: float = 10.0) -> bool:
        """True once at least ``count`` deliveries succeeded; False after ``timeout`` s."""
        with self._changed:
            self._delivered_targets.append(count)
            try:
                return self._wait(lambda: self.delivered_count >= count, timeout)
            finally:
                self._delivered_targets.remove(count)

    def wait_for(self, condition: Callable[[list[Delivery]], bool], timeout: float = 10.0) -> bool:
        """True once ``condition(all deliveries)`` holds; False after ``timeout`` seconds.
        (The condition runs on every change: for thousands of deliveries prefer
        ``wait_delivered`` / ``wait_idle``, which wake only once they hold.)"""
        with self._changed:
            self._condition_waiters += 1
            try:
                return self._wait(lambda: condition(list(self._items)), timeout)
            finally:
                self._condition_waiters -= 1

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every delivery so far has finished (delivered or given up)."""
        with self._changed:
            self._idle_waiters += 1
            try:
                return self._wait(lambda: self.finished_count == len(self._items), timeout)
            finally:
                self._idle_waiters -= 1


#: Connections open at once across all endpoints (workers and retries); an attempt waits for a
#: free one before its clock starts.
MAX_CONNECTIONS = 64
#: An idle kept-alive connection older than this is closed rather than reused: servers drop
#: idle connections after a few seconds (uvicorn and Node after 5 s, gunicorn after 2 s), and
#: a POST written into one as it is being dropped fails.
KEEPALIVE_EXPIRY_S = 4.0
USER_AGENT = "scim-readiness-emulator (Scalekit webhooks)"


@dataclass(slots=True)
class Endpoint:
    url: str
    secret: str
    queue: asyncio.Queue[Delivery] | None = None
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    # Kept-alive connections not in use, each with the monotonic time it went idle. Every
    # worker takes one and puts it back, so N workers keep N connections open.
    idle: list[tuple[Connection, float]] = field(default_factory=list)
    target: Target | None = None
    head: bytes = b""  # request line and fixed headers, built once


class _ConnectFailed(Exception):
    """Opening the connection (TCP or TLS) failed; ``__cause__`` says why."""


def _describe(exc: BaseException) -> str:
    from scim_readiness.clients.trust import EMULATOR_FIX, certificate_problem

    if (refused := certificate_problem(exc)) is not None:
        return f"could not connect: {refused.sentence('the webhook endpoint', EMULATOR_FIX)}"
    if isinstance(exc, TimeoutError):
        return "no answer within the attempt timeout"
    if isinstance(exc, _ConnectFailed):
        return f"could not connect: {exc.__cause__ or exc}"
    if isinstance(exc, (HttpError, ValueError)):
        return str(exc)  # already plain words
    return f"{type(exc).__name__}: {exc}"


class Dispatcher:
    """Delivers each submitted event to every registered endpoint.

    Per endpoint, ``max_in_flight`` workers take deliveries in submission order, each over its
    own kept-alive HTTP/1.1 connection (so with 1, first attempts reach the endpoint in the
    order the events happened). A failed attempt is retried later, outside that order.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        environment_id: str,
        verify: ssl.SSLContext,
        attempts: int = 8,
        delay_scale: float = 1.0,
        attempt_timeout_s: float = ANSWER_DEADLINE_S,
        max_in_flight: int = 1,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.loop = loop
        self.environment_id = environment_id
        self.verify = verify
        self.attempts = attempts
        self.delay_scale = delay_scale
        self.attempt_timeout_s = attempt_timeout_s
        self.max_in_flight = max_in_flight
        self.log = DeliveryLog()
        self.events: list[dict[str, Any]] = []  # every event emitted, delivered or not
        self._endpoints: list[Endpoint] = []
        self._lock = threading.Lock()
        self._handoff: list[tuple[Endpoint, Delivery]] = []  # submitted, not yet queued
        self._handoff_lock = threading.Lock()
        self._wake_pending = False
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._retries: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- any thread ------------------------------------------------------------------------

    def add_endpoint(self, url: str, secret: str) -> None:
        events.sign(secret, "probe", 0, b"")  # a bad secret fails here, not at first delivery
        with self._lock:
            self._endpoints.append(Endpoint(url, secret))

    def endpoints(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(e.url, e.secret) for e in self._endpoints]

    def submit(
        self, event_type: str, organization_id: str, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        event = events.build_event(
            event_type, data, organization_id=organization_id, environment_id=self.environment_id
        )
        with self._lock:
            self.events.append(event)
            targets = list(self._endpoints)
        if self._closed or not targets:
            return event  # no endpoint yet, or a state change after the emulator stopped
        body = events.encode_body(event)
        # Logged and handed to the loop under one lock, so each endpoint's queue is in log
        # order. Waking the loop costs a write to its self-pipe: only the first of a run of
        # events submitted before it wakes does it.
        with self._handoff_lock:
            for endpoint in targets:
                delivery = Delivery(event["id"], event["type"], endpoint.url, event, body)
                self.log._add(delivery)
                self._handoff.append((endpoint, delivery))
            wake, self._wake_pending = not self._wake_pending, True
        if wake:
            try:
                self.loop.call_soon_threadsafe(self._take_handoff)
            except RuntimeError:  # the loop closed meanwhile
                for _, delivery in self._drain_handoff():
                    self.log._update(delivery, finished=True)
        return event

    def _drain_handoff(self) -> list[tuple[Endpoint, Delivery]]:
        with self._handoff_lock:
            batch, self._handoff = self._handoff, []
            self._wake_pending = False
        return batch

    # -- event loop ------------------------------------------------------------------------

    def _take_handoff(self) -> None:
        for endpoint, delivery in self._drain_handoff():
            self._enqueue(endpoint, delivery)

    def _enqueue(self, endpoint: Endpoint, delivery: Delivery) -> None:
        if self._closed:
            return
        if endpoint.queue is None:
            endpoint.queue = asyncio.Queue()
            endpoint.workers = [
                self.loop.create_task(self._worker(endpoint)) for _ in range(self.max_in_flight)
            ]
        endpoint.queue.put_nowait(delivery)

    async def _worker(self, endpoint: Endpoint) -> None:
        assert endpoint.queue is not None  # noqa: S101 - set before workers start
        while True:
            delivery = await endpoint.queue.get()
            if not await self._attempt(endpoint, delivery):
                self._schedule_retry(endpoint, delivery)

    def _schedule_retry(self, endpoint: Endpoint, delivery: Delivery) -> None:
        if len(delivery.attempts) >= self.attempts:
            self.log._update(delivery, finished=True)
            return
        delay = retry_delay_s(len(delivery.attempts))

        async def later() -> None:
            await asyncio.sleep(delay * self.delay_scale)
            if not await self._attempt(endpoint, delivery):
                self._schedule_retry(endpoint, delivery)

        task = self.loop.create_task(later())
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _attempt(self, endpoint: Endpoint, delivery: Delivery) -> bool:
        timestamp = int(time.time())
        headers = events.signed_headers(
            endpoint.secret, delivery.event_id, timestamp, delivery.body
        )
        status: int | None = None
        error: str | None = None
        async with self._slots:
            started = time.time()
            clock = time.perf_counter()
            try:
                async with asyncio.timeout(self.attempt_timeout_s):
                    status = await self._post(endpoint, headers, delivery.body)
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried
                error = _describe(exc)
            latency = time.perf_counter() - clock
        delivery.attempts.append(Attempt(status, error, latency, started))
        delivery.delivered = error is None
        self.log._update(delivery, finished=delivery.delivered)
        return delivery.delivered

    async def _post(self, endpoint: Endpoint, headers: Mapping[str, str], body: bytes) -> int:
        """POST ``body`` to the endpoint over a kept-alive connection; the answer's status."""
        if endpoint.target is None:
            target = Target.of(endpoint.url)  # ValueError: not an http(s) URL
            endpoint.head = (
                f"POST {target.path} HTTP/1.1\r\nhost: {target.host_header}\r\n"
                f"user-agent: {USER_AGENT}\r\naccept: */*\r\n"
                "content-type: application/json\r\n"
            ).encode("latin-1")
            endpoint.target = target
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = b"%s%scontent-length: %d\r\n\r\n%s" % (
            endpoint.head,
            lines.encode("latin-1"),
            len(body),
            body,
        )
        conn = await self._connection(endpoint, endpoint.target)
        try:
            status, _ = await conn.request(request)
        except BaseException:
            conn.close()
            raise
        if conn.open and not self._closed:
            endpoint.idle.append((conn, time.monotonic()))
        else:
            conn.close()
        return status

    async def _connection(self, endpoint: Endpoint, target: Target) -> Connection:
        now = time.monotonic()
        while endpoint.idle:
            conn, since = endpoint.idle.pop()
            # Reuse only what the server has not closed (its FIN has reached the loop by now).
            if now - since < KEEPALIVE_EXPIRY_S and not (
                conn.reader.at_eof() or conn.writer.transport.is_closing()
            ):
                return conn
            conn.close()
        try:
            async with asyncio.timeout(min(self.attempt_timeout_s, 5)):
                return await Connection.connect(target, self.verify)
        except OSError as exc:  # refused, unreachable, unknown host, TLS (ssl.SSLError)
            raise _ConnectFailed(str(exc)) from exc

    async def aclose(self) -> None:
        self._closed = True
        tasks = [*self._retries]
        for endpoint in self._endpoints:
            tasks.extend(endpoint.workers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for endpoint in self._endpoints:
            for conn, _ in endpoint.idle:
                conn.close()
            endpoint.idle.clear()
        await asyncio.sleep(0)  # let the aborted transports run their connection_lost callbacks
