"""Address classification and allow-list matching (pure), and the legacy-TLS probe's
outcomes against real servers on loopback."""

from __future__ import annotations

import asyncio

import pytest
from scim_readiness.checks import webhook_endpoint
from scim_readiness.checks.webhook_endpoint.tls_inspect import (
    host_allowed,
    is_loopback_host,
    non_public_reason,
    probe_legacy_tls,
)

from scim_readiness.devstack.tls_ca import ServerCert
from scim_readiness.model import Status

from .conftest import MakeContext, finding
from .receiver import serve


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.10", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata: never a webhook target
        ("fe80::1%eth0", "link-local"),
        ("0.0.0.0", "private"),
        ("100.64.0.1", "reserved"),  # carrier-grade NAT
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_non_public_reason(address: str, reason: str | None) -> None:
    assert non_public_reason(address) == reason


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("hooks.example.com", ("hooks.example.com",), True),
        ("HOOKS.example.com.", ("hooks.example.com",), True),
        ("api.hooks.example.com", ("*.example.com",), True),
        ("example.com", ("*.example.com",), False),  # a wildcard is not the apex
        ("evil-example.com", ("*.example.com",), False),
        ("hooks.example.com.evil.io", ("hooks.example.com",), False),
        ("staging.example.com", ("hooks.example.com", "api.example.com"), False),
    ],
)
def test_host_allowed(host: str, allowed: tuple[str, ...], expected: bool) -> None:
    assert host_allowed(host, allowed) is expected


def test_loopback_names() -> None:
    assert is_loopback_host("localhost") and is_loopback_host("app.localhost")
    assert is_loopback_host("127.0.0.2") and not is_loopback_host("hooks.example.com")


def test_legacy_probe_against_a_modern_server_is_refused(loopback_cert: ServerCert) -> None:
    with serve(tls=loopback_cert.server_context()) as app:
        legacy = asyncio.run(probe_legacy_tls("127.0.0.1", app.port, timeout_s=3))
    assert legacy.outcome in ("refused", "unavailable")


def test_legacy_probe_of_a_closed_port_is_unreachable() -> None:
    with serve() as gone:
        port = gone.port
    legacy = asyncio.run(probe_legacy_tls("127.0.0.1", port, timeout_s=3))
    assert legacy.outcome == "unreachable"


def test_openssl_without_legacy_protocols_is_skip_not_pass(
    make_context: MakeContext, loopback_cert: ServerCert, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some builds (FIPS, hardened distributions) cannot offer TLS 1.0/1.1 at all.
    monkeypatch.setattr(
        "scim_readiness.checks.webhook_endpoint.tls_inspect.legacy_client_context", lambda: None
    )
    with serve(tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url, secret=None)
        asyncio.run(webhook_endpoint.run(ctx))
    f = finding(ctx, "TLS 1.0/1.1 refusal not tested")
    assert f.status is Status.SKIP and "cannot" in f.observed
