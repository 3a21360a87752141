"""Observing one round-trip step through the probe and putting it on the check's timeline.

A step is: the checker made a change (through a provisioning driver), then watches the app
through the probe until the app shows a *settled* state or the step's budget runs out. The
settled state is then judged (PASS, WARN, FAIL) and recorded with its propagation time, the
time from sending the change to the observation that showed it. Without a probe nothing can
be observed, so the step is SKIP with that reason, never PASS.

Both round-trip checks (``user-lifecycle``, ``group-roles``) also share what comes before and
after their steps, kept here once: the read-only skip, the ``mode``/``step_timeout_s``
options, the skip for a mode the config cannot drive, a change the app or the SCIM endpoint
refused, and the removal of their test objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scim_readiness.errors import ConfigError, ProbeError
from scim_readiness.model import Status
from scim_readiness.plugin.options import RoundTripOptions
from scim_readiness.plugin.wait import wait_until
from scim_readiness.provisioning.drivers import probe_reads_by_email

if TYPE_CHECKING:
    from scim_readiness.clients.probe import AppUser
    from scim_readiness.plugin.context import CheckContext
    from scim_readiness.provisioning.drivers import ChangeRejected, DirectoryUser, Mode

NO_PROBE = "not observed: no probe is configured, so the app's state cannot be read"
#: A probe that fails this many times in a row is broken, not slow: the step stops waiting.
PROBE_ERRORS_IN_A_ROW = 3

Lookup = Callable[[], Awaitable["AppUser | None"]]
Judge = Callable[["AppUser | None"], "tuple[Status, str]"]


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """How one step ended. ``user`` is the last state seen (None: absent or never read)."""

    status: Status
    observed: str
    user: AppUser | None = None
    latency_s: float | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in (Status.PASS, Status.WARN)


def step_budget(ctx: CheckContext) -> float:
    """The per-step budget (option ``step_timeout_s``; ConfigError when invalid)."""
    return RoundTripOptions.of(ctx).step_timeout_s


def round_trip_options(ctx: CheckContext) -> tuple[Mode, float] | None:
    """The check's ``mode`` and per-step budget; None (recorded as ERROR) when invalid."""
    from scim_readiness.provisioning.drivers import selected_mode

    try:
        return selected_mode(ctx), step_budget(ctx)
    except ConfigError as exc:
        check_id = ctx.info.id
        ctx.findings.errored(
            f"Invalid {check_id} options",
            observed=exc.message,
            fix=f"Set checks.{check_id}.options.mode to events or scim and step_timeout_s to a "
            "number of seconds.",
        )
        return None


def skipped_unconfigured_mode(ctx: CheckContext, mode: Mode, *, part: str = "Not run") -> bool:
    """When the config lacks what ``mode`` needs, record ``part`` (the check, or the side of
    it that needs the mode) as SKIP and return True."""
    from scim_readiness.provisioning.drivers import missing_for_mode

    missing = missing_for_mode(ctx, mode)
    if not missing:
        return False
    ctx.findings.skipped(
        f"{part}: mode '{mode}' is not configured",
        why=missing,
        fix="Add the missing section to the config, or choose the other mode.",
    )
    return True


def record_refused(
    ctx: CheckContext, step: str, expected: str, exc: ChangeRejected, *, why: str, fix: str
) -> None:
    """Put a change that was refused on the timeline and say who refused it: the app (FAIL,
    with the check's ``why`` and ``fix``) or the directory's SCIM endpoint (ERROR)."""
    from scim_readiness.provisioning.drivers import DeliveryRedirected

    evidence = {"step": step, "status": exc.status}
    if isinstance(exc, DeliveryRedirected):
        from scim_readiness.webhooks.sender import REDIRECT_WHY

        ctx.findings.step(step, expected=expected, observed=str(exc), status=Status.ERROR)
        ctx.findings.errored(
            f"Step {step}: {exc}",
            expected="2xx for a correctly signed, well-formed directory event",
            why=REDIRECT_WHY,
            fix="Fix the redirect first (see webhook-endpoint).",
            evidence=evidence,
        )
        return
    if exc.by_app:
        ctx.findings.step(step, expected=expected, observed=str(exc), status=Status.FAIL)
        ctx.findings.failed(
            f"Step {step}: the app refused a correctly signed event",
            expected="2xx for a correctly signed, well-formed directory event",
            observed=str(exc),
            why=why,
            fix=fix,
            evidence=evidence,
        )
        return
    ctx.findings.step(step, expected=expected, observed=str(exc), status=Status.ERROR)
    ctx.findings.errored(
        f"Step {step}: the directory's SCIM endpoint refused the change",
        expected="a 2xx answer from the SCIM endpoint",
        observed=str(exc),
        why="The change never reached Scalekit, so the app could not be evaluated.",
        fix="Check scim_idp.url (the directory's SCIM base URL) and scim_idp.token; if the "
        "endpoint refuses the test email address, set test_identities.email_domain to a "
        "domain it accepts.",
        evidence=evidence,
    )


async def remove_test_objects(ctx: CheckContext, *, what: str) -> None:
    """The check's ``cleanup``: remove what the ledger says is outstanding; WARN naming
    ``what`` (e.g. "Test users") when some of it could not be removed."""
    from scim_readiness.provisioning.drivers import cleanup_outstanding

    outcome = await cleanup_outstanding(ctx)
    if outcome.failed:
        ctx.findings.warned(
            "Some test objects could not be removed",
            observed="; ".join(outcome.failed),
            why=f"{what} left behind clutter the app and the directory.",
            fix="Run `scim-readiness cleanup` once the cause is fixed.",
        )


#: After a step has failed, later steps wait at most this long, or ten times the slowest step
#: seen to pass, whichever is longer (and never longer than the configured budget).
AFTER_FAILURE_FLOOR_S = 5.0


def budget_after_failure(ctx: CheckContext, budget_s: float) -> float:
    """A shorter budget once one step has used up its own: the app has shown how fast it
    is, and a second defect should not cost another full budget (the run has one too)."""
    passed = [
        step.latency_s
        for step in ctx.findings.timeline
        if step.status is Status.PASS and step.latency_s is not None
    ]
    return min(budget_s, max(AFTER_FAILURE_FLOOR_S, 10 * max(passed, default=0.0)))


def app_user_lookup(ctx: CheckContext, user: DirectoryUser) -> Lookup:
    """Read ``user`` from the app through the probe: by its current email, or by its
    directory user id when the probe has no email lookup. Reads ``user`` at call time, so a
    changed email is followed."""
    by_email = probe_reads_by_email(ctx)

    async def lookup() -> AppUser | None:
        probe = ctx.probe
        if probe is None:
            return None
        if by_email:
            return await probe.user_by_email(user.email)
        return await probe.user_by_id(user.handle)

    return lookup


def describe_user(user: AppUser | None) -> str:
    """A one-line view of what the probe showed, for ``observed`` fields."""
    if user is None:
        return "no such user in the app"
    parts = [
        f"id {user.id}",
        user.email,
        "active" if user.active else "inactive",
        f"name {user.name!r}" if user.name is not None else "no name",
        f"roles [{', '.join(user.roles)}]",
    ]
    if user.tenant is not None:
        parts.append(f"tenant {user.tenant}")
    return ", ".join(parts)


def roles_text(roles: Iterable[str]) -> str:
    """``roles [admin, editor]`` or ``no role``."""
    names = sorted(roles)
    return "roles [" + ", ".join(names) + "]" if names else "no role"


async def observe_step(
    ctx: CheckContext,
    *,
    step: str,
    expected: str,
    lookup: Lookup,
    settled: Callable[[AppUser | None], bool],
    judge: Judge | None = None,
    started_at: float,
    budget_s: float,
) -> StepOutcome:
    """Poll ``lookup`` until ``settled`` holds or the budget ends, judge, and record the step.

    ``judge`` turns a settled state into a status and an observation (default: PASS with the
    state described). An unsettled state at the end of the budget is FAIL with the last state
    seen; a probe that failed on every attempt, or several times in a row, is ERROR (the
    latter at once, without waiting out the budget).
    """
    if ctx.probe is None:
        ctx.findings.step(step, expected=expected, observed=NO_PROBE, status=Status.SKIP)
        return StepOutcome(Status.SKIP, NO_PROBE)
    outcome = await wait_until(
        lookup,
        settled,
        budget_s=budget_s,
        clock=ctx.clock,
        started_at=started_at,
        retry_on=(ProbeError,),
        errors_in_a_row=PROBE_ERRORS_IN_A_ROW,
    )
    if outcome.satisfied:
        status, observed = (
            judge(outcome.value) if judge else (Status.PASS, describe_user(outcome.value))
        )
        latency: float | None = outcome.elapsed_s
    elif outcome.gave_up:
        status = Status.ERROR
        observed = (
            f"stopped waiting after {outcome.elapsed_s:.1f} s: the probe failed "
            f"{PROBE_ERRORS_IN_A_ROW} times in a row: {outcome.error}"
        )
        latency = None
    elif outcome.error is not None and outcome.value is None:
        status = Status.ERROR
        observed = f"the probe failed for {outcome.elapsed_s:.1f} s: {outcome.error}"
        latency = None
    else:
        status = Status.FAIL
        observed = f"after {outcome.elapsed_s:.1f} s: {describe_user(outcome.value)}"
        latency = None
    ctx.findings.step(step, expected=expected, observed=observed, status=status, latency_s=latency)
    return StepOutcome(status, observed, outcome.value, latency, outcome.elapsed_s)


def record_not_run(ctx: CheckContext, steps: Iterable[tuple[str, str]], reason: str) -> None:
    """Put steps that could not run on the timeline as SKIP with the reason."""
    for step, expected in steps:
        ctx.findings.step(
            step, expected=expected, observed=f"not run: {reason}", status=Status.SKIP
        )


def restate_last_step(ctx: CheckContext, status: Status, observed: str) -> None:
    """Change the verdict of the step just recorded (when a later insight explains it)."""
    from dataclasses import replace

    timeline = ctx.findings.timeline
    if timeline:
        timeline[-1] = replace(timeline[-1], status=status, observed=observed, latency_s=None)


def latency_summary(ctx: CheckContext) -> dict[str, float]:
    """Propagation time per observed step, in milliseconds, for metrics and evidence."""
    return {
        item.step: round(item.latency_s * 1000, 1)
        for item in ctx.findings.timeline
        if item.latency_s is not None
    }


def latencies_text(ctx: CheckContext) -> str:
    """``1. create 12.5 ms, 2. update profile 8 ms``: the propagation times, for findings."""
    return ", ".join(f"{step} {ms:g} ms" for step, ms in latency_summary(ctx).items())


def record_not_observed(ctx: CheckContext, title: str, *, why: str) -> None:
    """SKIP for a run whose changes were all accepted but, without a probe, not observed."""
    ctx.findings.skipped(
        title,
        observed="every change was accepted; " + NO_PROBE,
        why=why,
        fix="Configure a probe (http or command) so the check can read the app's users.",
    )
