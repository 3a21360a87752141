"""The one place that runs checks: selection, consent, concurrency, timeouts, errors, cleanup.

No check repeats any of this. For each selected check the runner:

* decides whether it may run at all (``checks.<id>.enabled``, ``--skip``, needed config
  sections), and records a SKIP with the reason when it may not;
* decides whether it may change data (not with ``--read-only``, not in production without
  consent): a check that may not runs its reduced mode if it declares one
  (``read_only=REDUCED``, told through ``ctx.read_only``) and is SKIP otherwise;
* first runs the preflight (``scim_readiness.engine.preflight``: webhook reachable and
  trusted, probe answering, Scalekit token) for the prerequisites the runnable checks have,
  and ends a check whose prerequisite failed at once as ERROR "blocked by …: <root cause>";
* runs it under a time limit (``checks.<id>.timeout_s``, else the check's default, never past
  the whole run's budget less the part kept for cleanup), concurrently with the others, as
  each declares it may (``CheckInfo.sharing``): checks that keep to their own test identities
  share the app, a check that needs it quiet has it to itself, and those go first;
* turns a raised exception into an ERROR finding with a one-line cause, keeping every finding
  recorded before it (a transport failure is "unreachable: …", never a defect of the check);
* folds a SKIP on an essential assertion (``api.skipped_essential``) into the check's status:
  PASS only when everything essential was observed;
* always awaits the check's ``cleanup`` (bounded by what is left of the budget), also after
  a timeout or Ctrl-C;
* on cancellation (Ctrl-C, SIGTERM) marks what did not finish as interrupted and returns the
  partial report instead of raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import datetime as _dt
import functools
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scim_readiness import __version__
from scim_readiness.clients.http import CaBundles, TlsSettings
from scim_readiness.config import Config
from scim_readiness.engine import codes
from scim_readiness.engine.preflight import (
    Failure,
    configured,
    prerequisites_of,
    run_preflight,
)
from scim_readiness.engine.registry import CheckSpec
from scim_readiness.errors import DeliveryRefused, ReadinessError, Unreachable
from scim_readiness.guards import production_target
from scim_readiness.model import (
    CheckResult,
    FailOn,
    Finding,
    Report,
    Severity,
    Status,
    TimelineStep,
    fold_status,
)
from scim_readiness.plugin.context import CheckContext, SharedClients, build_context
from scim_readiness.plugin.contract import CheckInfo, FindingRecorder, ReadOnly, Sharing
from scim_readiness.plugin.identities import TestIdentities, new_run_id
from scim_readiness.plugin.ledger import Ledger, default_ledger_path

if TYPE_CHECKING:
    from scim_readiness.clients.probe import Probe
    from scim_readiness.clients.scalekit import ScalekitGateway

# A cleanup gets at most this long, and never more than what is left of the run's budget.
CLEANUP_TIMEOUT_S = 30.0
# After Ctrl-C, how long the run waits for checks to finish their cleanup.
INTERRUPT_GRACE_S = CLEANUP_TIMEOUT_S + 5.0
# Of the run's budget, this share (within the bounds below) is kept for cleanup, the
# end-of-run sweep and closing connections: checks stop when the rest is used up.
CLEANUP_SHARE = 0.2
CLEANUP_RESERVE_MIN_S = 2.0
CLEANUP_RESERVE_MAX_S = CLEANUP_TIMEOUT_S
# A cleanup started after the budget ran out still gets this long (it removes test data).
CLEANUP_FLOOR_S = 1.0

PREFLIGHT_INFO = CheckInfo(id="preflight", title="Preflight", checklist_item=0)


def cleanup_reserve(budget_s: float) -> float:
    """How much of a run's budget is kept for cleanup (see README, "Preflight and budgets")."""
    share = budget_s * CLEANUP_SHARE
    return min(CLEANUP_RESERVE_MAX_S, max(CLEANUP_RESERVE_MIN_S, share), budget_s / 2)


@dataclass(frozen=True)
class RunOptions:
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    read_only: bool = False
    timeout_s: float | None = None  # whole run; None: ``checks.timeout_s`` from the config
    ca_bundle: CaBundles = None  # one CA bundle or several, trusted together
    fail_on: FailOn = FailOn.FAIL
    # What the user accepts as not evaluated (check ids, or "mutating"); the exit code's
    # business, applied by the CLI (cli/run.py), not by the runner.
    accept_skip: tuple[str, ...] = ()
    # Consent to change data when the config says ``expect: production``
    # (``checks.allow_mutation: true`` in the config is the same consent, written down).
    yes: bool = False
    progress: bool = False  # live progress on stderr (a TTY)
    verbose: bool = False  # one line per finished check on stderr
    debug: bool = False  # a (redacted) traceback on stderr for each check that raised


ScalekitFactory = Callable[[], Awaitable["ScalekitGateway"]]
Progress = Callable[[str, CheckResult | None], None]


def missing_section(config: Config, needs: Sequence[str]) -> str | None:
    """The first needed config key (``section`` or ``section.key``) that is absent."""
    for need in needs:
        node: Any = config
        for part in need.split("."):
            node = getattr(node, part, None)
            if node is None or node == "" or node == () or node == {}:
                return str(need)
        # Sections with defaults (scalekit, webhook) count as absent until something is set.
        if hasattr(node, "model_fields_set") and not node.model_fields_set:
            return str(need)
    return None


def _uncancel() -> None:
    """Forget a cancellation we are handling, so later timeouts in this task still work."""
    task = asyncio.current_task()
    if task is not None:
        while task.cancelling():
            task.uncancel()


async def _grace(tasks: Sequence[asyncio.Task[Any]], seconds: float) -> None:
    """Wait up to ``seconds`` for interrupted checks to finish their cleanup. A second
    interruption meanwhile (CI sends SIGTERM again when a job is slow to stop) does not cut
    the cleanup short: with several checks cleaning up side by side it takes a moment, and
    the time is bounded anyway."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            _, pending = await asyncio.wait(tasks, timeout=left)
        except asyncio.CancelledError:
            _uncancel()
            continue
        if not pending:
            return


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 300 else line[:297] + "…"


_UNREACHABLE_WHY = (
    "No answer came back, so nothing about this item could be observed; the fault is the "
    "network's or the target's, not a finding about the app."
)


def transport_failure(exc: BaseException) -> str | None:
    """The cause, in one line, when ``exc`` is a transport failure of a client (httpx's
    TransportError, an OSError from the probe or the sender); None for anything else."""
    httpx = sys.modules.get("httpx")  # loaded already if it raised this
    if httpx is not None and isinstance(exc, httpx.TransportError):
        from scim_readiness.clients.answers import describe_http_error

        return describe_http_error(exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return None


def fold_essentials(findings: Sequence[Finding]) -> tuple[Status, list[Finding]]:
    """The check's status and its findings in reading order: a PASS or WARN with an essential
    assertion not observed is SKIP, and the unobserved assertions come first, to headline it."""
    from scim_readiness.api import ESSENTIAL_ASSERTION

    status = fold_status(f.effective_status for f in findings)
    missing = [f for f in findings if f.status is Status.SKIP and ESSENTIAL_ASSERTION in f.evidence]
    if not missing or status not in (Status.PASS, Status.WARN, Status.WAIVED):
        return status, list(findings)
    return Status.SKIP, [*missing, *(f for f in findings if f not in missing)]


def _status(value: object) -> Status | None:
    if isinstance(value, Status):
        return value
    try:
        return Status(str(value).upper())
    except ValueError:
        return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _sane_finding(item: object) -> Finding | None:
    """A finding as the renderers need it; a status given as text ("FAIL") is forgiven,
    anything else that is not a finding is garbage."""
    if not isinstance(item, Finding):
        return None
    status = _status(item.status)
    if status is None:
        return None
    try:
        severity = Severity(item.severity)
    except ValueError:
        severity = Severity.MEDIUM
    return dataclasses.replace(
        item,
        status=status,
        severity=severity,
        title=_text(item.title),
        expected=_text(item.expected),
        observed=_text(item.observed),
        why=_text(item.why),
        fix=_text(item.fix),
        docs_url=_text(item.docs_url),
        code=_text(item.code),
    )


def _sane_step(item: object) -> TimelineStep | None:
    if not isinstance(item, TimelineStep):
        return None
    status = _status(item.status)
    if status is None:
        return None
    latency = item.latency_s if isinstance(item.latency_s, int | float) else None
    return TimelineStep(
        step=_text(item.step),
        expected=_text(item.expected),
        observed=_text(item.observed),
        status=status,
        latency_s=latency,
    )


def _loop_running() -> bool:
    """False when a check's coroutine is being closed after its loop ended (a second
    interruption stopped the process): there is nobody left to hand a turn to, and
    scheduling the hand-over would fail with a traceback on the way out."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# Set while the current task (and the tasks it starts) holds its target alone.
_HOLDING_ALONE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "holding_alone", default=False
)


class _Turns:
    """Who may use one mutation target now: any number of SHARED checks at once, or one
    EXCLUSIVE check alone. EXCLUSIVE checks go first: a SHARED check waits while any of the
    run's EXCLUSIVE checks of this target has not finished (each is counted from the start
    and released when it ends, run or not), so the SHARED ones then overlap to the end
    instead of waiting behind an EXCLUSIVE one that arrived after them.

    A SHARED check may also hold the target alone for a part of its run (:meth:`alone`,
    ``ctx.app_alone()``): it steps out of the shared group, and has the target once no other
    SHARED check is inside it (each has finished, or is itself waiting to be alone) and no
    other holds it. A FREE check that declares ``holds_app`` (an optional burst) holds it the
    same way from outside any turn, also waiting for an EXCLUSIVE check to finish. While one
    holds it or waits for it, no SHARED check starts, so a waiting holder is not overtaken by
    checks arriving after it. Two checks asking at once do not
    deadlock: both have stepped out, so the first to wake takes it and the other waits for
    its release only. Every wait is cancellable (Ctrl-C, the check's timeout), and whatever
    ends it leaves the counts as they were.
    """

    def __init__(self, exclusive_expected: int) -> None:
        self.changed = asyncio.Condition()
        self.exclusive_pending = exclusive_expected
        self.exclusive_inside = False
        self.shared_inside = 0
        self.alone_waiting = 0
        self.alone_inside = False

    @contextlib.asynccontextmanager
    async def turn(self, mode: Sharing) -> AsyncIterator[None]:
        exclusive = mode is Sharing.EXCLUSIVE
        async with self.changed:
            if exclusive:
                await self.changed.wait_for(
                    lambda: not (self.exclusive_inside or self.shared_inside or self.alone_inside)
                )
                self.exclusive_inside = True
            else:
                await self.changed.wait_for(self._shared_may_enter)
                self.shared_inside += 1
        try:
            yield
        finally:
            # Shielded: a cancelled check must still hand its turn on.
            if _loop_running():
                await asyncio.shield(self._leave(exclusive))

    def _shared_may_enter(self) -> bool:
        return not (
            self.exclusive_inside
            or self.exclusive_pending
            or self.alone_inside
            or self.alone_waiting
        )

    @contextlib.asynccontextmanager
    async def alone(self, *, from_shared: bool = True) -> AsyncIterator[None]:
        """Hold the target alone, from inside a SHARED turn (see the class docstring), or,
        ``from_shared`` False, for a FREE check that declares ``holds_app``: it is in no turn,
        so it also waits for an EXCLUSIVE check to finish."""
        if _HOLDING_ALONE.get():
            # Waiting for oneself would end only at the check's timeout.
            raise RuntimeError("app_alone() is already held here: it does not nest")
        step_out = 1 if from_shared else 0
        async with self.changed:
            self.shared_inside -= step_out
            self.alone_waiting += 1
            self.changed.notify_all()
            try:
                await self.changed.wait_for(
                    lambda: not (self.alone_inside or self.shared_inside or self.exclusive_inside)
                )
            except BaseException:
                # Cancelled while waiting: back into the shared group, as the turn expects.
                self.alone_waiting -= 1
                self.shared_inside += step_out
                self.changed.notify_all()
                raise
            self.alone_waiting -= 1
            self.alone_inside = True
        holding = _HOLDING_ALONE.set(True)
        try:
            yield
        finally:
            _HOLDING_ALONE.reset(holding)
            if _loop_running():
                await asyncio.shield(self._alone_done(step_out))

    async def _alone_done(self, step_out: int) -> None:
        async with self.changed:
            self.alone_inside = False
            # Back among the shared checks at once: the turn it came from is still open.
            self.shared_inside += step_out
            self.changed.notify_all()

    async def _leave(self, exclusive: bool) -> None:
        async with self.changed:
            if exclusive:
                self.exclusive_inside = False
            else:
                self.shared_inside -= 1
            self.changed.notify_all()

    async def exclusive_done(self) -> None:
        """One EXCLUSIVE check of this target ended (ran, was skipped, blocked or stopped)."""
        async with self.changed:
            self.exclusive_pending -= 1
            self.changed.notify_all()


class _Run:
    def __init__(
        self,
        config: Config,
        options: RunOptions,
        specs: Sequence[CheckSpec],
        shared: SharedClients,
        probe: Probe | None,
        progress: Progress | None,
    ) -> None:
        self.config = config
        self.options = options
        self.specs = specs
        self.shared = shared
        self.probe = probe
        self.progress = progress
        self.run_id = new_run_id()
        self.ledger = Ledger(default_ledger_path(config), self.run_id)
        self.identities = TestIdentities(
            run_id=self.run_id,
            email_domain=config.test_identities.email_domain,
            name_prefix=config.test_identities.name_prefix,
        )
        budget = options.timeout_s if options.timeout_s is not None else config.checks.timeout_s
        self.budget_s = budget
        # Everything ends by the hard deadline; checks by the deadline, which keeps the
        # cleanup reserve free for removing what they created.
        self.hard_deadline = time.monotonic() + budget
        self.deadline = self.hard_deadline - cleanup_reserve(budget)
        exclusive: dict[str, int] = {}
        for spec in specs:
            if spec.info.sharing_mode is Sharing.EXCLUSIVE:
                target = spec.info.mutation_target
                exclusive[target] = exclusive.get(target, 0) + 1
        self.turns = {target: _Turns(count) for target, count in exclusive.items()}
        self._preflight: asyncio.Task[dict[str, Failure]] | None = None

    # ---- deciding -------------------------------------------------------------------------

    def skip_reason(self, spec: CheckSpec) -> tuple[str, str, str] | None:
        """Why ``spec`` does not run: (reason, fix, RUN code); None when it runs."""
        info = spec.info
        if info.id in self.options.skip:
            return f"skipped with --skip {info.id}", "", codes.SKIPPED_BY_FLAG
        if not self.config.checks.for_check(info.id).enabled:
            return (
                "disabled in the config",
                f"set checks.{info.id}.enabled: true (or remove that line) to run it",
                codes.DISABLED,
            )
        missing = missing_section(self.config, info.needs)
        if missing is not None:
            return (
                f"needs the config section {missing!r}, which is absent",
                f"add {missing}: to the config (see readiness.example.yaml)",
                codes.NOT_CONFIGURED,
            )
        held_back = self.no_changes_reason(spec)
        if held_back is not None and info.read_only is not ReadOnly.REDUCED:
            return held_back
        return None

    def no_changes_reason(self, spec: CheckSpec) -> tuple[str, str, str] | None:
        """Why this check may not change data (reason, fix, RUN code); None when it may."""
        if not spec.info.mutates:
            return None
        if self.options.read_only:
            return "read-only run: this check creates and removes test data", "", codes.READ_ONLY
        production = production_target(self.config)
        if production and not (self.options.yes or self.config.checks.allow_mutation):
            return (
                f"this check creates test users in production ({production}) and was not "
                "allowed to",
                "pass --yes, or set checks.allow_mutation: true, to let it create and remove "
                "clearly named test identities",
                codes.NO_CONSENT,
            )
        return None

    def wanted_prerequisites(self) -> list[str]:
        """The configured prerequisites of the checks that will run."""
        wanted = {
            name
            for spec in self.specs
            if self.skip_reason(spec) is None
            for name in prerequisites_of(spec.info)
        }
        return sorted(name for name in wanted if configured(self.config, name))

    async def blocker(self, spec: CheckSpec) -> Failure | None:
        """The failed prerequisite that blocks ``spec`` (the preflight runs once, on first
        ask, shared by every check)."""
        names = prerequisites_of(spec.info)
        if not names:
            return None
        if self._preflight is None:
            ctx = build_context(
                PREFLIGHT_INFO,
                self.config,
                run_id=self.run_id,
                read_only=self.options.read_only,
                ledger=self.ledger,
                identities=self.identities,
                shared=self.shared,
                probe=self.probe,
            )
            self._preflight = asyncio.create_task(
                run_preflight(
                    self.wanted_prerequisites(),
                    ctx=ctx,
                    shared=self.shared,
                    probe=self.probe,
                    budget_s=max(1.0, self.deadline - time.monotonic()),
                ),
                name="preflight",
            )
        failures = await asyncio.shield(self._preflight)
        return next((failures[name] for name in names if name in failures), None)

    def check_timeout(self, spec: CheckSpec) -> float:
        configured = self.config.checks.for_check(spec.info.id).timeout_s
        return configured if configured is not None else spec.info.default_timeout_s

    # ---- running ---------------------------------------------------------------------------

    def context(self, spec: CheckSpec, recorder: FindingRecorder) -> CheckContext:
        probe = self.probe
        if probe is not None:
            from scim_readiness.clients.probe import metered

            # A list-only probe's scans are counted into the check's metrics (probe_scan).
            probe = metered(probe, recorder.metrics)
        return build_context(
            spec.info,
            self.config,
            run_id=self.run_id,
            # The runner's decision, not the flag: production without consent counts too.
            read_only=self.options.read_only or self.no_changes_reason(spec) is not None,
            findings=recorder,
            ledger=self.ledger,
            identities=self.identities,
            shared=self.shared,
            probe=probe,
            alone=self.alone_of(spec),
        )

    def alone_of(self, spec: CheckSpec) -> Callable[[], AbstractAsyncContextManager[None]] | None:
        """How a SHARED check, or a FREE one that declares ``holds_app``, holds its target
        alone (``ctx.app_alone()``); None otherwise."""
        mode = spec.info.sharing_mode
        if mode is Sharing.SHARED:
            return self.turns.setdefault(spec.info.mutation_target, _Turns(0)).alone
        if mode is Sharing.FREE and spec.info.holds_app:
            turns = self.turns.setdefault(spec.info.mutation_target, _Turns(0))
            return functools.partial(turns.alone, from_shared=False)
        return None

    @contextlib.asynccontextmanager
    async def turn(self, spec: CheckSpec) -> AsyncIterator[None]:
        mode = spec.info.sharing_mode
        if mode is Sharing.FREE:
            yield
            return
        turns = self.turns.setdefault(spec.info.mutation_target, _Turns(0))
        async with turns.turn(mode):
            yield

    async def execute(self, spec: CheckSpec) -> CheckResult:
        try:
            return await self._execute(spec)
        finally:
            if spec.info.sharing_mode is Sharing.EXCLUSIVE and _loop_running():
                await asyncio.shield(self.turns[spec.info.mutation_target].exclusive_done())

    async def _execute(self, spec: CheckSpec) -> CheckResult:
        info = spec.info
        recorder = FindingRecorder(info.docs_url)
        started: float | None = None
        interrupted = False
        reason = self.skip_reason(spec)
        if reason is not None:
            recorder.skipped(reason[0], fix=reason[1], code=reason[2])
            return self.result(spec, recorder, 0.0, interrupted=False)
        ctx: CheckContext | None = None
        cleanup: asyncio.Task[None] | None = None
        try:
            failure = await self.blocker(spec)
            if failure is not None:
                recorder.errored(
                    failure.title,
                    why="This check cannot be evaluated without it, so it was not run; "
                    "every check that needs it says the same, for this one cause.",
                    fix=failure.fix,
                    evidence={"blocked_by": failure.prerequisite},
                    code=codes.BLOCKED,
                )
                return self.result(spec, recorder, 0.0, interrupted=False)
            async with self.turn(spec):
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    recorder.errored(
                        f"not started: the run's time budget of {self.budget_s:g} s was used up",
                        fix="raise --timeout (or checks.timeout_s), or select fewer with --only",
                        code=codes.BUDGET_USED_UP,
                    )
                    return self.result(spec, recorder, 0.0, interrupted=False)
                ctx = self.context(spec, recorder)
                started = time.monotonic()
                try:
                    await self.invoke(spec, ctx, min(self.check_timeout(spec), remaining))
                finally:
                    if spec.cleanup is not None:
                        cleanup = asyncio.create_task(self.clean(spec, ctx))
                        await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            interrupted = True
            _uncancel()
            if started is None:
                recorder.skipped("not started: the run was interrupted", code=codes.INTERRUPTED)
            else:
                recorder.errored(
                    "interrupted before it finished",
                    why="The run was stopped (Ctrl-C or a termination signal); "
                    "what is listed above was observed before that.",
                    code=codes.INTERRUPTED,
                )
            if ctx is not None and spec.cleanup is not None and cleanup is None:
                cleanup = asyncio.create_task(self.clean(spec, ctx))
            if cleanup is not None:
                await asyncio.wait({cleanup})
        duration = time.monotonic() - started if started is not None else 0.0
        return self.result(spec, recorder, duration, interrupted=interrupted)

    async def invoke(self, spec: CheckSpec, ctx: CheckContext, timeout_s: float) -> None:
        recorder = ctx.findings
        check_id = spec.info.id
        try:
            async with asyncio.timeout(timeout_s):
                # Typed to return None, but a plugin may return anything: that is a defect.
                returned: object = await spec.run(ctx)  # type: ignore[func-returns-value]
        except TimeoutError:
            if timeout_s < self.check_timeout(spec):
                recorder.errored(
                    f"timed out: the run's time budget of {self.budget_s:g} s ran out",
                    why="The check did not finish in time, so what it was still waiting for "
                    "is unknown.",
                    fix="raise --timeout (or checks.timeout_s) for the whole run",
                    code=codes.TIMED_OUT,
                )
            else:
                recorder.errored(
                    f"timed out after {timeout_s:g} s",
                    why="The check did not finish in time, so what it was still waiting for "
                    "is unknown.",
                    fix=f"raise checks.{check_id}.timeout_s if the target is just slow",
                    code=codes.TIMED_OUT,
                )
            return
        except DeliveryRefused as exc:
            recorder.skipped(_one_line(exc.message), fix=exc.hint, code=codes.DELIVERY_REFUSED)
            return
        except Unreachable as exc:
            recorder.errored(
                _one_line(f"unreachable: {exc.message}"),
                why=_UNREACHABLE_WHY,
                fix=exc.hint,
                code=codes.UNREACHABLE,
            )
            return
        except ReadinessError as exc:
            recorder.errored(_one_line(exc.message), fix=exc.hint, code=codes.CHECK_STOPPED)
            return
        except Exception as exc:
            cause = transport_failure(exc)
            if cause is not None:
                recorder.errored(
                    _one_line(f"unreachable: {cause}"),
                    why=_UNREACHABLE_WHY,
                    fix="check that the target is up and reachable from here, then run again",
                    code=codes.UNREACHABLE,
                )
                return
            recorder.errored(
                _one_line(f"internal error in check {check_id}: {type(exc).__name__}: {exc}"),
                why="The check itself failed, so this item could not be evaluated.",
                fix="rerun with --debug for a traceback and report it to the check's author",
                code=codes.INTERNAL_ERROR,
            )
            if self.options.debug:
                self.print_traceback(check_id, exc)
            return
        if returned is not None:
            recorder.errored(
                f"internal error in check {check_id}: run() returned "
                f"{type(returned).__name__} instead of None",
                fix="a check records findings on ctx.findings and returns nothing",
                code=codes.INTERNAL_ERROR,
            )

    def print_traceback(self, check_id: str, exc: BaseException) -> None:
        import os
        import traceback

        from scim_readiness.redact import Redactor

        env = [os.environ.get(v, "") for v in ("SCALEKIT_CLIENT_SECRET", "SCALEKIT_WEBHOOK_SECRET")]
        redactor = Redactor([*self.config.secret_values(), *env])
        text = "".join(traceback.format_exception(exc))
        print(f"--- traceback of check {check_id}\n{redactor.text(text)}", file=sys.stderr, end="")

    def cleanup_timeout(self) -> float:
        """A cleanup's limit: what is left of the run's budget (the reserve, at least a
        floor), never more than CLEANUP_TIMEOUT_S."""
        left = self.hard_deadline - time.monotonic()
        return min(CLEANUP_TIMEOUT_S, max(CLEANUP_FLOOR_S, left))

    async def clean(self, spec: CheckSpec, ctx: CheckContext) -> None:
        assert spec.cleanup is not None  # noqa: S101 - only called when there is one
        limit = self.cleanup_timeout()
        try:
            async with asyncio.timeout(limit):
                await spec.cleanup(ctx)
        except TimeoutError:
            ctx.findings.errored(
                f"cleanup did not finish within {limit:g} s",
                fix="run `scim-readiness cleanup` to list test data that may be left behind",
                code=codes.CLEANUP,
            )
        except asyncio.CancelledError:
            ctx.findings.errored("cleanup was interrupted", code=codes.CLEANUP)
            raise
        except Exception as exc:
            ctx.findings.errored(
                _one_line(f"cleanup failed: {type(exc).__name__}: {exc}"),
                fix="run `scim-readiness cleanup` to list test data that may be left behind",
                code=codes.CLEANUP,
            )

    def result(
        self,
        spec: CheckSpec,
        recorder: FindingRecorder,
        duration: float,
        *,
        interrupted: bool,
    ) -> CheckResult:
        info = spec.info
        findings: list[Finding] = []
        garbage = 0
        for item in recorder.items:
            finding = _sane_finding(item)
            if finding is None:
                garbage += 1
            else:
                findings.append(finding)
        timeline = []
        for raw in recorder.timeline:
            step = _sane_step(raw)
            if step is None:
                garbage += 1
            else:
                timeline.append(step)
        if garbage:
            findings.append(
                Finding(
                    title=f"internal error in check {info.id}: {garbage} recorded item(s) "
                    "are not valid findings or timeline steps",
                    status=Status.ERROR,
                    fix="record through ctx.findings.passed()/failed()/…/step() with a Status",
                    code=codes.INTERNAL_ERROR,
                )
            )
        if not findings:
            findings.append(
                Finding(
                    title="the check recorded no findings, so nothing was verified",
                    status=Status.SKIP,
                    severity=Severity.INFO,
                    docs_url=info.docs_url,
                    code=codes.NOTHING_RECORDED,
                )
            )
        status, findings = fold_essentials(findings)
        return CheckResult(
            id=info.id,
            title=info.title,
            checklist_item=info.checklist_item,
            status=status,
            findings=tuple(findings),
            duration_s=round(duration, 3),
            mutates=info.mutates,
            docs_url=info.docs_url,
            timeline=tuple(timeline),
            metrics=dict(recorder.metrics) if isinstance(recorder.metrics, dict) else {},
            interrupted=interrupted,
        )

    async def all(self) -> tuple[list[CheckResult], bool]:
        tasks = [asyncio.create_task(self.execute(spec), name=spec.info.id) for spec in self.specs]
        if self.progress is not None:
            for task in tasks:
                task.add_done_callback(self._report_done)
        interrupted = False
        try:
            if tasks:
                # Checks and their cleanups bound themselves within the budget; this bounds
                # a check that does not.
                limit = max(0.0, self.hard_deadline - time.monotonic()) + CLEANUP_FLOOR_S
                _, pending = await asyncio.wait(tasks, timeout=limit)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=CLEANUP_FLOOR_S + 1.0)
        except asyncio.CancelledError:
            interrupted = True
            _uncancel()
            for task in tasks:
                task.cancel()
            if tasks:
                await _grace(tasks, INTERRUPT_GRACE_S)
        if self._preflight is not None and not self._preflight.done():
            self._preflight.cancel()
        results = []
        for spec, task in zip(self.specs, tasks, strict=True):
            if task.done() and not task.cancelled() and task.exception() is None:
                results.append(task.result())
                continue
            recorder = FindingRecorder(spec.info.docs_url)
            if task.done() and not task.cancelled():
                exc = task.exception()
                recorder.errored(
                    _one_line(f"internal error in the runner: {exc!r}"), code=codes.INTERNAL_ERROR
                )
            else:
                recorder.errored(
                    f"did not stop within {INTERRUPT_GRACE_S:g} s of the interruption",
                    fix="run `scim-readiness cleanup` to list test data that may be left behind",
                    code=codes.INTERRUPTED,
                )
            results.append(self.result(spec, recorder, 0.0, interrupted=True))
        return results, interrupted

    def _report_done(self, task: asyncio.Task[CheckResult]) -> None:
        assert self.progress is not None  # noqa: S101 - callback only registered with progress
        if task.cancelled() or task.exception() is not None:
            return
        self.progress(task.get_name(), task.result())


async def run_suite(
    config: Config,
    options: RunOptions,
    *,
    specs: Sequence[CheckSpec] | None = None,
    scalekit_factory: ScalekitFactory | None = None,
    probe: Probe | None = None,
    progress: Progress | None = None,
) -> Report:
    """Run the selected checks and return the report (partial, ``interrupted``, on Ctrl-C).

    ``specs`` replaces discovery (tests, the demo); ``scalekit_factory`` replaces the default
    lazy Scalekit connection; ``probe`` replaces the one built from ``config.probe``;
    ``progress`` is called with each check id and its result as it finishes.
    """
    from scim_readiness.engine.registry import discover, select

    all_specs = list(specs) if specs is not None else discover()
    selected = select(all_specs, options.only, options.skip)
    tls = TlsSettings(ca_bundle=options.ca_bundle)
    shared = SharedClients(config, tls, scalekit_factory)
    own_probe = False
    if probe is None and config.probe is not None:
        from scim_readiness.clients.probe import build_probe

        probe = build_probe(config.probe, tls)
        own_probe = True
    started_at = _dt.datetime.now(_dt.UTC)
    t0 = time.monotonic()
    run = _Run(config, options, selected, shared, probe, progress)
    try:
        results, interrupted = await run.all()
        results = await _swept(run, results, tls, probe)
    finally:
        closing = [shared.aclose()]
        if own_probe and probe is not None:
            closing.append(probe.aclose())
        with contextlib.suppress(Exception):
            async with asyncio.timeout(max(CLEANUP_FLOOR_S, run.hard_deadline - time.monotonic())):
                await asyncio.gather(*closing, return_exceptions=True)
    return Report(
        run_id=run.run_id,
        tool_version=__version__,
        target=config.target(),
        started_at=started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        duration_s=round(time.monotonic() - t0, 3),
        checks=tuple(results),
        read_only=options.read_only,
        interrupted=interrupted,
    )


async def _swept(
    run: _Run, results: list[CheckResult], tls: TlsSettings, probe: Probe | None
) -> list[CheckResult]:
    """The safety net behind each check's own cleanup (failed, timed out, interrupted): remove
    what this run's ledger still holds, within what is left of the budget; leftovers become
    ERROR findings (the sweep names them when it is cut short)."""
    from scim_readiness.engine.sweep import sweep_run

    sweep = asyncio.create_task(sweep_run(run.config, run.ledger, results, tls=tls, probe=probe))
    left = max(CLEANUP_FLOOR_S, run.hard_deadline - time.monotonic())
    done, _ = await asyncio.wait({sweep}, timeout=left)
    if not done:
        sweep.cancel()
        await asyncio.wait({sweep}, timeout=CLEANUP_FLOOR_S)
    if sweep.done() and not sweep.cancelled() and sweep.exception() is None:
        return sweep.result()
    return results


def plan(
    config: Config, options: RunOptions, specs: Sequence[CheckSpec]
) -> list[tuple[CheckSpec, str | None]]:
    """For each check, why ``run`` would skip it (``None``: it would run, in its reduced mode
    when it may not change data and declares one). No network."""
    run = _Run(config, options, specs, SharedClients(config, TlsSettings()), None, None)
    return [(spec, None if (r := run.skip_reason(spec)) is None else r[0]) for spec in specs]
