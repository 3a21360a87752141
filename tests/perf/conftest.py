from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scim_readiness.clients.http import TlsSettings
from scim_readiness.config import CheckSettings, Config
from scim_readiness.devstack.tls_ca import LocalCA
from scim_readiness.plugin.context import CheckContext, SharedClients, build_context
from scim_readiness.plugin.identities import new_run_id
from scim_readiness.plugin.ledger import Ledger

ORG_ID = "org_60219377000000001"


@pytest.fixture(scope="session")
def secret(webhook_secret: str) -> str:
    return webhook_secret


MakeContext = Callable[..., CheckContext]


@pytest.fixture
def make_context(tmp_path: Path, ca: LocalCA, secret: str) -> MakeContext:
    """A webhook-endpoint CheckContext built as the runner would, with ``options``."""

    def build(
        *, url: str, options: dict[str, Any] | None = None, use_secret: bool = True, **webhook: Any
    ) -> CheckContext:
        from scim_readiness.checks import webhook_endpoint

        config = Config.model_validate(
            {
                "scalekit": {"expect": "development", "organization_id": ORG_ID},
                "webhook": {"url": url, "secret": secret if use_secret else None, **webhook},
            }
        )
        run_id = new_run_id()
        return build_context(
            webhook_endpoint.CHECK,
            config,
            settings=CheckSettings(options=options or {}),
            run_id=run_id,
            ledger=Ledger(tmp_path / "ledger.jsonl", run_id),
            shared=SharedClients(config, TlsSettings(ca_bundle=str(ca.ca_path))),
        )

    return build
