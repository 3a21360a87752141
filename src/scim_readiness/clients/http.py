"""HTTP clients with the tool's trust and timeout policy in one place."""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass

import httpx

USER_AGENT = "scim-readiness"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Trust for every HTTPS and gRPC call: the system store plus an optional extra CA bundle.

    There is deliberately no way to turn verification off.
    """

    ca_bundle: str | None = None


def ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """System trust plus the extra CA bundle; verification always on."""
    return trust_context(*([tls.ca_bundle] if tls.ca_bundle else []))


def trust_context(*ca_files: str | os.PathLike[str]) -> ssl.SSLContext:
    """A client context trusting the system store plus ``ca_files``; verification on.

    Loading the system store costs tens of milliseconds of CPU (hundreds on a busy machine)
    and blocks the event loop, so one context is built per set of files and shared, by the
    checker and by an emulator in the same process alike: contexts are safe to share and
    nothing here changes them after creation. A changed file (new size or modification
    time) gets a new context.
    """
    key = []
    for ca_file in ca_files:
        path = os.fspath(ca_file)
        try:
            stat = os.stat(path)
            key.append((path, stat.st_mtime_ns, stat.st_size))
        except OSError:
            key.append((path, -1, -1))  # let load_verify_locations report the error
    return _cached_context(tuple(key))


@functools.lru_cache(maxsize=16)
def _cached_context(key: tuple[tuple[str, int, int], ...]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for path, _, _ in key:
        context.load_verify_locations(cafile=path)
    return context


def make_async_client(
    tls: TlsSettings,
    *,
    timeout_s: float = 10.0,
    follow_redirects: bool = False,
    keep_alive: int = 20,
) -> httpx.AsyncClient:
    """``keep_alive``: how many idle connections are kept for reuse (httpx's default, 20,
    unless the caller sends more requests at once than that)."""
    from scim_readiness import __version__

    return httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=max(100, keep_alive), max_keepalive_connections=keep_alive
        ),
        verify=ssl_context(tls),
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        follow_redirects=follow_redirects,
        # Loopback and private targets must not be routed through a proxy from the environment.
        trust_env=False,
        headers={"user-agent": f"{USER_AGENT}/{__version__}"},
    )
