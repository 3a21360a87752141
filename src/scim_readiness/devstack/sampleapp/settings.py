"""How the reference app is configured (pure data; importing this starts nothing)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from scim_readiness.devstack.sampleapp.flaws import validate_flaws

DEFAULT_MAX_BODY_BYTES = 256 * 1024


def _token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, kw_only=True)
class AppSettings:
    """Settings of one reference-app instance.

    ``tenant_by_org`` maps a Scalekit organization id to the app's own tenant id (the
    organization's ``external_id``); events from an organization not in a non-empty map are
    refused with 422. An empty map files users under the organization id itself.
    Tokens default to random ones (read them back from the settings).
    ``db_path`` None means a fresh SQLite file in a temporary directory.
    The ``scalekit_*`` fields are only needed by the admin-portal-link endpoint.
    """

    webhook_secret: str | None
    flaws: frozenset[str] = frozenset()
    probe_token: str = field(default_factory=_token)
    portal_token: str = field(default_factory=_token)
    tenant_by_org: dict[str, str] = field(default_factory=dict)
    db_path: Path | None = None
    scalekit_env_url: str | None = None
    scalekit_client_id: str | None = None
    scalekit_client_secret: str | None = None
    scalekit_ca_path: Path | None = None
    slow_ack_s: float = 4.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "flaws", validate_flaws(self.flaws))
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if self.slow_ack_s < 0:
            raise ValueError("slow_ack_s must not be negative")
        if not self.probe_token or not self.portal_token:
            raise ValueError("probe_token and portal_token must not be empty")

    def has(self, flaw: str) -> bool:
        return flaw in self.flaws

    def __repr__(self) -> str:
        # Tokens and secrets stay out of logs and tracebacks.
        return (
            f"AppSettings(flaws={sorted(self.flaws)}, tenant_by_org={self.tenant_by_org}, "
            f"db_path={self.db_path}, scalekit_env_url={self.scalekit_env_url})"
        )
