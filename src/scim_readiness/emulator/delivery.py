"""Webhook delivery as Scalekit does it: signed (Standard Webhooks, both header families),
retried with exponential backoff on anything but a 2xx, each attempt bounded in time, and
every attempt recorded in a log tests and checks can read.

Runs on the emulator's event loop. Events arrive from any thread through ``submit``.
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

#: Delay before retry n (n = 1…) is BASE * FACTOR**(n-1) seconds, times the delay scale:
#: 5 s, 20 s, 80 s, … — eight attempts span a few hours, like the service's schedule.
BACKOFF_BASE_S = 5.0
BACKOFF_FACTOR = 4.0
BACKOFF_MAX_S = 10 * 3600.0


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

    def _add(self, delivery: Delivery) -> None:
        with self._changed:
            self._items.append(delivery)
            self._changed.notify_all()

    def _update(self, delivery: Delivery, *, finished: bool) -> None:
        with self._changed:
            if finished and not delivery.finished:
                delivery.finished = True
                self.finished_count += 1
                self.delivered_count += delivery.delivered
            self._changed.notify_all()

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
        return self._wait(lambda: self.delivered_count >= count, timeout)

    def wait_for(self, condition: Callable[[list[Delivery]], bool], timeout: float = 10.0) -> bool:
        """True once ``condition(all deliveries)`` holds; False after ``timeout`` seconds.
        (The condition runs on every change: for thousands of deliveries prefer
        ``wait_delivered`` / ``wait_idle``.)"""
        return self._wait(lambda: condition(list(self._items)), timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every delivery so far has finished (delivered or given up)."""
        return self._wait(lambda: self.finished_count == len(self._items), timeout)


@dataclass(slots=True)
class Endpoint:
    url: str
    secret: str
    queue: asyncio.Queue[Delivery] | None = None
    workers: list[asyncio.Task[None]] = field(default_factory=list)


def _describe(exc: BaseException) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "no answer within the attempt timeout"
    if isinstance(exc, httpx.ConnectError):
        cause = exc.__cause__ or exc
        return f"could not connect: {cause}"
    return f"{type(exc).__name__}: {exc}"


class Dispatcher:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        environment_id: str,
        verify: ssl.SSLContext,
        attempts: int = 8,
        delay_scale: float = 1.0,
        attempt_timeout_s: float = 15.0,
        max_in_flight: int = 1,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
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
        self._client: Any = None
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
        if self._closed:
            return event  # state changed after the emulator stopped: nothing to deliver
        body = events.encode_body(event)
        for endpoint in targets:
            delivery = Delivery(event["id"], event["type"], endpoint.url, event, body)
            self.log._add(delivery)
            try:
                self.loop.call_soon_threadsafe(self._enqueue, endpoint, delivery)
            except RuntimeError:  # the loop closed meanwhile
                self.log._update(delivery, finished=True)
        return event

    # -- event loop ------------------------------------------------------------------------

    def _enqueue(self, endpoint: Endpoint, delivery: Delivery) -> None:
        if self._closed:
            return
        if endpoint.queue is None:
            endpoint.queue = asyncio.Queue()
            endpoint.workers = [
                self.loop.create_task(self._worker(endpoint)) for _ in range(self.max_in_flight)
            ]
        endpoint.queue.put_nowait(delivery)

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                verify=self.verify,
                timeout=httpx.Timeout(
                    self.attempt_timeout_s, connect=min(self.attempt_timeout_s, 5)
                ),
                trust_env=False,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                headers={"user-agent": "scim-readiness-emulator (Scalekit webhooks)"},
            )
        return self._client

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
        delay = min(BACKOFF_BASE_S * BACKOFF_FACTOR ** (len(delivery.attempts) - 1), BACKOFF_MAX_S)

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
        headers["content-type"] = "application/json"
        started = time.time()
        clock = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._http().post(endpoint.url, content=delivery.body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried
            error = _describe(exc)
        latency = time.perf_counter() - clock
        delivery.attempts.append(Attempt(status, error, latency, started))
        delivery.delivered = error is None
        self.log._update(delivery, finished=delivery.delivered)
        return delivery.delivered

    async def aclose(self) -> None:
        self._closed = True
        tasks = [*self._retries]
        for endpoint in self._endpoints:
            tasks.extend(endpoint.workers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
