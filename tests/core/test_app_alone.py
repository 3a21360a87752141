"""``ctx.app_alone()``: a SHARED check holding the app alone for one part of its run.

Every wait here is bounded (``asyncio.wait_for`` or a check timeout), so a deadlock fails the
test instead of hanging it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from scim_readiness.engine.registry import CheckSpec
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.model import Report, Status
from scim_readiness.plugin.context import CheckContext
from scim_readiness.plugin.entry import RunFn

from .conftest import spec
from .test_runner import by_id, config, run


def shared(check_id: str, run_it: RunFn, **fields: object) -> CheckSpec:
    base = spec(check_id, run_it, mutates=True, **fields)  # type: ignore[arg-type]
    return replace(base, info=replace(base.info, sharing="shared"))


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_while_held_no_other_shared_check_is_at_work_its_cleanup_included() -> None:
    active: set[str] = set()
    seen_alone: list[set[str]] = []
    entered = {name: asyncio.Event() for name in ("s2", "s3")}
    asking = asyncio.Event()

    async def holder(ctx: CheckContext) -> None:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in entered.values())), 5)
        asking.set()
        async with ctx.app_alone():
            for _ in range(3):
                seen_alone.append(set(active))
                await asyncio.sleep(0)
        ctx.findings.passed("had the app alone")

    def worker(name: str) -> RunFn:
        async def work(ctx: CheckContext) -> None:
            active.add(name)
            entered[name].set()
            # Still at work after the holder asked: it must wait for this one to finish.
            await asyncio.wait_for(asking.wait(), 5)
            await turns()
            ctx.findings.passed(name)

        return work

    async def cleanup(ctx: CheckContext) -> None:
        await turns()  # its cleanup is still its turn: its deliveries are in flight
        active.discard(ctx.info.id)

    specs = [
        shared("holder", holder),
        shared("s2", worker("s2"), cleanup=cleanup),
        shared("s3", worker("s3"), cleanup=cleanup),
    ]
    report = run(config(), specs)
    assert [c.status for c in report.checks] == [Status.PASS] * 3, report
    assert seen_alone == [set(), set(), set()]


def test_two_holders_take_the_app_one_after_the_other_without_deadlock() -> None:
    holding: list[str] = []
    overlaps: list[list[str]] = []
    entered = {name: asyncio.Event() for name in ("a", "b")}

    def holder(name: str) -> RunFn:
        async def hold(ctx: CheckContext) -> None:
            entered[name].set()
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in entered.values())), 5)
            async with ctx.app_alone():  # both ask at once
                holding.append(name)
                await turns()
                overlaps.append(list(holding))
                holding.remove(name)
            ctx.findings.passed(name)

        return hold

    report = run(config(), [shared("a", holder("a")), shared("b", holder("b"))], timeout_s=20)
    assert [c.status for c in report.checks] == [Status.PASS] * 2, report
    assert sorted(overlaps) == [["a"], ["b"]]


def test_an_exception_inside_releases_the_app() -> None:
    failed = asyncio.Event()

    async def breaks(ctx: CheckContext) -> None:
        async with ctx.app_alone():
            failed.set()
            raise RuntimeError("burst went wrong")

    async def next_holder(ctx: CheckContext) -> None:
        await asyncio.wait_for(failed.wait(), 5)
        async with ctx.app_alone():
            ctx.findings.passed("got the app after the failure")

    checks = by_id(run(config(), [shared("breaks", breaks), shared("next", next_holder)]))
    assert checks["breaks"].status is Status.ERROR
    assert "burst went wrong" in checks["breaks"].findings[0].title
    assert checks["next"].status is Status.PASS, checks["next"]


def test_a_timeout_while_holding_releases_the_app_to_the_next_holder() -> None:
    holding = asyncio.Event()

    async def hangs(ctx: CheckContext) -> None:
        async with ctx.app_alone():
            holding.set()
            await asyncio.Event().wait()

    async def next_holder(ctx: CheckContext) -> None:
        await asyncio.wait_for(holding.wait(), 5)
        async with ctx.app_alone():
            ctx.findings.passed("got the app after the timeout")

    cfg = config(
        "scalekit:\n  expect: staging\n  environment_url: https://acme-staging.scalekit.dev\n"
        "checks:\n  hangs:\n    timeout_s: 0.2\n",
        ids=("hangs", "next"),
    )
    checks = by_id(run(cfg, [shared("hangs", hangs), shared("next", next_holder)]))
    assert checks["hangs"].findings[-1].title == "timed out after 0.2 s"
    assert checks["next"].status is Status.PASS, checks["next"]


def test_the_wait_is_bounded_by_the_checks_budget_and_leaves_the_counts_right() -> None:
    """The waiter times out while another shared check is still at work; that one can then
    hold the app itself (a waiter that left the counts wrong would make it wait forever)."""
    waiter_done = asyncio.Event()
    asked = asyncio.Event()
    busy_entered = asyncio.Event()

    async def waits(ctx: CheckContext) -> None:
        await asyncio.wait_for(busy_entered.wait(), 5)
        asked.set()
        async with ctx.app_alone():
            ctx.findings.passed("never: the other check is at work until this one gave up")

    async def waiter_cleanup(ctx: CheckContext) -> None:
        waiter_done.set()

    async def busy(ctx: CheckContext) -> None:
        busy_entered.set()
        await asyncio.wait_for(asked.wait(), 5)
        await asyncio.wait_for(waiter_done.wait(), 5)
        async with asyncio.timeout(5), ctx.app_alone():
            ctx.findings.passed("held the app after the other gave up")

    cfg = config(
        "scalekit:\n  expect: staging\n  environment_url: https://acme-staging.scalekit.dev\n"
        "checks:\n  waits:\n    timeout_s: 0.2\n",
        ids=("waits", "busy"),
    )
    specs = [shared("waits", waits, cleanup=waiter_cleanup), shared("busy", busy)]
    checks = by_id(run(cfg, specs))
    assert [f.title for f in checks["waits"].findings] == ["timed out after 0.2 s"]
    assert checks["busy"].status is Status.PASS, checks["busy"]


def test_an_interruption_while_one_holds_and_one_waits_returns_the_partial_report() -> None:
    holding = asyncio.Event()
    entered = {name: asyncio.Event() for name in ("a", "b")}
    cleaned: list[str] = []

    def hangs(name: str) -> RunFn:
        async def hang(ctx: CheckContext) -> None:
            entered[name].set()
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in entered.values())), 5)
            async with ctx.app_alone():  # one holds it, the other waits
                holding.set()
                await asyncio.Event().wait()

        return hang

    async def cleanup(ctx: CheckContext) -> None:
        cleaned.append(ctx.info.id)

    async def scenario() -> Report:
        specs = [shared(n, hangs(n), cleanup=cleanup) for n in ("a", "b")]
        task = asyncio.create_task(run_suite(config(), RunOptions(), specs=specs))
        await asyncio.wait_for(holding.wait(), 5)
        await turns(5)
        task.cancel()
        return await asyncio.wait_for(task, 10)

    report = asyncio.run(scenario())
    assert report.interrupted
    assert [(c.id, c.interrupted, c.status) for c in report.checks] == [
        ("a", True, Status.ERROR),
        ("b", True, Status.ERROR),
    ]
    assert sorted(cleaned) == ["a", "b"]


def test_it_does_not_nest_and_needs_a_turn() -> None:
    async def nests(ctx: CheckContext) -> None:
        async with ctx.app_alone(), ctx.app_alone():
            ctx.findings.passed("never")

    async def free(ctx: CheckContext) -> None:
        async with ctx.app_alone():
            ctx.findings.passed("never")

    async def exclusive(ctx: CheckContext) -> None:
        async with ctx.app_alone():  # it has the app alone already
            ctx.findings.passed("alone")

    quiet = spec("quiet", exclusive, mutates=True)
    checks = by_id(run(config(), [shared("nests", nests), spec("free", free), quiet]))
    assert "does not nest" in checks["nests"].findings[0].title
    assert "cannot hold the app alone" in checks["free"].findings[0].title
    assert checks["quiet"].status is Status.PASS


def holding_free(check_id: str, run_it: RunFn) -> CheckSpec:
    base = spec(check_id, run_it)
    return replace(base, info=replace(base.info, holds_app=True))


def test_a_free_check_that_declares_it_holds_the_app_waits_for_shared_and_exclusive() -> None:
    # A free check's burst floods the app: it holds it as a shared check would, though the
    # rest of it takes no turn, and it also waits for an exclusive check at work.
    active: set[str] = set()
    seen_alone: list[set[str]] = []
    entered = {name: asyncio.Event() for name in ("s1", "s2")}
    asking = asyncio.Event()

    async def burst(ctx: CheckContext) -> None:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in entered.values())), 5)
        asking.set()
        async with ctx.app_alone():
            for _ in range(3):
                seen_alone.append(set(active))
                await asyncio.sleep(0)
        ctx.findings.passed("burst had the app alone")

    async def quiet(ctx: CheckContext) -> None:
        active.add("quiet")
        await turns()
        active.discard("quiet")
        ctx.findings.passed("quiet")

    def worker(name: str) -> RunFn:
        async def work(ctx: CheckContext) -> None:
            active.add(name)
            entered[name].set()
            await asyncio.wait_for(asking.wait(), 5)
            await turns()
            ctx.findings.passed(name)

        return work

    async def cleanup(ctx: CheckContext) -> None:
        await turns()
        active.discard(ctx.info.id)

    specs = [
        holding_free("burst", burst),
        spec("quiet", quiet, mutates=True),
        shared("s1", worker("s1"), cleanup=cleanup),
        shared("s2", worker("s2"), cleanup=cleanup),
    ]
    report = run(config(), specs, timeout_s=20)
    assert [c.status for c in report.checks] == [Status.PASS] * 4, report
    assert seen_alone == [set(), set(), set()]
