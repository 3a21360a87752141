"""A check stopped half-way (here: its time budget runs out while the probe hangs) still
removes everything it created, through the channel that created it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from checks_roundtrip.stack import ROUNDTRIP_CHECKS, Stack, result_of
from scim_readiness.clients.http import TlsSettings
from scim_readiness.clients.probe import AppUser, Probe, build_probe
from scim_readiness.config import Config
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.model import Report, Status
from scim_readiness.plugin.ledger import Ledger

CHECK_TIMEOUT_S = 2.0


class HangingProbe:
    """The app's probe, except that it hangs (once) when ``hang_now()`` says so."""

    def __init__(self, inner: Probe, hang_now: Callable[[int], bool]) -> None:
        self.inner = inner
        self.hang_now = hang_now
        self.calls = 0
        self.hung = False

    async def user_by_email(self, email: str) -> AppUser | None:
        self.calls += 1
        if not self.hung and self.hang_now(self.calls):
            self.hung = True
            await asyncio.sleep(3600)
        return await self.inner.user_by_email(email)

    async def user_by_id(self, directory_user_id: str) -> AppUser | None:
        return await self.inner.user_by_id(directory_user_id)

    def list_users(self) -> AsyncIterator[AppUser]:
        return self.inner.list_users()

    async def aclose(self) -> None:
        await self.inner.aclose()


def groups_recorded(ledger_path: Path) -> bool:
    return any(entry.kind == "group" for entry in Ledger(ledger_path, "").entries())


def run_with(stack: Stack, config: Config, check_id: str, probe: HangingProbe) -> Report:
    options = RunOptions(only=(check_id,), ca_bundle=stack.demo.ca_path)

    async def run() -> Report:
        try:
            return await run_suite(config, options, probe=probe)
        finally:
            await probe.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["events", "scim"])
@pytest.mark.parametrize("check_id", ROUNDTRIP_CHECKS)
def test_stopped_check_leaves_nothing_behind(stack: Stack, mode: str, check_id: str) -> None:
    config = stack.config(mode=mode, check_timeout_s=CHECK_TIMEOUT_S)
    assert config.checks.for_check(check_id).timeout_s == CHECK_TIMEOUT_S
    assert config.probe is not None
    inner = build_probe(config.probe, TlsSettings(ca_bundle=stack.demo.ca_path))
    if check_id == "group-roles" and mode == "events":
        # Hang once the test group exists, so there is a group as well as a user to remove
        # (scim mode makes no test group: Scalekit would give it no role to observe).
        probe = HangingProbe(inner, lambda _calls: groups_recorded(stack.ledger_path))
    else:
        probe = HangingProbe(inner, lambda calls: calls == 3)  # during the email change
    report = run_with(stack, config, check_id, probe)
    result = result_of(report, check_id)
    assert probe.hung
    assert result.status is Status.ERROR
    assert "timed out" in result.findings[-1].title or any(
        "timed out" in f.title for f in result.findings
    )
    assert Ledger(stack.ledger_path, report.run_id).outstanding(report.run_id) == []
    assert stack.active_test_users() == []
    assert stack.directory_test_users() == []
    assert stack.directory_test_groups() == []
