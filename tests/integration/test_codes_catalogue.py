"""The guard that keeps the catalogues complete: the demo stack, clean, read-only, blocked by a
failed prerequisite and with a flaw for each check that declares codes, records no finding
without a code of its check's catalogue (or the engine's). The slow demo test applies the same
guard to every flaw."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scim_readiness.devstack.demo_stack import start_stack
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.model import Report, Status

from .coded import catalogues, uncoded

# Sampled so that the not-slow suite stays short: every status path of the engine (a
# read-only skip, a prerequisite that blocks) and a failing run of each coded check. The
# slow suite (tests/integration/test_demo.py) runs the guard on every flaw.
RUNS: dict[str, tuple[tuple[str, ...], bool]] = {
    "clean": ((), False),
    "read-only": ((), True),
    "preflight": (("probe-404",), False),
    "admin-portal": (("portal-link-unauthenticated", "portal-on-scalekit-domain"), False),
    "delivery-semantics": (("racy-duplicate-deliveries", "email-reuse-refused"), False),
}


def _run(flaws: tuple[str, ...], read_only: bool, workdir: Path) -> Report:
    with start_stack(flaws, workdir=workdir) as stack:
        options = RunOptions(ca_bundle=stack.ca_path, yes=True, read_only=read_only)
        return asyncio.run(run_suite(stack.config(), options))


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    return {
        name: _run(flaws, read_only, tmp_path_factory.mktemp(name))
        for name, (flaws, read_only) in RUNS.items()
    }


def test_the_sample_reaches_the_paths_it_is_meant_to(reports: dict[str, Report]) -> None:
    statuses = {name: {c.id: c.status for c in r.checks} for name, r in reports.items()}
    assert set(statuses["clean"].values()) == {Status.PASS}
    assert statuses["read-only"]["delivery-semantics"] is Status.SKIP
    assert Status.ERROR in statuses["preflight"].values()
    assert statuses["admin-portal"]["admin-portal"] is Status.FAIL
    assert statuses["delivery-semantics"]["delivery-semantics"] is Status.FAIL


CODED = sorted(check_id for check_id, codes in catalogues().items() if codes)


@pytest.mark.parametrize("check_id", CODED)
def test_every_finding_carries_a_code_of_its_catalogue(
    check_id: str, reports: dict[str, Report]
) -> None:
    assert uncoded(reports.values(), check_id) == []


def test_engine_findings_carry_run_codes(reports: dict[str, Report]) -> None:
    read_only = {c.id: c for c in reports["read-only"].checks}
    assert read_only["delivery-semantics"].findings[0].code == "RUN004"
    blocked = [c for c in reports["preflight"].checks if c.status is Status.ERROR]
    assert blocked and {c.findings[0].code for c in blocked} == {"RUN006"}


def test_every_check_declares_a_catalogue() -> None:
    assert {check_id for check_id, codes in catalogues().items() if not codes} == set()
