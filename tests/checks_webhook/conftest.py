from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scim_readiness.check import FindingRecorder
from scim_readiness.config import CheckSettings, Config
from scim_readiness.context import CheckContext, SharedClients, TlsSettings
from scim_readiness.identities import TestIdentities, new_run_id
from scim_readiness.ledger import Ledger
from scim_readiness.tls_ca import LocalCA, ServerCert

ORG_ID = "org_60219377000000001"


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def loopback_cert(ca: LocalCA) -> ServerCert:
    return ca.issue("127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


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
        **webhook: Any,
    ) -> CheckContext:
        config = Config.model_validate(
            {
                "scalekit": {"expect": expect, "organization_id": organization_id},
                "webhook": {
                    "url": url,
                    "secret": webhook_secret if secret == "default" else secret,
                    **webhook,
                },
            }
        )
        run_id = new_run_id()
        return CheckContext(
            info=check.CHECK,
            config=config,
            settings=CheckSettings(options=options or {}),
            run_id=run_id,
            read_only=read_only,
            findings=FindingRecorder(check.CHECK.docs_url),
            ledger=Ledger(tmp_path / "ledger.jsonl", run_id),
            identities=TestIdentities(run_id),
            shared=SharedClients(config, TlsSettings(ca_bundle=str(ca.ca_path))),
            probe=probe,
        )

    return build
