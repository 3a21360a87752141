"""Bounded waiting for eventual consistency: poll with backoff until a predicate holds.

Provisioning is asynchronous end to end (the IdP, Scalekit, the webhook, the app's queue), so a
round-trip check observes the app repeatedly until it shows the expected state or a budget
runs out. The first look comes at once, then after ~20 ms, doubling up to a ceiling, so a fast
app is measured in milliseconds and a slow one costs a handful of requests, never a hang.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from scim_readiness.plugin.contract import Clock, SystemClock

T = TypeVar("T")

FIRST_DELAY_S = 0.02
MAX_DELAY_S = 1.0


@dataclass(frozen=True, slots=True)
class WaitOutcome(Generic[T]):
    """How a wait ended.

    ``value`` is the last state observed (None when every observation failed); ``error`` the
    last observation error, if the last attempt raised; ``elapsed_s`` is measured from
    ``started_at`` (the moment the change was sent) to the observation that settled it, or
    to the end of the budget.
    """

    satisfied: bool
    value: T | None
    elapsed_s: float
    attempts: int
    error: Exception | None = None
    #: The wait stopped early: ``errors_in_a_row`` observations in a row raised.
    gave_up: bool = False


async def wait_until(
    observe: Callable[[], Awaitable[T]],
    predicate: Callable[[T], bool],
    *,
    budget_s: float,
    clock: Clock | None = None,
    started_at: float | None = None,
    first_delay_s: float = FIRST_DELAY_S,
    max_delay_s: float = MAX_DELAY_S,
    retry_on: tuple[type[Exception], ...] = (),
    errors_in_a_row: int | None = None,
) -> WaitOutcome[T]:
    """Call ``observe`` until ``predicate(value)`` is true or ``budget_s`` has passed.

    Exceptions listed in ``retry_on`` count as "not yet" (the last one is returned); any other
    exception propagates. After ``errors_in_a_row`` such exceptions with no good observation
    between them the wait stops early (``gave_up``): the observer itself is broken, and
    waiting out the budget would only hide that. The budget is measured from ``started_at``
    (a ``clock.monotonic()`` reading) when given, so time spent sending the change counts
    against it; at least one observation is always made.
    """
    clock = clock or SystemClock()
    start = clock.monotonic() if started_at is None else started_at
    deadline = start + max(budget_s, 0.0)
    delay = max(first_delay_s, 0.001)
    attempts = 0
    value: T | None = None
    error: Exception | None = None
    failed_in_a_row = 0
    while True:
        attempts += 1
        try:
            value = await observe()
            error = None
            failed_in_a_row = 0
            if predicate(value):
                return WaitOutcome(True, value, clock.monotonic() - start, attempts)
        except retry_on as exc:
            error = exc
            failed_in_a_row += 1
            if errors_in_a_row is not None and failed_in_a_row >= errors_in_a_row:
                return WaitOutcome(
                    False, value, clock.monotonic() - start, attempts, error, gave_up=True
                )
        now = clock.monotonic()
        if now >= deadline:
            return WaitOutcome(False, value, now - start, attempts, error)
        await clock.sleep(min(delay, deadline - now))
        delay = min(delay * 2, max_delay_s)
