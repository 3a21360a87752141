"""Looking at a webhook endpoint from the outside: DNS, the TLS certificate, legacy TLS.

Nothing here sends application data. Every network step is bounded by a timeout, and
verification is never weakened for anything that carries data: the only handshakes made
without verification are the inspection of a certificate that has already failed to verify
(so the report can say what it *is*) and the legacy-protocol probe, which only asks whether
the server would agree to TLS 1.0/1.1 and closes straight away.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import warnings
from dataclasses import dataclass
from typing import Literal

from cryptography import x509

from scim_readiness.api import TargetError
from scim_readiness.clients.http import TlsSettings, ssl_context

# ---------------------------------------------------------------------------- addresses


async def resolve(host: str, port: int, *, timeout_s: float) -> tuple[str, ...]:
    """Every address ``host`` resolves to (deduplicated, in resolver order).

    Runs the blocking resolver in a thread, bounded by ``timeout_s``; raises TargetError.
    """
    try:
        infos = await asyncio.wait_for(
            asyncio.to_thread(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM),
            timeout=timeout_s,
        )
    except TimeoutError as exc:
        raise TargetError(f"DNS lookup of {host} took longer than {timeout_s:g} s") from exc
    except (OSError, UnicodeError) as exc:
        raise TargetError(f"DNS lookup of {host} failed: {exc}") from exc
    seen: dict[str, None] = {}
    for info in infos:
        seen.setdefault(str(info[4][0]), None)
    return tuple(seen)


def non_public_reason(address: str) -> str | None:
    """Why Scalekit could not reach ``address`` from the internet, or None if it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        return non_public_reason(host) == "loopback"
    except ValueError:
        return False


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Exact names, or ``*.example.com`` for any subdomain (not the apex); case-insensitive."""
    host = host.lower().rstrip(".")
    for pattern in allowed:
        pattern = pattern.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


# ---------------------------------------------------------------------------- certificate


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    subject: str
    issuer: str
    names: tuple[str, ...]  # subjectAltName entries (DNS names and IP addresses)
    not_after: dt.datetime

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


@dataclass(frozen=True, slots=True)
class TlsHandshake:
    """The verified handshake a sender would make, or why it failed."""

    verified: bool
    version: str | None = None
    certificate: CertificateInfo | None = None
    verify_error: str | None = None  # the certificate was presented but does not verify
    hostname_mismatch: bool = False
    connect_error: str | None = None  # no TLS conversation at all (refused, timeout, reset)


_HOSTNAME_MISMATCH = 62  # X509_V_ERR_HOSTNAME_MISMATCH
_IP_MISMATCH = 64  # X509_V_ERR_IP_ADDRESS_MISMATCH


def _certificate_info(der: bytes) -> CertificateInfo:

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(
            [str(n) for n in san.get_values_for_type(x509.DNSName)]
            + [str(n) for n in san.get_values_for_type(x509.IPAddress)]
        )
    except x509.ExtensionNotFound:
        names = ()
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        names=names,
        not_after=cert.not_valid_after_utc,
    )


async def _handshake(
    host: str, port: int, context: ssl.SSLContext, timeout_s: float
) -> tuple[str | None, bytes | None]:
    """Open a TLS connection, return (negotiated version, peer certificate DER), close."""
    reader_writer = await asyncio.wait_for(
        asyncio.open_connection(
            host, port, ssl=context, server_hostname=host, ssl_handshake_timeout=timeout_s
        ),
        timeout=timeout_s,
    )
    _, writer = reader_writer
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        version = ssl_object.version() if ssl_object is not None else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        return version, der
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), timeout=1.0)
        except (TimeoutError, OSError, ssl.SSLError):
            pass


def _connect_error(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no TLS handshake within {timeout_s:g} s"
    return f"{type(exc).__name__}: {exc}"


async def inspect_tls(host: str, port: int, tls: TlsSettings, *, timeout_s: float) -> TlsHandshake:
    """Handshake with full verification (system store plus the configured CA bundle)."""
    try:
        version, der = await _handshake(host, port, ssl_context(tls), timeout_s)
    except ssl.SSLCertVerificationError as exc:
        mismatch = exc.verify_code in (_HOSTNAME_MISMATCH, _IP_MISMATCH)
        return TlsHandshake(
            verified=False,
            verify_error=str(exc.verify_message or exc.reason or exc),
            hostname_mismatch=mismatch,
            certificate=await _unverified_certificate(host, port, timeout_s),
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return TlsHandshake(verified=False, connect_error=_connect_error(exc, timeout_s))
    return TlsHandshake(
        verified=True, version=version, certificate=_certificate_info(der) if der else None
    )


async def _unverified_certificate(host: str, port: int, timeout_s: float) -> CertificateInfo | None:
    # Only to describe a certificate that failed verification; nothing is sent over this.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        _, der = await _handshake(host, port, context, timeout_s)
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    return _certificate_info(der) if der else None


# ---------------------------------------------------------------------------- legacy TLS


@dataclass(frozen=True, slots=True)
class LegacyTls:
    """Whether the server agreed to a handshake capped at TLS 1.1.

    ``unavailable``: this machine's OpenSSL cannot even offer TLS 1.0/1.1, so nothing was
    learned about the server.
    """

    outcome: Literal["refused", "accepted", "unavailable", "unreachable"]
    version: str | None = None
    detail: str = ""


def legacy_client_context() -> ssl.SSLContext | None:
    """A client context that offers only TLS 1.0 and 1.1, or None if OpenSSL cannot."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            # The TLSv1/TLSv1_1 members are deprecated precisely because nobody should use
            # them; offering them is the whole point of this probe.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        # OpenSSL 3 refuses the SHA-1 based legacy handshakes at its default security level.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return None
    return context


async def probe_legacy_tls(host: str, port: int, *, timeout_s: float) -> LegacyTls:
    context = legacy_client_context()
    if context is None:
        return LegacyTls("unavailable", detail="this OpenSSL cannot be limited to TLS 1.0/1.1")
    try:
        version, _ = await _handshake(host, port, context, timeout_s)
    except ssl.SSLError as exc:
        reason = exc.reason or ""
        if reason in ("NO_PROTOCOLS_AVAILABLE", "UNSUPPORTED_PROTOCOL") and "alert" not in str(exc):
            return LegacyTls(
                "unavailable",
                detail=f"this machine's OpenSSL ({ssl.OPENSSL_VERSION}) would not offer TLS "
                f"1.0/1.1: {reason}",
            )
        return LegacyTls("refused", detail=reason or str(exc))
    except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
        return LegacyTls("refused", detail=f"connection closed during handshake ({exc!r})")
    except (OSError, TimeoutError) as exc:
        return LegacyTls("unreachable", detail=_connect_error(exc, timeout_s))
    if version in ("TLSv1", "TLSv1.1"):
        return LegacyTls("accepted", version=version)
    # Cannot normally happen (the context caps at 1.1), but never call it accepted blindly.
    return LegacyTls("refused", version=version, detail=f"negotiated {version}")
