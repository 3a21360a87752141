"""Helpers around the demo stack (the emulator and the reference app on loopback, and the
config that points the checker at them) for the checks that read Scalekit: `environment`,
`admin-portal` and `data-model`. The tests and ``demo`` use one and the same set-up.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from scim_readiness.config import Config
from scim_readiness.devstack.demo_stack import EMBEDDING_ORIGIN, Stack
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.model import CheckResult, Report, Status

__all__ = ["EMBEDDING_ORIGIN", "Stack", "finding", "raw_text", "result_of", "run", "titles"]

CHECKS = ("environment", "admin-portal", "data-model")
WAIT_S = 20.0


def run(stack: Stack, config: Config | None = None, *only: str) -> Report:
    """The runner, as the CLI drives it, over ``only`` (default: the three checks)."""
    options = RunOptions(only=only or CHECKS, ca_bundle=stack.ca_path)
    return asyncio.run(run_suite(config or stack.config(), options))


def check(stack: Stack, check_id: str, config: Config | None = None) -> CheckResult:
    return result_of(run(stack, config, check_id), check_id)


def wait_for_app_users(stack: Stack, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while stack.app.store.count_users() < count:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the app holds {stack.app.store.count_users()} users after {WAIT_S:g} s, "
                f"expected {count}"
            )
        time.sleep(0.02)


def result_of(report: Report, check_id: str) -> CheckResult:
    return next(c for c in report.checks if c.id == check_id)


def titles(result: CheckResult, status: Status | None = None) -> list[str]:
    return [f.title for f in result.findings if status is None or f.status is status]


def finding(result: CheckResult, fragment: str) -> Any:
    """The one finding whose title contains ``fragment``."""
    found = [f for f in result.findings if fragment in f.title]
    assert len(found) == 1, f"{fragment!r} in {[f.title for f in result.findings]}"
    return found[0]


def raw_text(report: Report | CheckResult) -> str:
    """Every field of every finding and metric, unredacted: what a check itself produced."""
    checks = report.checks if isinstance(report, Report) else (report,)
    parts: list[str] = []
    for result in checks:
        parts.append(repr(dict(result.metrics)))
        for f in result.findings:
            parts += [f.title, f.expected, f.observed, f.why, f.fix, repr(dict(f.evidence))]
    return "\n".join(parts)
