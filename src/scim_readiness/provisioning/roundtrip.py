"""Round trips as tables of steps, driven by one stepper.

A round-trip check is a table of :class:`Step` rows. Each row names the change the checker
makes (through a provisioning driver), the state the app must then show, why that matters,
the fix, and the finding code its findings carry. :class:`Stepper` works through the table:
it makes the change, watches the app through the probe until the app shows a *settled* state
or the step's budget runs out, judges that state (PASS, WARN, FAIL) and puts it on the
check's timeline with its propagation time, the time from sending the change to the
observation that showed it. Without a probe nothing can be observed, so the step is SKIP with
that reason, never PASS. A FAIL needs the state at the end of the budget to have been seen: a
probe that failed there is ERROR. A change that is refused ends the table: the later rows are
SKIP, "not run". What a failed step means for the rest (go on, or stop because later rows
build on it) is the check's call, made in its ``on_failure``; rows left out after a probe
failure are SKIP, "not judged". A row after one that did not reach its state is judged only
from a known state other than the one it waits for, else it is SKIP, "not judged".

Both round-trip checks (``user-lifecycle``, ``group-roles``) also share what comes before and
after their steps, kept here once: the ``mode``/``step_timeout_s`` options, the skip for a
mode the config cannot drive, a change the app or the SCIM endpoint refused, and the removal
of their test objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Generic

from scim_readiness.errors import ConfigError, ProbeError
from scim_readiness.model import Status
from scim_readiness.plugin.contract import Clock, FindingCode, FindingRecorder
from scim_readiness.plugin.options import RoundTripOptions, RunningCheck
from scim_readiness.plugin.wait import wait_until
from scim_readiness.provisioning.drivers import (
    ChangeRejected,
    DeliveryRedirected,
    DirectoryUser,
    Mode,
    Teardown,
    cleanup_outstanding,
    missing_for_mode,
    probe_reads_by_email,
)
from scim_readiness.provisioning.steps import S, Step, StepOutcome
from scim_readiness.webhooks.sender import REDIRECT_WHY

if TYPE_CHECKING:
    from scim_readiness.clients.probe import AppUser, Probe
    from scim_readiness.config import Config, ProbeSection

NO_PROBE = "not observed: no probe is configured, so the app's state cannot be read"
#: A probe that fails this many times in a row is broken, not slow: the step stops waiting.
PROBE_ERRORS_IN_A_ROW = 3

Lookup = Callable[[], Awaitable["AppUser | None"]]
Judge = Callable[["AppUser | None"], "tuple[Status, str]"]


#: A check's answer to a failed step (FAIL or ERROR): why the later rows do not run, or None
#: to go on with them.
OnFailure = Callable[[int, Step[S], StepOutcome], Awaitable[str | None]]


@dataclass
class Stepper(Generic[S]):
    """Works through a table of steps for one run state (see the module docstring).

    ``read`` reads the state's user from the app; ``probing`` is False without a probe (every
    step is then SKIP). With ``shorten_after_failure``, once a step has failed the later
    ones wait :func:`budget_after_failure` at most. ``refused_expected`` is what the timeline
    says was expected of a refused change (default: the row's ``expected``).
    """

    findings: FindingRecorder
    clock: Clock
    read: Callable[[S], Awaitable[AppUser | None]]
    probing: bool
    budget_s: float
    shorten_after_failure: bool = False
    refused_expected: str | None = None
    outcomes: dict[str, StepOutcome] = field(default_factory=dict)
    #: The row after whose failure ``on_failure`` stopped the run, and the row whose change
    #: was refused (indexes into the table; None: it did not happen).
    stopped_at: int | None = None
    refused_at: int | None = None
    finished: bool = False
    #: The rows SKIP because their change could not show in the app (``Step.unobservable``).
    unobservable: list[str] = field(default_factory=list)

    def budget(self) -> float:
        """The budget the next wait gets."""
        if self.shorten_after_failure and any(o.failed for o in self.outcomes.values()):
            return budget_after_failure(self.findings, self.budget_s)
        return self.budget_s

    async def run(self, table: Sequence[Step[S]], state: S, on_failure: OnFailure[S]) -> None:
        """Every row in turn, until one is refused or ``on_failure`` stops the run.

        A row after one that did not reach its state still has its change made, but it is
        judged only from a known starting state that is not already the one it waits for:
        otherwise its first look could "pass" on a state its change never produced (a
        reactivation after a deactivation the app ignored). Such a row is SKIP, "not judged".
        A row whose change cannot show in the app (``Step.unobservable``: the state it waits
        for is the one before it) is SKIP, "not observable", when the app shows that state;
        a state that differs is judged as usual.
        """
        start = _Start()
        for index, row in enumerate(table):
            try:
                if row.prepare is not None:
                    await row.prepare(state)
                started = self.clock.monotonic()
                await row.change(state)
            except ChangeRejected as exc:
                expected = self.refused_expected or row.expected
                record_refused(
                    self.findings, row.name, expected, exc, why=row.why, fix=row.fix, code=row.code
                )
                record_not_run(
                    self.findings, _plan(table[index + 1 :]), f"step {row.name} could not be sent"
                )
                self.refused_at = index
                return
            # Judged on what the row expects once its change is made (group-roles' expected
            # roles follow the memberships the change updates).
            unjudged = start.why_not_judged(row, state) if self.probing else None
            blind = None
            if unjudged is None:
                outcome = await self._observe(row, state, started)
                blind = row.unobservable(state) if row.unobservable and outcome.ok else None
                if blind is not None:
                    # The state wanted is the one before the change: seeing it shows nothing
                    # the change did, so SKIP, never PASS (a state that differs still FAILs).
                    outcome = self._unobserved(outcome, f"not observable: {blind}")
                    self.unobservable.append(row.name)
            else:
                outcome = self._not_judged(row, state, unjudged)
            self.outcomes[row.name] = outcome
            # Not observable, the state was still seen to be the one wanted: a known start.
            start = _Start() if blind else start.after(row, outcome, judged=unjudged is None)
            if outcome.failed:
                reason = await on_failure(index, row, outcome)
                if reason is not None:
                    later = _plan(table[index + 1 :])
                    if outcome.status is Status.ERROR:
                        # Nothing after a probe failure was seen: not a verdict, not a FAIL.
                        record_not_judged(self.findings, later, reason)
                    else:
                        record_not_run(self.findings, later, reason)
                    self.stopped_at = index
                    return
            if row.after is not None:
                await row.after(state, outcome, self.budget())
        self.finished = True

    def _not_judged(self, row: Step[S], state: S, reason: str) -> StepOutcome:
        expected = row.shows(state) if row.shows else row.expected
        observed = f"not judged: {reason}"
        self.findings.step(row.name, expected=expected, observed=observed, status=Status.SKIP)
        return StepOutcome(Status.SKIP, observed, expected=expected, code=row.code.code)

    def _unobserved(self, outcome: StepOutcome, reason: str) -> StepOutcome:
        observed = f"{reason}; the app shows {outcome.observed}"
        restate_last_step(self.findings, Status.SKIP, observed)
        return replace(outcome, status=Status.SKIP, observed=observed, latency_s=None)

    async def _observe(self, row: Step[S], state: S, started: float) -> StepOutcome:
        judge = row.judge

        async def lookup() -> AppUser | None:
            return await self.read(state)

        outcome = await observe_step(
            self.findings,
            self.clock,
            probing=self.probing,
            step=row.name,
            expected=row.shows(state) if row.shows else row.expected,
            lookup=lookup,
            settled=lambda found: row.settled(state, found),
            judge=(lambda found: judge(state, found)) if judge else None,
            started_at=started,
            budget_s=self.budget(),
        )
        return replace(outcome, code=row.code.code)


@dataclass(frozen=True, slots=True)
class _Start:
    """What is known of the app's state when a row's change is made: the state the row
    before showed (``ok``), a state seen but not the one wanted (``known``, ``user``), or
    nothing reliable (``unknown``, the reason)."""

    ok: bool = True
    known: bool = True
    user: AppUser | None = None
    unknown: str = ""
    previous: str = ""

    def why_not_judged(self, row: Step[S], state: S) -> str | None:
        """Why ``row`` cannot be judged from here, or None when it can."""
        if self.ok:
            return None
        if not self.known:
            return f"the state before the change is unknown: {self.unknown}"
        if not row.settled(state, self.user):
            return None  # the last state seen differs from the one this row waits for
        return (
            f"the app already showed this state before the change ({self.previous}: "
            f"{describe_user(self.user)})"
        )

    def after(self, row: Step[S], outcome: StepOutcome, *, judged: bool) -> _Start:
        """What is known once ``row`` ended with ``outcome``."""
        if outcome.ok:
            return _Start()
        if outcome.status is Status.FAIL:
            reached = f"step {row.name} did not reach its own"
            return _Start(False, True, outcome.user, previous=reached)
        if outcome.status is Status.ERROR:
            return _Start(False, False, unknown=f"the probe failed at step {row.name}")
        if not judged and self.known:
            # The state already was the one this row's change aims at: it stands.
            return replace(self, previous=f"step {row.name} was not judged")
        return _Start(False, False, unknown=f"step {row.name} was not judged")


def _plan(rows: Iterable[Step[S]]) -> list[tuple[str, str]]:
    return [(row.name, row.expected) for row in rows]


def round_trip_options(
    check: RunningCheck, findings: FindingRecorder, *, code: FindingCode
) -> tuple[Mode, float] | None:
    """The ``mode`` and per-step budget (``step_timeout_s``) of the running ``check``'s
    options; None (recorded on ``findings`` as ERROR) when invalid."""
    try:
        options = RoundTripOptions.of(check)
        return options.mode, options.step_timeout_s
    except ConfigError as exc:
        check_id = check.info.id
        findings.errored(
            f"Invalid {check_id} options",
            observed=exc.message,
            fix=f"Set checks.{check_id}.options.mode to events or scim and step_timeout_s to a "
            "number of seconds.",
            code=code.code,
        )
        return None


def skipped_unconfigured_mode(
    config: Config,
    findings: FindingRecorder,
    mode: Mode,
    *,
    code: FindingCode,
    part: str = "Not run",
) -> bool:
    """When ``config`` lacks what ``mode`` needs, record ``part`` (the check, or the side of
    it that needs the mode) as SKIP and return True."""
    missing = missing_for_mode(config, mode)
    if not missing:
        return False
    findings.skipped(
        f"{part}: mode '{mode}' is not configured",
        why=missing,
        fix="Add the missing section to the config, or choose the other mode.",
        code=code.code,
    )
    return True


def record_refused(
    findings: FindingRecorder,
    step: str,
    expected: str,
    exc: ChangeRejected,
    *,
    why: str,
    fix: str,
    code: FindingCode,
) -> None:
    """Put a change that was refused on the timeline and say who refused it: the app (FAIL,
    with the check's ``why`` and ``fix``) or the directory's SCIM endpoint (ERROR)."""
    evidence = {"step": step, "status": exc.status}
    if isinstance(exc, DeliveryRedirected):
        findings.step(step, expected=expected, observed=str(exc), status=Status.ERROR)
        findings.errored(
            f"Step {step}: {exc}",
            expected="2xx for a correctly signed, well-formed directory event",
            why=REDIRECT_WHY,
            fix="Fix the redirect first (see webhook-endpoint).",
            evidence=evidence,
            code=code.code,
        )
        return
    if exc.by_app:
        findings.step(step, expected=expected, observed=str(exc), status=Status.FAIL)
        findings.failed(
            f"Step {step}: the app refused a correctly signed event",
            expected="2xx for a correctly signed, well-formed directory event",
            observed=str(exc),
            why=why,
            fix=fix,
            evidence=evidence,
            code=code.code,
        )
        return
    findings.step(step, expected=expected, observed=str(exc), status=Status.ERROR)
    findings.errored(
        f"Step {step}: the directory's SCIM endpoint refused the change",
        expected="a 2xx answer from the SCIM endpoint",
        observed=str(exc),
        why="The change never reached Scalekit, so the app could not be evaluated.",
        fix="Check scim_idp.url (the directory's SCIM base URL) and scim_idp.token; if the "
        "endpoint refuses the test email address, set test_identities.email_domain to a "
        "domain it accepts.",
        evidence=evidence,
        code=code.code,
    )


async def remove_test_objects(
    teardown: Teardown, findings: FindingRecorder, *, what: str, code: FindingCode
) -> None:
    """The check's ``cleanup``: remove what the ledger says is outstanding; WARN naming
    ``what`` (e.g. "Test users") when some of it could not be removed."""
    outcome = await cleanup_outstanding(teardown)
    if outcome.failed:
        findings.warned(
            "Some test objects could not be removed",
            observed="; ".join(outcome.failed),
            why=f"{what} left behind clutter the app and the directory.",
            fix="Run `scim-readiness cleanup` once the cause is fixed.",
            code=code.code,
        )


#: After a step has failed, later steps wait at most this long, or ten times the slowest step
#: seen to pass, whichever is longer (and never longer than the configured budget).
AFTER_FAILURE_FLOOR_S = 5.0


def budget_after_failure(findings: FindingRecorder, budget_s: float) -> float:
    """A shorter budget once one step has used up its own: the app has shown how fast it
    is, and a second defect should not cost another full budget (the run has one too)."""
    passed = [
        step.latency_s
        for step in findings.timeline
        if step.status is Status.PASS and step.latency_s is not None
    ]
    return min(budget_s, max(AFTER_FAILURE_FLOOR_S, 10 * max(passed, default=0.0)))


@dataclass(frozen=True, slots=True)
class AppUserReader:
    """Reads a directory user from the app through the probe: by its current email, or by
    its directory user id when the probe has no email lookup. Not found by email, it is
    asked for by id too where the probe has that lookup: an app that kept an old email still
    holds the user, and saying "removed" would be false."""

    probe: Probe | None
    by_email: bool
    also_by_id: bool

    async def read(self, user: DirectoryUser) -> AppUser | None:
        probe = self.probe
        if probe is None:
            return None
        if self.by_email:
            found = await probe.user_by_email(user.email)
            if found is None and self.also_by_id:
                found = await probe.user_by_id(user.handle)
            return found
        return await probe.user_by_id(user.handle)


def app_user_reader(probe: Probe | None, section: ProbeSection | None) -> AppUserReader:
    """The reader for ``probe``, with the lookups ``section`` (the config's probe section)
    defines (see :class:`AppUserReader`)."""
    by_email = probe_reads_by_email(section)
    sub = None if section is None else getattr(section, section.kind)
    also_by_id = by_email and sub is not None and bool(sub.user_by_id)
    return AppUserReader(probe, by_email, also_by_id)


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
    findings: FindingRecorder,
    clock: Clock,
    *,
    probing: bool,
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
    seen; a probe that failed on every attempt, several times in a row (at once, without
    waiting out the budget) or at the last look is ERROR: a FAIL needs the state at the end
    of the budget to have been seen.
    """
    if not probing:
        findings.step(step, expected=expected, observed=NO_PROBE, status=Status.SKIP)
        return StepOutcome(Status.SKIP, NO_PROBE, expected=expected)
    outcome = await wait_until(
        lookup,
        settled,
        budget_s=budget_s,
        clock=clock,
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
    elif outcome.error is not None:
        # The last look failed: the state at the end of the budget was not seen, so an
        # earlier unsettled look cannot stand for it (the app may have settled since).
        status = Status.ERROR
        observed = (
            f"the probe failed at the last look, after {outcome.elapsed_s:.1f} s: "
            f"{outcome.error}; an earlier look showed: {describe_user(outcome.value)}"
        )
        latency = None
    else:
        status = Status.FAIL
        observed = f"after {outcome.elapsed_s:.1f} s: {describe_user(outcome.value)}"
        latency = None
    findings.step(step, expected=expected, observed=observed, status=status, latency_s=latency)
    return StepOutcome(status, observed, outcome.value, latency, outcome.elapsed_s, expected)


def record_not_run(
    findings: FindingRecorder, steps: Iterable[tuple[str, str]], reason: str
) -> None:
    """Put steps that could not run on the timeline as SKIP with the reason."""
    for step, expected in steps:
        findings.step(step, expected=expected, observed=f"not run: {reason}", status=Status.SKIP)


def record_not_judged(
    findings: FindingRecorder, steps: Iterable[tuple[str, str]], reason: str
) -> None:
    """Put steps left out after a probe failure on the timeline as SKIP, "not judged"."""
    for step, expected in steps:
        findings.step(step, expected=expected, observed=f"not judged: {reason}", status=Status.SKIP)


def restate_last_step(findings: FindingRecorder, status: Status, observed: str) -> None:
    """Change the verdict of the step just recorded (when a later insight explains it)."""
    timeline = findings.timeline
    if timeline:
        timeline[-1] = replace(timeline[-1], status=status, observed=observed, latency_s=None)


def latency_summary(findings: FindingRecorder) -> dict[str, float]:
    """Propagation time per observed step, in milliseconds, for metrics and evidence."""
    return {
        item.step: round(item.latency_s * 1000, 1)
        for item in findings.timeline
        if item.latency_s is not None
    }


def latencies_text(findings: FindingRecorder) -> str:
    """``1. create 12.5 ms, 2. update profile 8 ms``: the propagation times, for findings."""
    return ", ".join(f"{step} {ms:g} ms" for step, ms in latency_summary(findings).items())


def record_not_observed(
    findings: FindingRecorder, title: str, *, why: str, code: FindingCode
) -> None:
    """SKIP for a run whose changes were all accepted but, without a probe, not observed."""
    findings.skipped(
        title,
        observed="every change was accepted; " + NO_PROBE,
        why=why,
        fix="Configure a probe (http or command) so the check can read the app's users.",
        code=code.code,
    )
