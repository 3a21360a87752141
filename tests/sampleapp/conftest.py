"""Fixtures: the reference app over real HTTPS on loopback, and a signed-event sender."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from sampleapp.sampleapp_support import SECRET, TENANTS, AppFactory, Sender
from scim_readiness.devstack.sampleapp import AppSettings, RunningApp, serve_app
from scim_readiness.devstack.tls_ca import LocalCA, ServerCert


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def server_cert(local_ca: LocalCA) -> ServerCert:
    return local_ca.issue("localhost", "127.0.0.1")


@pytest.fixture
def start_app(server_cert: ServerCert) -> AppFactory:
    """``with start_app(flaws={...}, webhook_secret=...) as app`` (defaults: clean, SECRET)."""

    def start(**overrides: Any) -> AbstractContextManager[RunningApp]:
        options: dict[str, Any] = {"webhook_secret": SECRET, "tenant_by_org": dict(TENANTS)}
        options.update(overrides)
        options["flaws"] = frozenset(options.get("flaws", ()))
        return serve_app(AppSettings(**options), server_cert)

    return start


@pytest.fixture
def app(start_app: AppFactory) -> Iterator[RunningApp]:
    with start_app() as running:
        yield running


@pytest.fixture
def client(local_ca: LocalCA) -> Iterator[httpx.Client]:
    with httpx.Client(verify=local_ca.client_context(), timeout=10.0, trust_env=False) as c:
        yield c


@pytest.fixture
def send(client: httpx.Client, app: RunningApp) -> Sender:
    return Sender(client, app)


@pytest.fixture
def sender_for(client: httpx.Client) -> Callable[[RunningApp], Sender]:
    return lambda running: Sender(client, running)
