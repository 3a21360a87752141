"""HTTP clients with the tool's trust and timeout policy in one place."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from scim_readiness.context import TlsSettings

USER_AGENT = "scim-readiness"


def ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """System trust plus the extra CA bundle; verification always on."""
    context = ssl.create_default_context()
    if tls.ca_bundle:
        context.load_verify_locations(cafile=tls.ca_bundle)
    return context


def make_async_client(
    tls: TlsSettings, *, timeout_s: float = 10.0, follow_redirects: bool = False
) -> httpx.AsyncClient:
    from scim_readiness import __version__

    return httpx.AsyncClient(
        verify=ssl_context(tls),
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        follow_redirects=follow_redirects,
        # Loopback and private targets must not be routed through a proxy from the environment.
        trust_env=False,
        headers={"user-agent": f"{USER_AGENT}/{__version__}"},
    )
