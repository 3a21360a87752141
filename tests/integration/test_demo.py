"""The demo is the product's promise in one command: clean → READY, and each flaw → NOT READY
with exactly the check that exists for it failing and no other check changing its verdict."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scim_readiness.devstack.demo_stack import all_flaws, start_stack
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.model import Report, Status

from .coded import assert_coded


def _run(flaws: tuple[str, ...], tmp_path: Path) -> Report:
    with start_stack(flaws, workdir=tmp_path) as stack:
        options = RunOptions(ca_bundle=stack.ca_path, yes=True)
        return asyncio.run(run_suite(stack.config(), options))


def _statuses(report: Report) -> dict[str, Status]:
    return {check.id: check.status for check in report.checks}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Status]:
    report = _run((), tmp_path_factory.mktemp("clean"))
    return _statuses(report)


def test_clean_stack_is_ready_with_every_check_passing(clean: dict[str, Status]) -> None:
    assert len(clean) == 9
    assert clean == dict.fromkeys(clean, Status.PASS)


@pytest.mark.slow
@pytest.mark.parametrize("flaw", sorted(all_flaws()))
def test_each_flaw_fails_only_its_check(
    flaw: str, clean: dict[str, Status], tmp_path: Path
) -> None:
    intended = all_flaws()[flaw].check
    report = _run((flaw,), tmp_path)
    assert_coded(report)  # keeps the catalogues complete on every failure path
    seen = _statuses(report)
    if intended == "preflight":
        # Nothing can be observed through what is broken: the checks that need it are
        # ERROR "blocked by …" with one cause, none FAILs, the others are unchanged.
        blocked = {c.id: c.findings[0].title for c in report.checks if c.status is Status.ERROR}
        assert blocked, f"{flaw}: nothing blocked: {seen}"
        assert len(set(blocked.values())) == 1, blocked
        assert next(iter(blocked.values())).startswith("blocked by the "), blocked
        assert Status.FAIL not in seen.values(), seen
        return
    assert seen[intended] is Status.FAIL, f"{flaw}: {intended} is {seen[intended]}"
    # Another check may only become SKIP because the flaw hides what it must observe (the
    # app never shows a user, so its traces cannot be looked for), and says so first.
    unobservable = {
        c.id
        for c in report.checks
        if c.status is Status.SKIP and "essential_assertion" in c.findings[0].evidence
    }
    changed = {
        check: f"{clean[check]} -> {status}"
        for check, status in seen.items()
        if check != intended and status is not clean[check] and check not in unobservable
    }
    assert not changed, f"{flaw} changed other checks: {changed}"


def test_demo_command_exits_ready_and_writes_reports(tmp_path: Path) -> None:
    report_path = tmp_path / "demo.json"
    junit_path = tmp_path / "demo.xml"
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scim_readiness",
            "demo",
            "--json",
            str(report_path),
            "--junit",
            str(junit_path),
            "--format",
            "plain",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    saved = json.loads(report_path.read_text())
    assert saved["summary"]["verdict"] == "READY"
    assert {check["status"] for check in saved["checks"]} == {"PASS"}
    assert "<testsuite" in junit_path.read_text()


def test_demo_with_a_flaw_exits_not_ready(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scim_readiness",
            "demo",
            "--flaw",
            "ignore-delete",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    checks = {c["id"]: c["status"] for c in json.loads(done.stdout)["checks"]}
    assert checks["user-lifecycle"] == "FAIL"


def test_demo_rejects_an_unknown_flaw_with_the_valid_names(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scim_readiness", "demo", "--flaw", "no-such-flaw"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown flaw: no-such-flaw" in done.stderr
    assert "ignore-delete" in done.stderr
    assert "Traceback" not in done.stderr
