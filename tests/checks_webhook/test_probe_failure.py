"""A probe that fails while the webhook checks read the app's records: one ERROR with the
probe's message and the check's own code, whichever of the look-ups running side by side
failed, and no verdict on the records it could not read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from types import ModuleType

from scim_readiness.checks import bad_data, webhook_signature

from scim_readiness.clients.probe import AppUser, Probe, build_probe
from scim_readiness.devstack.sampleapp import RunningApp
from scim_readiness.errors import ProbeError
from scim_readiness.model import Finding, Status
from scim_readiness.plugin.context import CheckContext

from .conftest import MakeContext, assert_coded, probe_section

StartApp = Callable[..., RunningApp]
BROKEN = "list_users answered HTTP 500"


class BrokenAfterLookups:
    """The app's real probe, but once ``broken`` lookups fail with a ProbeError: by email
    (which only absent users need: the genuine ones are found by id) or the user list."""

    def __init__(self, real: Probe, broken: str) -> None:
        self.real, self.broken = real, broken

    async def user_by_id(self, directory_user_id: str) -> AppUser | None:
        return await self.real.user_by_id(directory_user_id)

    async def user_by_email(self, email: str) -> AppUser | None:
        if self.broken == "email":
            raise ProbeError(BROKEN.replace("list_users", "user_by_email"))
        return await self.real.user_by_email(email)

    async def list_users(self) -> AsyncIterator[AppUser]:
        if self.broken == "list":
            raise ProbeError(BROKEN)
        async for user in self.real.list_users():
            yield user

    async def aclose(self) -> None:
        await self.real.aclose()


def run_with_broken_probe(
    check: ModuleType, ctx: CheckContext, app: RunningApp, broken: str
) -> list[Finding]:
    async def go() -> None:
        probe = BrokenAfterLookups(build_probe(probe_section(app), ctx.tls), broken)
        ctx.probe = probe
        try:
            await check.run(ctx)
        finally:
            await check.cleanup(ctx)
            await probe.aclose()

    asyncio.run(go())
    assert_coded(check, ctx.findings.items)
    return ctx.findings.items


def test_bad_data_reports_a_failed_record_read_as_one_error(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app()
    ctx = make_context(bad_data, url=app.webhook_url, health_url=app.health_url)
    findings = run_with_broken_probe(bad_data, ctx, app, "list")
    errors = [(f.title, f.observed, f.code) for f in findings if f.status is Status.ERROR]
    assert errors == [("Could not read the app's state through the probe", BROKEN, "BAD012")]
    assert not [f for f in findings if f.code in ("BAD013", "BAD014", "BAD015", "BAD016")]


def test_webhook_signature_reports_a_failed_trace_read_as_one_error(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app()
    ctx = make_context(webhook_signature, url=app.webhook_url)
    findings = run_with_broken_probe(webhook_signature, ctx, app, "email")
    errors = [(f.title, f.observed, f.code) for f in findings if f.status is Status.ERROR]
    assert errors == [
        (
            "Could not read the app's state through the probe",
            "user_by_email answered HTTP 500",
            "SIG010",
        )
    ]
    assert not [f for f in findings if f.code == "SIG009"]  # no replay verdict either
