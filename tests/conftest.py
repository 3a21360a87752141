"""Fixtures several test folders share: one local CA per session, a loopback certificate
from it, and a fresh webhook signing secret; and Ctrl-C restored for the processes the tests
start."""

from __future__ import annotations

import base64
import secrets
import signal

import pytest

from scim_readiness.devstack.tls_ca import LocalCA, ServerCert

# A shell that starts the suite in the background (`pytest &` in a script) makes it ignore
# SIGINT, and every process it starts inherits that: the tests that press Ctrl-C on the CLI
# would then see it ignored and fail for the shell's reason, not the product's. A handler
# here is reset to the default in each child at exec, so the children take Ctrl-C again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def loopback_cert(ca: LocalCA) -> ServerCert:
    return ca.issue("127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
