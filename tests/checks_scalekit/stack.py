"""The emulator and the reference app on loopback, with a config for the three checks that
read Scalekit (`environment`, `admin-portal`, `data-model`).

The app starts empty; ``sync()`` sends every directory user to it as a signed
``user_created`` event through the emulator's real delivery path (what an IdP's initial push
does), and waits until the app holds them all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scim_readiness.config import Config
from scim_readiness.emulator import Emulator, Seed, default_seed, process_ca, start_emulator
from scim_readiness.model import CheckResult, Report, Status
from scim_readiness.runner import RunOptions, run_suite
from scim_readiness.sampleapp import AppSettings, RunningApp, serve_app

CHECKS = ("environment", "admin-portal", "data-model")
EMBEDDING_ORIGIN = "https://app.acme-corp.example"
ROLE_MAP = {"Engineering": "editor", "Admins": "admin"}
SYNC_TIMEOUT_S = 20.0


@dataclass
class Stack:
    emulator: Emulator
    app: RunningApp
    webhook_secret: str
    ledger_path: Path

    @property
    def custom_domain(self) -> str:
        # The emulator answers on 127.0.0.1 as well as localhost: the "custom domain".
        return f"127.0.0.1:{self.emulator.port}"

    def raw_config(self) -> dict[str, Any]:
        emu, app = self.emulator, self.app
        return {
            "scalekit": {
                "environment_url": emu.env_url,
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "organization_id": emu.organization_id,
                "organization_external_id": emu.organization_external_id,
                "directory_id": emu.directory_id,
                # The emulator's https://localhost URL is a local (development-class) URL.
                "expect": "development",
                "timeout_s": 5,
            },
            "webhook": {"url": app.webhook_url, "secret": self.webhook_secret},
            "probe": {
                "kind": "http",
                "http": {
                    "user_by_email": app.probe["user_by_email"],
                    "user_by_id": app.probe["user_by_id"],
                    "list_users": app.probe["list_users"],
                    "headers": dict(app.probe_headers),
                },
            },
            "roles": {"map": dict(ROLE_MAP)},
            "data_model": {"required_attributes": ["given_name", "family_name"]},
            "admin_portal": {
                "expected_domain": self.custom_domain,
                "embedding_origin": EMBEDDING_ORIGIN,
                "app_link_endpoint": {
                    "url": app.portal_link_url,
                    "headers": dict(app.portal_headers),
                },
                "attestations": [
                    {
                        "item": "branding",
                        "who": "Dana Release",
                        "when": "2026-11-20",
                        "what": "logo and accent colour checked in the portal preview",
                    }
                ],
            },
            "ledger_path": str(self.ledger_path),
        }

    def config(self, **sections: Any) -> Config:
        """The clean config; each keyword replaces (dict: updates) one top-level section."""
        raw = self.raw_config()
        for name, value in sections.items():
            if isinstance(value, dict) and isinstance(raw.get(name), dict):
                raw[name] = {**raw[name], **value}
            elif value is None:
                raw.pop(name, None)
            else:
                raw[name] = value
        return Config.model_validate(raw)

    def run(self, config: Config | None = None, *only: str) -> Report:
        options = RunOptions(only=only or CHECKS, ca_bundle=str(self.emulator.ca_path))
        return asyncio.run(run_suite(config or self.config(), options))

    def sync(self) -> int:
        """Push every directory user to the app as user_created; wait until all arrived."""
        emu = self.emulator
        state = emu.state
        directory = state.directory(emu.directory_id)
        with state.lock:
            users = list(directory.users.values())
            for user in users:
                state.emit(
                    "organization.directory.user_created",
                    directory.organization_id,
                    state.user_data(directory, user),
                )
        self.wait_for_app_users(len(users))
        return len(users)

    def wait_for_app_users(self, count: int) -> None:
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while self.app.store.count_users() < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the app holds {self.app.store.count_users()} users after "
                    f"{SYNC_TIMEOUT_S:g} s, expected {count}"
                )
            time.sleep(0.02)


@contextlib.contextmanager
def start_stack(
    ledger_path: Path,
    *,
    flaws: tuple[str, ...] = (),
    seed: Seed | None = None,
    frame_ancestors: tuple[str, ...] = ("'self'", EMBEDDING_ORIGIN),
    custom_domain: bool = True,
    extra_tenants: dict[str, str] | None = None,
) -> Iterator[Stack]:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    cert = process_ca().issue("127.0.0.1", "localhost")
    seed = seed or default_seed()
    seed = seed.model_copy(
        update={"portal": seed.portal.model_copy(update={"frame_ancestors": list(frame_ancestors)})}
    )
    with start_emulator(seed, delivery_delay_scale=0.001) as emu:
        if custom_domain:
            # Known only once the port is: portal links are then made on 127.0.0.1.
            emu.state.seed.portal.domain = f"127.0.0.1:{emu.port}"
        settings = AppSettings(
            webhook_secret=secret,
            probe_token=secrets.token_urlsafe(16),
            portal_token=secrets.token_urlsafe(16),
            flaws=frozenset(flaws),
            tenant_by_org={
                emu.organization_id: emu.organization_external_id,
                **(extra_tenants or {}),
            },
            scalekit_env_url=emu.env_url,
            scalekit_client_id=emu.client_id,
            scalekit_client_secret=emu.client_secret,
            scalekit_ca_path=emu.ca_path,
        )
        with serve_app(settings, cert) as app:
            emu.register_webhook(app.webhook_url, secret)
            yield Stack(emu, app, secret, ledger_path)


def result_of(report: Report, check_id: str) -> CheckResult:
    return next(check for check in report.checks if check.id == check_id)


def titles(result: CheckResult, status: Status | None = None) -> list[str]:
    return [f.title for f in result.findings if status is None or f.status is status]


def finding(result: CheckResult, fragment: str) -> Any:
    """The one finding whose title contains ``fragment``."""
    found = [f for f in result.findings if fragment in f.title]
    assert len(found) == 1, f"{fragment!r} in {[f.title for f in result.findings]}"
    return found[0]


def raw_text(report: Report) -> str:
    """Every field of every finding and metric, unredacted: what a check itself produced."""
    parts: list[str] = []
    for check in report.checks:
        parts.append(repr(dict(check.metrics)))
        for f in check.findings:
            parts += [f.title, f.expected, f.observed, f.why, f.fix, repr(dict(f.evidence))]
    return "\n".join(parts)
