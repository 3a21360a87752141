from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scim_readiness.clients.http import TlsSettings
from scim_readiness.clients.probe import build_probe
from scim_readiness.config import CheckSettings, Config, ProbeSection
from scim_readiness.devstack.sampleapp import AppSettings, RunningApp, serve_app
from scim_readiness.devstack.tls_ca import LocalCA, ServerCert
from scim_readiness.model import Finding, Status, fold_status
from scim_readiness.plugin.context import CheckContext, SharedClients, build_context
from scim_readiness.plugin.identities import new_run_id
from scim_readiness.plugin.ledger import Ledger

ORG_ID = "org_60219377000000001"


MakeContext = Callable[..., CheckContext]


@pytest.fixture
def make_context(tmp_path: Path, ca: LocalCA, webhook_secret: str) -> MakeContext:
    """A CheckContext for one check module, built as the runner would."""

    def build(
        check: ModuleType,
        *,
        url: str,
        secret: str | None = "default",
        expect: str = "development",
        organization_id: str | None = ORG_ID,
        options: dict[str, Any] | None = None,
        probe: Any = None,
        read_only: bool = False,
        run_id: str | None = None,
        probe_config: ProbeSection | None = None,
        **webhook: Any,
    ) -> CheckContext:
        config = Config.model_validate(
            {
                "probe": probe_config.model_dump() if probe_config else None,
                "scalekit": {"expect": expect, "organization_id": organization_id},
                "webhook": {
                    "url": url,
                    "secret": webhook_secret if secret == "default" else secret,
                    **webhook,
                },
            }
        )
        run_id = run_id or new_run_id()
        return build_context(
            check.CHECK,
            config,
            settings=CheckSettings(options=options or {}),
            run_id=run_id,
            read_only=read_only,
            ledger=Ledger(tmp_path / "ledger.jsonl", run_id),
            shared=SharedClients(config, TlsSettings(ca_bundle=str(ca.ca_path))),
            probe=probe,
        )

    return build


# ---------------------------------------------------------------------------- reference app

TENANT = "tenant-acme"


@pytest.fixture
def start_app(
    loopback_cert: ServerCert, webhook_secret: str, tmp_path: Path
) -> Iterator[Callable[..., RunningApp]]:
    """``start_app("flaw", ...)``: the reference app over HTTPS on loopback, stopped at the end
    of the test. ``app_secret=None`` starts it without a webhook secret."""
    stack = ExitStack()
    started = 0

    def start(*flaws: str, app_secret: str | None = "default", **settings: Any) -> RunningApp:
        nonlocal started
        started += 1
        app_settings = AppSettings(
            webhook_secret=webhook_secret if app_secret == "default" else app_secret,
            flaws=frozenset(flaws),
            tenant_by_org={ORG_ID: TENANT},
            db_path=tmp_path / f"app-{started}.sqlite3",
            **settings,
        )
        return stack.enter_context(serve_app(app_settings, loopback_cert))

    with stack:
        yield start


def probe_section(app: RunningApp, *only: str) -> ProbeSection:
    """The app's HTTP probe; with ``only``, just those lookups (a partial probe)."""
    urls = {name: url for name, url in app.probe.items() if not only or name in only}
    return ProbeSection.model_validate(
        {"kind": "http", "http": {**urls, "headers": app.probe_headers}}
    )


def run_check(check: ModuleType, ctx: CheckContext, app: RunningApp | None = None) -> Status:
    """Run ``check`` (and its cleanup) as the runner would, with the app's probe when ``app``
    is given; the status folded from the findings."""

    async def go() -> None:
        section = ctx.config.probe or (probe_section(app) if app is not None else None)
        probe = build_probe(section, ctx.tls) if section is not None else None
        ctx.probe = probe
        try:
            await check.run(ctx)
        finally:
            cleanup = getattr(check, "cleanup", None)
            if cleanup is not None:
                await cleanup(ctx)
            if probe is not None:
                await probe.aclose()

    asyncio.run(go())
    assert_coded(check, ctx.findings.items)
    return fold_status(f.status for f in ctx.findings.items)


def assert_coded(check: ModuleType, findings: list[Finding]) -> None:
    """Every finding the check recorded carries a code of its own catalogue."""
    catalogue = {code.code for code in check.CHECK.codes}
    assert [(f.title, f.code) for f in findings if f.code not in catalogue] == []


def titles(ctx: CheckContext, status: Status | None = None) -> list[str]:
    return [f.title for f in ctx.findings.items if status is None or f.status is status]


def finding(ctx: CheckContext, title_part: str) -> Finding:
    matches = [f for f in ctx.findings.items if title_part in f.title]
    assert matches, f"no finding {title_part!r} in {titles(ctx)}"
    return matches[0]


def assert_nothing_left(ctx: CheckContext, app: RunningApp) -> None:
    """Cleanup left nothing: no test object outstanding in the ledger, no active user in the
    app (the check's test users are the only users the app was sent)."""
    assert ctx.ledger.outstanding(ctx.run_id) == []
    assert not [u for u in app.store.list_users(after=0, limit=1000) if u.active]
