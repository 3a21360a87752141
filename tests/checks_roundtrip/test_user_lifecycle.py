"""user-lifecycle against the emulator and the reference app, in both modes."""

from __future__ import annotations

import pytest

from checks_roundtrip.stack import Stack, result_of
from scim_readiness.ledger import Ledger
from scim_readiness.model import Status


@pytest.mark.parametrize("mode", ["events"])
def test_clean_app_passes_every_step(stack: Stack, mode: str) -> None:
    report = stack.run(stack.config(mode=mode), "user-lifecycle")
    result = result_of(report, "user-lifecycle")
    assert result.status is Status.PASS, [f.title + ": " + f.observed for f in result.findings]
    assert [step.step for step in result.timeline] == [
        "1. create",
        "2. update profile",
        "3. change email",
        "4. deactivate",
        "5. reactivate",
        "6. delete",
    ]
    assert all(step.latency_s is not None and step.latency_s >= 0 for step in result.timeline)
    print(
        {
            step.step: round(step.latency_s * 1000, 1)
            for step in result.timeline
            if step.latency_s is not None
        }
    )
    assert Ledger(stack.ledger_path, report.run_id).outstanding(report.run_id) == []
    assert stack.active_test_users() == []
