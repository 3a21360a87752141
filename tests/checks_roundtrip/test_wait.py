"""wait_until: bounded polling with backoff, on a clock that only moves when slept on."""

from __future__ import annotations

import asyncio

import pytest

from scim_readiness.clients.probe import AppUser
from scim_readiness.errors import ProbeError
from scim_readiness.model import Status
from scim_readiness.plugin.contract import FindingRecorder
from scim_readiness.plugin.wait import wait_until
from scim_readiness.provisioning.roundtrip import observe_step


class ManualClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.t += seconds


def test_first_look_is_immediate_and_counts_from_the_change() -> None:
    clock = ManualClock()
    started = clock.t - 0.5  # the change was sent half a second before the first look

    async def observe() -> int:
        return 7

    outcome = asyncio.run(
        wait_until(observe, lambda v: v == 7, budget_s=5, clock=clock, started_at=started)
    )
    assert outcome.satisfied and outcome.value == 7 and outcome.attempts == 1
    assert outcome.elapsed_s == pytest.approx(0.5)
    assert clock.sleeps == []


def test_backoff_doubles_from_20ms_and_stops_at_the_budget() -> None:
    clock = ManualClock()
    seen: list[int] = []

    async def observe() -> int:
        seen.append(len(seen))
        return seen[-1]

    outcome = asyncio.run(
        wait_until(observe, lambda v: False, budget_s=2.0, clock=clock, max_delay_s=0.5)
    )
    assert not outcome.satisfied
    assert outcome.value == seen[-1]  # the last state seen is reported
    assert clock.sleeps[:5] == [0.02, 0.04, 0.08, 0.16, 0.32]
    assert max(clock.sleeps) == 0.5
    assert sum(clock.sleeps) == pytest.approx(2.0)
    assert outcome.elapsed_s == pytest.approx(2.0)


def test_listed_errors_mean_not_yet_and_the_last_one_is_kept() -> None:
    clock = ManualClock()
    calls = 0

    async def observe() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ProbeError(f"probe down ({calls})")
        return "up"

    outcome = asyncio.run(
        wait_until(observe, lambda v: v == "up", budget_s=1, clock=clock, retry_on=(ProbeError,))
    )
    assert outcome.satisfied and outcome.attempts == 3 and outcome.error is None

    async def always_down() -> str:
        raise ProbeError("probe down")

    failed = asyncio.run(
        wait_until(always_down, bool, budget_s=0.1, clock=clock, retry_on=(ProbeError,))
    )
    assert not failed.satisfied and failed.value is None
    assert isinstance(failed.error, ProbeError)


def test_other_errors_propagate() -> None:
    async def broken() -> int:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        asyncio.run(wait_until(broken, bool, budget_s=1, clock=ManualClock()))


def test_errors_in_a_row_end_the_wait_early_but_a_good_look_resets_the_count() -> None:
    clock = ManualClock()
    answers: list[int | None] = [None, None, 1, None, None, None, 2]  # None: the probe fails

    async def observe() -> int:
        answer = answers.pop(0)
        if answer is None:
            raise ProbeError("probe user_by_email at https://app.example/probe failed")
        return answer

    outcome = asyncio.run(
        wait_until(
            observe,
            lambda v: v == 2,
            budget_s=30,
            clock=clock,
            retry_on=(ProbeError,),
            errors_in_a_row=3,
        )
    )
    assert outcome.gave_up and not outcome.satisfied
    assert outcome.attempts == 6  # two failures, a good look, then three failures in a row
    assert outcome.value == 1  # the last state seen is still reported
    assert isinstance(outcome.error, ProbeError)
    assert outcome.elapsed_s < 1  # nowhere near the 30 s budget


def _step_after(looks: list[object]) -> tuple[Status, str]:
    """observe_step over scripted looks (an AppUser, or a ProbeError raised), waiting for an
    inactive user within a 2 s budget, as a round trip waits for a deactivation."""
    clock = ManualClock()
    findings = FindingRecorder()
    script = iter(looks)
    active = AppUser("u1", "d1", "a@example.com", "A", True)

    async def lookup() -> AppUser | None:
        look = next(script, active)
        if isinstance(look, ProbeError):
            raise look
        assert isinstance(look, AppUser)
        return look

    async def look_until_the_end() -> None:
        await observe_step(
            findings,
            clock,
            probing=True,
            step="4. deactivate",
            expected="inactive",
            lookup=lookup,
            settled=lambda found: found is not None and not found.active,
            started_at=clock.monotonic(),
            budget_s=2.0,
        )

    asyncio.run(look_until_the_end())
    (step,) = findings.timeline
    return step.status, step.observed


def test_a_step_whose_last_look_failed_is_error_not_fail() -> None:
    # Active at every look but the last, which failed: the state at the end of the budget was
    # not seen, so "did not reach the state" would be a claim nobody observed.
    active = AppUser("u1", "d1", "a@example.com", "A", True)
    looks: list[object] = [active] * 7 + [ProbeError("probe answered HTTP 503")]
    status, observed = _step_after(looks)
    assert status is Status.ERROR, observed
    assert "the probe failed at the last look" in observed and "503" in observed
    assert "active" in observed  # what the earlier look showed is kept


def test_a_step_seen_unsettled_at_the_last_look_fails() -> None:
    # The same probe hiccup earlier in the wait: the last look saw the user still active.
    active = AppUser("u1", "d1", "a@example.com", "A", True)
    status, observed = _step_after([active, ProbeError("probe answered HTTP 503"), active])
    assert status is Status.FAIL, observed
    assert observed.startswith("after 2.0 s: id u1")
