"""Fixtures several test folders share: one local CA per session, a loopback certificate
from it, and a fresh webhook signing secret."""

from __future__ import annotations

import base64
import secrets

import pytest

from scim_readiness.devstack.tls_ca import LocalCA, ServerCert


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def loopback_cert(ca: LocalCA) -> ServerCert:
    return ca.issue("127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
