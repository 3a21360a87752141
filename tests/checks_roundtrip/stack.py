"""The demo's stack (emulator + reference app on loopback, see
``scim_readiness.devstack.demo_stack``), with the knobs the round-trip tests turn: mode,
probe, roles, budgets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scim_readiness.checks import group_roles, user_lifecycle

from scim_readiness.config import Config
from scim_readiness.devstack.demo_stack import Stack as DemoStack
from scim_readiness.devstack.demo_stack import start_stack as start_demo_stack
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.model import CheckResult, Report

ROUNDTRIP_CHECKS = ("user-lifecycle", "group-roles")
# A step that passes returns as soon as the app shows the state, so its budget costs nothing
# and is generous (a loaded CI machine must not turn a slow pass into a FAIL); tests that
# expect a step to FAIL pay its whole budget, so they use the tighter FAILING_STEP_S.
STEP_TIMEOUT_S = 10.0
FAILING_STEP_S = 3.0
# The emulator validates SCIM emails with scim2-models, which refuses reserved domains such
# as the default .invalid one; example.com is reserved too (for documentation) and passes.
SCIM_TEST_DOMAIN = "scim-readiness.example.com"
TEST_PREFIX = "zz-scim-readiness+"
#: How long a test waits for the emulator's deliveries to settle before judging the app.
DELIVERY_SETTLE_S = 10.0


@dataclass
class Stack:
    demo: DemoStack

    @property
    def emulator(self) -> Any:
        return self.demo.emulator

    @property
    def app(self) -> Any:
        return self.demo.app

    @property
    def ledger_path(self) -> Path:
        return self.demo.workdir / "ledger.jsonl"

    def config(
        self,
        *,
        mode: str = "events",
        probe: bool = True,
        roles: dict[str, Any] | None = None,
        step_timeout_s: float = STEP_TIMEOUT_S,
        keep_records_on_delete: bool = True,
        scalekit: bool = True,
        check_timeout_s: float | None = None,
        options: dict[str, Any] | None = None,
    ) -> Config:
        """The demo config with the given knobs; ``options`` replaces the checks' options."""
        if options is None:
            options = {"mode": mode, "step_timeout_s": step_timeout_s}
        per_check: dict[str, Any] = {"options": options}
        if check_timeout_s is not None:
            per_check["timeout_s"] = check_timeout_s
        sections: dict[str, Any] = {
            "checks": {
                "allow_mutation": True,
                **{check: dict(per_check) for check in ROUNDTRIP_CHECKS},
            },
            "data_model": {"keep_records_on_delete": keep_records_on_delete},
        }
        if mode == "scim":
            sections["test_identities"] = {"email_domain": SCIM_TEST_DOMAIN}
        if not probe:
            sections["probe"] = None
        if roles is not None:
            sections["roles"] = roles
        if not scalekit:
            emu = self.emulator
            sections["scalekit"] = {"expect": "development", "organization_id": emu.organization_id}
        config = self.demo.config(**sections)
        if not scalekit:
            # demo_stack.config merges sections: drop the credentials it kept.
            trimmed = config.scalekit.model_copy(
                update={"environment_url": None, "client_id": None, "client_secret": None}
            )
            config = config.model_copy(update={"scalekit": trimmed})
        return config

    def run(self, config: Config, *only: str) -> Report:
        options = RunOptions(only=only or ROUNDTRIP_CHECKS, ca_bundle=self.demo.ca_path)
        return asyncio.run(run_suite(config, options))

    def active_test_users(self) -> list[str]:
        """Emails of test identities the app still holds as active, once the emulator's
        deliveries so far have landed (bounded): a SCIM change reaches the app
        asynchronously, as from Scalekit, so the app's state is final only then."""
        self.emulator.deliveries.wait_idle(timeout=DELIVERY_SETTLE_S)
        return [
            user.email
            for user in self.app.store.list_users(limit=100_000)
            if user.active and user.email.startswith(TEST_PREFIX)
        ]

    def directory_test_users(self) -> list[str]:
        directory = self.emulator.state.directory(self.emulator.directory_id)
        return [
            user.email for user in directory.users.values() if user.email.startswith(TEST_PREFIX)
        ]

    def directory_test_groups(self) -> list[str]:
        directory = self.emulator.state.directory(self.emulator.directory_id)
        return [
            group.display_name
            for group in directory.groups.values()
            if group.display_name.startswith("zz-scim-readiness-")
        ]


StackFactory = Callable[..., contextlib.AbstractContextManager[Stack]]


@contextlib.contextmanager
def start_stack(workdir: Path, *, flaws: tuple[str, ...] = ()) -> Iterator[Stack]:
    """The demo stack with ``flaws`` (app flaws and Scalekit-side ones such as
    ``role-mapping-missing``), webhook retries scaled down for tests."""
    # The initial sync waits for the app to hold every directory user, which an app that
    # ignores current event names never does.
    sync = "legacy-event-names" not in flaws
    with start_demo_stack(flaws, workdir=workdir, delivery_delay_scale=0.001, sync=sync) as demo:
        yield Stack(demo)


def result_of(report: Report, check_id: str) -> CheckResult:
    return next(check for check in report.checks if check.id == check_id)


def steps_by_status(result: CheckResult) -> dict[str, str]:
    return {step.step: str(step.status) for step in result.timeline}


def uncoded(report: Report) -> list[str]:
    """Findings of the round-trip checks whose code is not in their check's catalogue
    (findings the engine itself records carry RUN codes and are left to it)."""
    catalogue = {
        module.CHECK.id: {code.code for code in module.CHECK.codes}
        for module in (user_lifecycle, group_roles)
    }
    return [
        f"{check.id}: {finding.code or '(none)'} {finding.title}"
        for check in report.checks
        if check.id in catalogue
        for finding in check.findings
        if finding.code not in catalogue[check.id] and not finding.code.startswith("RUN")
    ]
