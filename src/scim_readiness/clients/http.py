"""HTTP clients with the tool's trust and timeout policy in one place."""

from __future__ import annotations

import functools
import os
import ssl
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from scim_readiness.context import TlsSettings

USER_AGENT = "scim-readiness"


def ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """System trust plus the extra CA bundle; verification always on.

    Loading the system store costs tens of milliseconds of CPU (hundreds on a busy machine)
    and blocks the event loop, so one context is built per bundle and shared: contexts are
    safe to share and nothing here changes them after creation. A changed bundle file (new
    size or modification time) gets a new context.
    """
    key: tuple[str, int, int] | None = None
    if tls.ca_bundle:
        try:
            stat = os.stat(tls.ca_bundle)
            key = (tls.ca_bundle, stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = (tls.ca_bundle, -1, -1)  # let load_verify_locations report the error
    return _cached_context(key)


@functools.lru_cache(maxsize=16)
def _cached_context(key: tuple[str, int, int] | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if key is not None:
        context.load_verify_locations(cafile=key[0])
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
