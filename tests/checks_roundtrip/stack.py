"""A complete stack on loopback for the round-trip checks: the emulator (Scalekit, SCIM and
webhook delivery), the reference app with chosen flaws, and a config wired to both."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scim_readiness.config import Config
from scim_readiness.emulator import Emulator, Seed, default_seed, process_ca, start_emulator
from scim_readiness.model import CheckResult, Report
from scim_readiness.runner import RunOptions, run_suite
from scim_readiness.sampleapp import AppSettings, RunningApp, serve_app

ROUNDTRIP_CHECKS = ("user-lifecycle", "group-roles")
# Failing steps wait out their whole budget: keep it small, the app answers in milliseconds.
STEP_TIMEOUT_S = 1.0
SCIM_TEST_DOMAIN = "scim-readiness.example.com"
ROLE_MAP = {"Engineering": "editor", "Admins": "admin"}


@dataclass
class Stack:
    emulator: Emulator
    app: RunningApp
    webhook_secret: str
    ledger_path: Path

    def config(
        self,
        *,
        mode: str = "events",
        probe: bool = True,
        roles: dict[str, Any] | None = None,
        step_timeout_s: float = STEP_TIMEOUT_S,
        keep_records_on_delete: bool = True,
        scalekit: bool = True,
        **extra: Any,
    ) -> Config:
        emu, app = self.emulator, self.app
        options = {"mode": mode, "step_timeout_s": step_timeout_s}
        raw: dict[str, Any] = {
            "scalekit": {
                "environment_url": emu.env_url,
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "organization_id": emu.organization_id,
                "organization_external_id": emu.organization_external_id,
                "directory_id": emu.directory_id,
                "expect": "development",
                "timeout_s": 5,
            }
            if scalekit
            else {"expect": "development", "organization_id": emu.organization_id},
            "webhook": {"url": app.webhook_url, "secret": self.webhook_secret},
            "scim_idp": {"url": emu.scim_url(), "token": emu.scim_token()},
            "roles": roles if roles is not None else {"map": dict(ROLE_MAP)},
            "data_model": {"keep_records_on_delete": keep_records_on_delete},
            "checks": {check: {"options": dict(options)} for check in ROUNDTRIP_CHECKS},
            "ledger_path": str(self.ledger_path),
        }
        if mode == "scim":
            # The emulator validates SCIM emails with scim2-models, which refuses reserved
            # domains such as the default .invalid one; example.com is reserved too, but for
            # documentation, and passes.
            raw["test_identities"] = {"email_domain": SCIM_TEST_DOMAIN}
        if probe:
            raw["probe"] = {
                "kind": "http",
                "http": {
                    "user_by_email": app.probe["user_by_email"],
                    "user_by_id": app.probe["user_by_id"],
                    "list_users": app.probe["list_users"],
                    "headers": dict(app.probe_headers),
                },
            }
        raw.update(extra)
        return Config.model_validate(raw)

    def run(self, config: Config, *only: str) -> Report:
        options = RunOptions(only=only or ROUNDTRIP_CHECKS, ca_bundle=str(self.emulator.ca_path))
        return asyncio.run(run_suite(config, options))

    def active_test_users(self) -> list[str]:
        """Emails of test identities the app still holds as active."""
        return [
            user.email
            for user in self.app.store.list_users(limit=100_000)
            if user.active and user.email.startswith("zz-scim-readiness+")
        ]

    def directory_test_users(self) -> list[str]:
        directory = self.emulator.state.directory(self.emulator.directory_id)
        return [
            user.email
            for user in directory.users.values()
            if user.email.startswith("zz-scim-readiness+")
        ]


StackFactory = Callable[..., contextlib.AbstractContextManager[Stack]]


@contextlib.contextmanager
def start_stack(
    ledger_path: Path, *, flaws: tuple[str, ...] = (), seed: Seed | None = None
) -> Iterator[Stack]:
    """Emulator + reference app (with ``flaws``), the app registered for webhook delivery."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    cert = process_ca().issue("127.0.0.1", "localhost")
    with start_emulator(seed or default_seed(), delivery_delay_scale=0.001) as emu:
        settings = AppSettings(
            webhook_secret=secret,
            probe_token=secrets.token_urlsafe(16),
            portal_token=secrets.token_urlsafe(16),
            flaws=frozenset(flaws),
            tenant_by_org={emu.organization_id: emu.organization_external_id},
        )
        with serve_app(settings, cert) as app:
            emu.register_webhook(app.webhook_url, secret)
            yield Stack(emu, app, secret, ledger_path)


def result_of(report: Report, check_id: str) -> CheckResult:
    return next(check for check in report.checks if check.id == check_id)


def steps_by_status(result: CheckResult) -> dict[str, str]:
    return {step.step: str(step.status) for step in result.timeline}
