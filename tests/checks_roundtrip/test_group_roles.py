"""group-roles against the emulator and the reference app, in both modes."""

from __future__ import annotations

import pytest

from checks_roundtrip.stack import Stack, result_of
from scim_readiness.ledger import Ledger
from scim_readiness.model import Status


@pytest.mark.parametrize("mode", ["events"])
def test_clean_app_passes(stack: Stack, mode: str) -> None:
    report = stack.run(stack.config(mode=mode), "group-roles")
    result = result_of(report, "group-roles")
    assert result.status is Status.PASS, [
        f"{f.status} {f.title}: {f.observed}" for f in result.findings
    ]
    for step in result.timeline:
        print(step)
    assert Ledger(stack.ledger_path, report.run_id).outstanding(report.run_id) == []
    assert stack.active_test_users() == []
