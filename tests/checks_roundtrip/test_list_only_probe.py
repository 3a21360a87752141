"""A probe with only a list endpoint is a probe: every check that reads the app still
observes it (by scanning the list) and the reference app still ends READY."""

from __future__ import annotations

import asyncio

import pytest

from checks_roundtrip.stack import StackFactory
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.model import Status, Verdict


@pytest.mark.slow
def test_a_list_only_probe_runs_every_check_and_states_the_scan_cost(
    stack_factory: StackFactory,
) -> None:
    with stack_factory() as stack:
        config = stack.config()
        assert config.probe is not None and config.probe.http is not None
        list_only = config.probe.model_copy(
            update={
                "http": config.probe.http.model_copy(
                    update={"user_by_email": None, "user_by_id": None}
                )
            }
        )
        report = asyncio.run(
            run_suite(
                config.model_copy(update={"probe": list_only}),
                RunOptions(ca_bundle=stack.demo.ca_path),
            )
        )
    lines = [
        f"{c.id} {c.status}: {f.status} {f.title}: {f.observed}"
        for c in report.checks
        for f in c.findings
    ]
    assert report.summary.verdict is Verdict.READY, lines
    statuses = {check.id: check.status for check in report.checks}
    for check_id in ("user-lifecycle", "group-roles", "webhook-signature", "bad-data"):
        assert statuses[check_id] is Status.PASS, lines
    lifecycle = next(check for check in report.checks if check.id == "user-lifecycle")
    assert lifecycle.metrics["probe_scan"]["lookups"] > 0
    # Checks that never looked a user up carry no scan cost.
    environment = next(check for check in report.checks if check.id == "environment")
    assert "probe_scan" not in environment.metrics
