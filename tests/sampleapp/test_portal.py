"""The app's admin-portal-link endpoint, generating real links with the SDK from the emulator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from sampleapp.sampleapp_support import SECRET
from scim_readiness.devstack.emulator import Emulator, process_ca, start_emulator, trust_env
from scim_readiness.devstack.sampleapp import AppSettings, RunningApp, serve_app


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    # grpc reads its roots once per process; every test uses the process CA.
    trust_env(process_ca().ca_path)
    with start_emulator(delivery_delay_scale=0.001) as emu:
        yield emu


def portal_app(emu: Emulator, *flaws: str) -> AppSettings:
    return AppSettings(
        webhook_secret=SECRET,
        flaws=frozenset(flaws),
        tenant_by_org={emu.organization_id: emu.organization_external_id},
        scalekit_env_url=emu.env_url,
        scalekit_client_id=emu.client_id,
        scalekit_client_secret=emu.client_secret,
        scalekit_ca_path=emu.ca_path,
    )


def get(app: RunningApp, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
    with httpx.Client(verify=process_ca().client_context(), trust_env=False, timeout=20) as c:
        return c.get(app.portal_link_url, headers=headers or {}, params=params)


def test_authenticated_caller_gets_a_fresh_short_lived_link(emulator: Emulator) -> None:
    cert = process_ca().issue("127.0.0.1")
    with serve_app(portal_app(emulator), cert) as app:
        first = get(app, app.portal_headers)
        second = get(app, app.portal_headers)
    assert first.status_code == 200, first.text
    link = first.json()
    assert set(link) == {"location", "organization_id", "expire_time"}
    assert link["location"].startswith("https://")
    assert link["organization_id"] == emulator.organization_id
    expires = dt.datetime.fromisoformat(link["expire_time"].replace("Z", "+00:00"))
    assert dt.timedelta(0) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=10)
    assert first.headers["cache-control"] == "no-store"
    # One link per page view.
    assert second.json()["location"] != link["location"]


def test_unauthenticated_callers_never_see_a_link(emulator: Emulator) -> None:
    cert = process_ca().issue("127.0.0.1")
    with serve_app(portal_app(emulator), cert) as app:
        for headers in ({}, {"Authorization": "Bearer wrong"}, app.probe_headers):
            refused = get(app, headers)
            assert refused.status_code == 401
            assert "location" not in refused.json()
            assert "https://" not in refused.text
        unknown = get(app, app.portal_headers, organization_id="org_not_ours")
        assert unknown.status_code == 404
    with serve_app(portal_app(emulator, "portal-link-unauthenticated"), cert) as flawed:
        leaked = get(flawed)
        assert leaked.status_code == 200
        assert leaked.json()["location"].startswith("https://")


def test_scalekit_failure_is_a_clear_503(emulator: Emulator) -> None:
    cert = process_ca().issue("127.0.0.1")
    settings = AppSettings(
        webhook_secret=SECRET,
        tenant_by_org={emulator.organization_id: "tenant-x"},
        scalekit_env_url=emulator.env_url,
        scalekit_client_id=emulator.client_id,
        scalekit_client_secret="wrong-secret-value",
        scalekit_ca_path=emulator.ca_path,
    )
    with serve_app(settings, cert) as app:
        response = get(app, app.portal_headers)
    assert response.status_code == 503
    assert response.json()["error"] == "portal_unavailable"
    assert "wrong-secret-value" not in response.text
