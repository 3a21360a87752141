"""The runner: concurrency, turns for mutating checks, timeouts, errors, cleanup, Ctrl-C.

Ordering and overlap are proven with events (a check that can only finish if another runs at
the same time), never with wall-clock measurements.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scim_readiness.config import Config
from scim_readiness.engine.config_file import parse_config
from scim_readiness.engine.registry import CheckSpec
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.errors import PluginError, ScalekitError, UsageError
from scim_readiness.model import CheckResult, Report, Status
from scim_readiness.plugin.context import CheckContext
from scim_readiness.plugin.contract import CheckInfo, ReadOnly
from scim_readiness.plugin.entry import RunFn
from scim_readiness.plugin.ledger import default_ledger_path

from .conftest import spec

STAGING = "scalekit:\n  expect: staging\n  environment_url: https://acme-staging.scalekit.dev\n"


def config(text: str = STAGING, ids: tuple[str, ...] = ()) -> Config:
    return parse_config(text, path="readiness.yaml", check_ids=ids or None)


def run(cfg: Config, specs: list[CheckSpec], **options: object) -> Report:
    return asyncio.run(run_suite(cfg, RunOptions(**options), specs=specs))  # type: ignore[arg-type]


def by_id(report: Report) -> dict[str, CheckResult]:
    return {c.id: c for c in report.checks}


def test_non_mutating_checks_run_at_the_same_time() -> None:
    a_started, b_started = asyncio.Event(), asyncio.Event()

    async def a(ctx: CheckContext) -> None:
        a_started.set()
        await asyncio.wait_for(b_started.wait(), 5)  # only possible if b runs meanwhile
        ctx.findings.passed("a saw b running")

    async def b(ctx: CheckContext) -> None:
        b_started.set()
        await asyncio.wait_for(a_started.wait(), 5)
        ctx.findings.passed("b saw a running")

    report = run(config(), [spec("a", a), spec("b", b)])
    assert [c.status for c in report.checks] == [Status.PASS, Status.PASS]
    assert report.exit_code() == 4  # extras only: none of the eight checklist items evaluated


def test_mutating_checks_on_one_target_take_turns_but_overlap_read_only_ones() -> None:
    inside: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    mutators_done = asyncio.Event()
    count = {"done": 0}

    def mutator(name: str) -> RunFn:
        async def run_it(ctx: CheckContext) -> None:
            inside.append(name)
            overlaps.append(tuple(inside))
            for _ in range(5):
                await asyncio.sleep(0)
            inside.remove(name)
            count["done"] += 1
            if count["done"] == 3:
                mutators_done.set()
            ctx.findings.passed(f"{name} done")

        return run_it

    async def reader(ctx: CheckContext) -> None:
        # Finishes only if all mutators ran while this read-only check was running.
        await asyncio.wait_for(mutators_done.wait(), 5)
        ctx.findings.passed("read alongside")

    specs = [
        spec("m1", mutator("m1"), mutates=True),
        spec("m2", mutator("m2"), mutates=True),
        spec("m3", mutator("m3"), mutates=True),
        spec("reader", reader),
    ]
    report = run(config(), specs)
    assert all(c.status is Status.PASS for c in report.checks), report
    assert all(len(seen) == 1 for seen in overlaps), overlaps


def test_mutating_checks_on_different_targets_run_together() -> None:
    x_in, y_in = asyncio.Event(), asyncio.Event()

    async def x(ctx: CheckContext) -> None:
        x_in.set()
        await asyncio.wait_for(y_in.wait(), 5)
        ctx.findings.passed("x")

    async def y(ctx: CheckContext) -> None:
        y_in.set()
        await asyncio.wait_for(x_in.wait(), 5)
        ctx.findings.passed("y")

    specs = [spec("x", x, mutates=True, target="app"), spec("y", y, mutates=True, target="dir")]
    assert [c.status for c in run(config(), specs).checks] == [Status.PASS, Status.PASS]


def _sharing(base: CheckSpec, sharing: str) -> CheckSpec:
    from dataclasses import replace

    return replace(base, info=replace(base.info, sharing=sharing))


def test_mutating_checks_that_keep_to_their_own_identities_run_together() -> None:
    entered = {name: asyncio.Event() for name in ("s1", "s2", "s3")}

    def sharer(name: str) -> RunFn:
        async def run_it(ctx: CheckContext) -> None:
            entered[name].set()
            # Only possible if the other two are inside at the same time.
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in entered.values())), 5)
            ctx.findings.passed(f"{name} saw the others")

        return run_it

    specs = [_sharing(spec(n, sharer(n), mutates=True), "shared") for n in entered]
    report = run(config(), specs)
    assert [c.status for c in report.checks] == [Status.PASS] * 3, report


def test_a_check_that_needs_the_app_quiet_runs_alone_and_first() -> None:
    """An EXCLUSIVE check (even one that changes nothing, like a reconciliation) sees no
    SHARED check inside, even when it comes last in the suite; the SHARED ones then overlap."""
    inside: list[str] = []
    seen_by_quiet: list[tuple[str, ...]] = []
    order: list[str] = []
    both = {name: asyncio.Event() for name in ("s1", "s2")}

    def sharer(name: str) -> RunFn:
        async def run_it(ctx: CheckContext) -> None:
            order.append(name)
            inside.append(name)
            both[name].set()
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in both.values())), 5)
            inside.remove(name)
            ctx.findings.passed(name)

        return run_it

    async def quiet(ctx: CheckContext) -> None:
        order.append("quiet")
        for _ in range(5):
            seen_by_quiet.append(tuple(inside))
            await asyncio.sleep(0)
        ctx.findings.passed("had the app to itself")

    specs = [
        _sharing(spec("s1", sharer("s1"), mutates=True), "shared"),
        _sharing(spec("s2", sharer("s2"), mutates=True), "shared"),
        _sharing(spec("quiet", quiet), "exclusive"),
    ]
    report = run(config(), specs)
    assert all(c.status is Status.PASS for c in report.checks), report
    assert order[0] == "quiet"
    assert seen_by_quiet == [()] * 5


def test_a_skipped_quiet_check_does_not_hold_the_others_back() -> None:
    async def sharer(ctx: CheckContext) -> None:
        ctx.findings.passed("ran")

    specs = [
        _sharing(spec("quiet", needs=("webhook",)), "exclusive"),
        _sharing(spec("s1", sharer, mutates=True), "shared"),
    ]
    checks = by_id(run(config(), specs, timeout_s=20))
    assert checks["quiet"].status is Status.SKIP
    assert checks["s1"].status is Status.PASS


def test_sharing_is_checked_when_a_check_is_defined() -> None:
    with pytest.raises(PluginError, match="sharing 'sometimes' is not one of"):
        CheckInfo(id="x", title="x", checklist_item=0, sharing="sometimes")
    with pytest.raises(PluginError, match="cannot take no turn"):
        CheckInfo(id="x", title="x", checklist_item=0, mutates=True, sharing="free")
    assert CheckInfo(id="x", title="x", checklist_item=0, mutates=True).sharing_mode == "exclusive"
    assert CheckInfo(id="x", title="x", checklist_item=0).sharing_mode == "free"


def test_a_hanging_check_times_out_keeps_its_findings_and_is_cleaned_up() -> None:
    cleaned: list[str] = []

    async def hang(ctx: CheckContext) -> None:
        ctx.findings.passed("first step observed")
        await asyncio.Event().wait()

    async def cleanup(ctx: CheckContext) -> None:
        cleaned.append(ctx.info.id)

    cfg = config(STAGING + "checks:\n  slow:\n    timeout_s: 0.2\n", ids=("slow", "fast"))
    report = run(cfg, [spec("slow", hang, cleanup=cleanup), spec("fast")])
    slow = by_id(report)["slow"]
    assert slow.status is Status.ERROR
    assert [f.title for f in slow.findings] == ["first step observed", "timed out after 0.2 s"]
    assert slow.findings[1].fix == "raise checks.slow.timeout_s if the target is just slow"
    assert cleaned == ["slow"]
    assert by_id(report)["fast"].status is Status.PASS
    assert report.exit_code() == 3


def test_the_whole_run_budget_bounds_every_check() -> None:
    async def hang(ctx: CheckContext) -> None:
        await asyncio.Event().wait()

    report = run(config(), [spec("slow", hang, timeout=60)], timeout_s=0.2)
    (finding,) = by_id(report)["slow"].findings
    assert finding.title == "timed out: the run's time budget of 0.2 s ran out"
    assert finding.fix == "raise --timeout (or checks.timeout_s) for the whole run"


def test_exceptions_become_one_line_errors_and_the_others_still_run() -> None:
    async def boom(ctx: CheckContext) -> None:
        ctx.findings.warned("seen before the crash")
        raise KeyError("missing\nfield")

    async def scalekit_down(ctx: CheckContext) -> None:
        raise ScalekitError("Scalekit at https://env.example.com did not answer", hint="retry")

    async def garbage(ctx: CheckContext) -> object:
        ctx.findings.passed("fine")
        return {"status": "PASS"}

    report = run(
        config(),
        [spec("boom", boom), spec("down", scalekit_down), spec("junk", garbage), spec("ok")],  # type: ignore[arg-type]
    )
    checks = by_id(report)
    assert [f.title for f in checks["boom"].findings] == [
        "seen before the crash",
        "internal error in check boom: KeyError: 'missing\\nfield'",
    ]
    assert checks["down"].findings[0].title == "Scalekit at https://env.example.com did not answer"
    assert checks["down"].findings[0].fix == "retry"
    assert checks["junk"].status is Status.ERROR
    assert checks["junk"].findings[-1].title == (
        "internal error in check junk: run() returned dict instead of None"
    )
    assert checks["ok"].status is Status.PASS
    assert report.exit_code() == 3


def test_a_failure_wins_over_an_error_for_the_exit_code() -> None:
    async def fail(ctx: CheckContext) -> None:
        ctx.findings.failed("defect")

    async def boom(ctx: CheckContext) -> None:
        raise RuntimeError("x")

    assert run(config(), [spec("f", fail), spec("e", boom)]).exit_code() == 1


def test_a_check_that_records_nothing_is_skip_not_pass() -> None:
    async def silent(ctx: CheckContext) -> None:
        return None

    (check,) = run(config(), [spec("silent", silent)]).checks
    assert check.status is Status.SKIP
    assert check.findings[0].title == "the check recorded no findings, so nothing was verified"


def test_skip_reasons_name_what_is_missing_or_what_prevented_the_run() -> None:
    ran: list[str] = []

    async def record(ctx: CheckContext) -> None:
        ran.append(ctx.info.id)
        ctx.findings.passed("ran")

    ids = ("needs-probe", "off", "mutator", "skipped", "plain")
    cfg = config(STAGING + "checks:\n  off:\n    enabled: false\n", ids=ids)
    specs = [
        spec("needs-probe", record, needs=("probe",)),
        spec("off", record),
        spec("mutator", record, mutates=True),
        spec("skipped", record),
        spec("plain", record),
    ]
    report = run(cfg, specs, read_only=True, skip=("skipped",))
    reasons = {c.id: c.findings[0].title for c in report.checks}
    assert reasons == {
        "needs-probe": "needs the config section 'probe', which is absent",
        "off": "disabled in the config",
        "mutator": "read-only run: this check creates and removes test data",
        "skipped": "skipped with --skip skipped",
        "plain": "ran",
    }
    assert ran == ["plain"]


def test_mutating_checks_need_consent_in_production() -> None:
    async def record(ctx: CheckContext) -> None:
        ctx.findings.passed("ran")

    prod = config("scalekit:\n  environment_url: https://env.example.com\n")
    (check,) = run(prod, [spec("m", record, mutates=True)]).checks
    assert check.status is Status.SKIP
    assert check.findings[0].title == (
        "this check creates test users in production (expect: production) and was not allowed to"
    )
    (check,) = run(prod, [spec("m", record, mutates=True)], yes=True).checks
    assert check.status is Status.PASS


def test_only_and_skip_are_validated() -> None:
    with pytest.raises(UsageError, match=r"--only envirnoment: no such check \(did you mean"):
        run(config(), [spec("environment")], only=("envirnoment",))
    with pytest.raises(UsageError, match="conflicting flags: a given to both --only and --skip"):
        run(config(), [spec("a")], only=("a",), skip=("a",))
    report = run(config(), [spec("a"), spec("b")], only=("b",))
    assert [c.id for c in report.checks] == ["b"]


def test_duplicate_ids_are_a_plugin_error() -> None:
    from scim_readiness.engine.registry import ensure_unique

    with pytest.raises(PluginError, match="two checks share the id 'a': tests.a and tests.a"):
        ensure_unique([spec("a"), spec("a")])


def test_cancellation_returns_a_partial_report_and_cleans_up() -> None:
    cleaned: list[str] = []
    started = asyncio.Event()

    async def slow(ctx: CheckContext) -> None:
        ctx.findings.passed("step one")
        started.set()
        await asyncio.Event().wait()

    async def waits_for_turn(ctx: CheckContext) -> None:
        ctx.findings.passed("never")

    async def cleanup(ctx: CheckContext) -> None:
        await asyncio.sleep(0)
        cleaned.append(ctx.info.id)

    async def scenario() -> Report:
        specs = [
            spec("slow", slow, cleanup=cleanup, mutates=True),
            spec("queued", waits_for_turn, cleanup=cleanup, mutates=True),
            spec("quick"),
        ]
        task = asyncio.create_task(run_suite(config(), RunOptions(), specs=specs))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        return await asyncio.wait_for(task, 10)

    report = asyncio.run(scenario())
    checks = by_id(report)
    assert report.interrupted and report.exit_code() == 130
    assert checks["slow"].interrupted and checks["slow"].status is Status.ERROR
    assert [f.title for f in checks["slow"].findings] == [
        "step one",
        "interrupted before it finished",
    ]
    assert checks["queued"].interrupted and checks["queued"].status is Status.SKIP
    assert checks["queued"].findings[0].title == "not started: the run was interrupted"
    assert checks["quick"].status is Status.PASS and not checks["quick"].interrupted
    assert cleaned == ["slow"]  # the queued check never started, so had nothing to clean


def test_a_second_interruption_during_cleanup_does_not_cut_it_short() -> None:
    """CI sends SIGTERM again when a job is slow to stop: the checks' cleanups, started by
    the first, still finish, and the run still returns its partial report."""
    cleaned: list[str] = []
    started = asyncio.Event()
    cleaning = asyncio.Event()
    release = asyncio.Event()

    async def slow(ctx: CheckContext) -> None:
        started.set()
        await asyncio.Event().wait()

    async def cleanup(ctx: CheckContext) -> None:
        cleaning.set()
        await asyncio.wait_for(release.wait(), 5)
        cleaned.append(ctx.info.id)

    async def scenario() -> Report:
        specs = [_sharing(spec(n, slow, cleanup=cleanup, mutates=True), "shared") for n in "ab"]
        task = asyncio.create_task(run_suite(config(), RunOptions(), specs=specs))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        await asyncio.wait_for(cleaning.wait(), 5)
        task.cancel()  # the second signal, while the cleanups run
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.wait_for(task, 10)

    report = asyncio.run(scenario())
    assert report.interrupted
    assert sorted(cleaned) == ["a", "b"]


def test_cleanup_errors_are_reported_not_raised() -> None:
    async def bad_cleanup(ctx: CheckContext) -> None:
        raise OSError("disk gone")

    (check,) = run(config(), [spec("c", cleanup=bad_cleanup)]).checks
    assert check.status is Status.ERROR
    assert check.findings[-1].title == "cleanup failed: OSError: disk gone"


def test_checks_get_the_shared_scalekit_factory_and_the_probe() -> None:
    made: list[int] = []
    seen: list[object] = []

    class Gateway:
        async def aclose(self) -> None:
            made.append(-1)

    async def factory() -> Gateway:
        made.append(1)
        return Gateway()

    async def use(ctx: CheckContext) -> None:
        seen.append(await ctx.scalekit())
        seen.append(ctx.probe)
        ctx.findings.passed("ok")

    probe = object()
    asyncio.run(
        run_suite(
            config(),
            RunOptions(),
            specs=[spec("a", use), spec("b", use)],
            scalekit_factory=factory,  # type: ignore[arg-type]
            probe=probe,  # type: ignore[arg-type]
        )
    )
    assert made == [1, -1]  # one connection for the run, closed at the end
    assert seen[0] is seen[2] and seen[1] is probe


def test_ledger_defaults_next_to_the_config(tmp_path: Path) -> None:
    cfg = parse_config("{}\n", path=str(tmp_path / "readiness.yaml"), check_ids=())
    assert default_ledger_path(cfg) == tmp_path / ".scim-readiness" / "ledger.jsonl"
    cfg = parse_config("ledger_path: l/x.jsonl\n", path=str(tmp_path / "r.yaml"), check_ids=())
    assert default_ledger_path(cfg) == tmp_path / "l" / "x.jsonl"


def test_garbage_findings_become_an_error_and_text_statuses_are_forgiven() -> None:
    async def sloppy(ctx: CheckContext) -> None:
        ctx.findings.record("PASS", "status given as text")  # type: ignore[arg-type]
        ctx.findings.items.append("not a finding")  # type: ignore[arg-type]
        ctx.findings.step("s", expected="a", observed="b", status="maybe")  # type: ignore[arg-type]

    (check,) = run(config(), [spec("sloppy", sloppy)]).checks
    assert [(f.status, f.title) for f in check.findings] == [
        (Status.PASS, "status given as text"),
        (
            Status.ERROR,
            "internal error in check sloppy: 2 recorded item(s) are not valid findings or "
            "timeline steps",
        ),
    ]
    assert check.status is Status.ERROR and check.timeline == ()


def test_a_check_still_waiting_for_its_turn_when_the_budget_runs_out_is_an_error() -> None:
    async def hang(ctx: CheckContext) -> None:
        await asyncio.Event().wait()

    specs = [spec("first", hang, mutates=True), spec("second", mutates=True)]
    report = run(config(), specs, timeout_s=0.3)
    checks = by_id(report)
    assert checks["first"].findings[0].title == "timed out: the run's time budget of 0.3 s ran out"
    assert checks["second"].status is Status.ERROR
    assert checks["second"].findings[0].title == (
        "not started: the run's time budget of 0.3 s was used up"
    )
    assert report.exit_code() == 3


def _mode_spec(check_id: str, seen: dict[str, bool], read_only: ReadOnly | None) -> CheckSpec:
    from dataclasses import replace

    async def record(ctx: CheckContext) -> None:
        seen[ctx.info.id] = ctx.read_only
        ctx.findings.passed("ran")

    base = spec(check_id, record, mutates=read_only is not ReadOnly.FULL)
    return replace(base, info=replace(base.info, read_only=read_only))


@pytest.mark.parametrize(
    ("cfg", "options"),
    [
        (STAGING, {"read_only": True}),
        ("scalekit:\n  environment_url: https://env.example.com\n", {}),  # production, no consent
    ],
)
def test_the_runner_alone_decides_read_only_from_the_declared_capability(
    cfg: str, options: dict[str, object]
) -> None:
    seen: dict[str, bool] = {}
    specs = [
        _mode_spec("none", seen, ReadOnly.NONE),
        _mode_spec("undeclared", seen, None),  # mutates, says nothing: as NONE
        _mode_spec("reduced", seen, ReadOnly.REDUCED),
        _mode_spec("full", seen, ReadOnly.FULL),
    ]
    report = run(config(cfg), specs, **options)
    assert {c.id: c.status for c in report.checks} == {
        "none": Status.SKIP,
        "undeclared": Status.SKIP,
        "reduced": Status.PASS,
        "full": Status.PASS,
    }
    # The reduced check learns through the context that it must not change data.
    assert seen["reduced"] is True
    assert set(seen) == {"reduced", "full"}


def test_with_consent_a_reduced_check_runs_in_full() -> None:
    seen: dict[str, bool] = {}
    prod = config("scalekit:\n  environment_url: https://env.example.com\n")
    run(prod, [_mode_spec("reduced", seen, ReadOnly.REDUCED)], yes=True)
    assert seen == {"reduced": False}


def test_read_only_capability_defaults_from_mutates_and_is_validated() -> None:
    assert CheckInfo(id="a", title="A", checklist_item=0).read_only is ReadOnly.FULL
    assert CheckInfo(id="b", title="B", checklist_item=0, mutates=True).read_only is ReadOnly.NONE
    given = CheckInfo(id="c", title="C", checklist_item=0, read_only="reduced")  # type: ignore[arg-type]
    assert given.read_only is ReadOnly.REDUCED
    with pytest.raises(PluginError, match="check d: read_only 'partly' is not one of"):
        CheckInfo(id="d", title="D", checklist_item=0, read_only="partly")  # type: ignore[arg-type]


def test_built_in_checks_declare_what_they_can_do_read_only() -> None:
    from scim_readiness.engine.registry import discover

    declared = {s.info.id: s.info.read_only for s in discover() if s.origin.startswith("scim_")}
    assert declared == {
        "environment": ReadOnly.FULL,
        "webhook-endpoint": ReadOnly.FULL,
        "webhook-signature": ReadOnly.REDUCED,
        "user-lifecycle": ReadOnly.NONE,
        "group-roles": ReadOnly.NONE,
        "bad-data": ReadOnly.NONE,
        "delivery-semantics": ReadOnly.NONE,
        "data-model": ReadOnly.FULL,
        "admin-portal": ReadOnly.FULL,
    }
