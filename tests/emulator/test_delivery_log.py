"""The delivery log's waits: each kind wakes when what it waits for holds, whichever other
waits are pending, and gives up (False) when it never does."""

from __future__ import annotations

import threading
from collections.abc import Callable

from scim_readiness.devstack.emulator.delivery import Attempt, Delivery, DeliveryLog


def delivery(n: int) -> Delivery:
    return Delivery(f"evt_{n}", "organization.directory_enabled", "http://x.example", {}, b"{}")


def attempt(log: DeliveryLog, item: Delivery, status: int) -> None:
    """What the dispatcher does after each attempt."""
    item.attempts.append(Attempt(status, None if status < 300 else f"HTTP {status}", 0.0, 0.0))
    item.delivered = status < 300
    log._update(item, finished=item.delivered or len(item.attempts) >= 2)


def waiting(wait: Callable[[], bool]) -> tuple[threading.Thread, list[bool]]:
    """Run ``wait`` on a thread. The tests' waits are bounded at 30 s and joined for 10 s, so a
    wait that a change fails to wake fails the test rather than passing late."""
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(wait()), daemon=True)
    thread.start()
    return thread, result


def test_each_wait_wakes_when_its_own_condition_holds() -> None:
    log = DeliveryLog()
    items = [delivery(n) for n in range(3)]
    for item in items:
        log._add(item)
    # Pending at once: a count, idleness, and a condition no count implies (a retried one).
    count, counted = waiting(lambda: log.wait_delivered(2, timeout=30))
    idle, idled = waiting(lambda: log.wait_idle(timeout=30))
    retried, seen_retry = waiting(
        lambda: log.wait_for(lambda ds: any(d.status_codes[:1] == [500] for d in ds), 30)
    )
    attempt(log, items[0], 500)  # not delivered, not finished: only the condition holds
    retried.join(10)
    assert seen_retry == [True]
    assert count.is_alive() and idle.is_alive()
    attempt(log, items[1], 200)
    attempt(log, items[0], 200)  # two delivered; one still pending
    count.join(10)
    assert counted == [True]
    assert idle.is_alive()
    attempt(log, items[2], 503)
    attempt(log, items[2], 503)  # given up after two attempts: now every one has finished
    idle.join(10)
    assert idled == [True]
    assert (log.delivered_count, log.finished_count, log.pending()) == (2, 3, 0)


def test_two_waits_for_different_counts_each_wake_at_their_own() -> None:
    log = DeliveryLog()
    items = [delivery(n) for n in range(3)]
    for item in items:
        log._add(item)
    low, low_result = waiting(lambda: log.wait_delivered(1, timeout=30))
    high, high_result = waiting(lambda: log.wait_delivered(3, timeout=30))
    attempt(log, items[0], 200)
    low.join(10)
    assert low_result == [True]
    assert high.is_alive()
    attempt(log, items[1], 204)
    attempt(log, items[2], 202)
    high.join(10)
    assert high_result == [True]


def test_a_wait_that_never_holds_returns_false_when_its_time_is_up() -> None:
    log = DeliveryLog()
    log._add(delivery(1))
    assert log.wait_delivered(1, timeout=0.05) is False
    assert log.wait_idle(timeout=0.05) is False
    assert log.wait_for(lambda ds: False, timeout=0.05) is False
    # and the finished waits leave nothing behind that a later wait trips over
    item = log.all()[0]
    attempt(log, item, 200)
    assert log.wait_delivered(1, timeout=10)
    assert log.wait_idle(timeout=10)
