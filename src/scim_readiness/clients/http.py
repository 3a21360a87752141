"""HTTP clients with the tool's trust and timeout policy in one place."""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from scim_readiness.errors import UsageError

USER_AGENT = "scim-readiness"


#: One CA bundle (a PEM file), or several: ``--ca-bundle`` may be given more than once.
CaBundles = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None


def ca_files(bundles: CaBundles) -> tuple[str, ...]:
    """``bundles`` as a tuple of paths, in the order given, each once."""
    if bundles is None:
        return ()
    if isinstance(bundles, str | os.PathLike):
        bundles = [bundles]
    return tuple(dict.fromkeys(os.fspath(path) for path in bundles if os.fspath(path)))


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Trust for every HTTPS and gRPC call: the system store plus extra CA bundles.

    ``ca_bundle`` is one path or several (``--ca-bundle`` is repeatable); all of them are
    trusted together, in one store, beside the system's. There is deliberately no way to
    turn verification off.
    """

    ca_bundle: CaBundles = None

    @property
    def ca_files(self) -> tuple[str, ...]:
        """The extra CA bundles, as paths."""
        return ca_files(self.ca_bundle)


def check_ca_bundles(bundles: CaBundles) -> None:
    """Raise UsageError for a ``--ca-bundle`` that is unreadable or holds no PEM certificate,
    before anything connects."""
    for path in ca_files(bundles):
        file = Path(path)
        if not file.is_file() or not os.access(file, os.R_OK):
            raise UsageError(
                f"--ca-bundle {path}: not a readable file",
                hint="pass the PEM file of the CA that signed your endpoints' certificates",
            )
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(file))
        except (ssl.SSLError, ValueError, OSError):
            raise UsageError(
                f"--ca-bundle {path}: no PEM certificates in it",
                hint="the bundle is one or more '-----BEGIN CERTIFICATE-----' blocks",
            ) from None


def ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """System trust plus every extra CA bundle; verification always on."""
    return trust_context(*tls.ca_files)


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
