"""A certificate the checker does not trust, found behind any client's error, with its fix.

httpx, requests, asyncio streams and grpc each report a failed verification their own way:
Python's ssl as ``SSLCertVerificationError`` somewhere in a chain of wrappers, grpc as an
UNAVAILABLE status whose details say ``CERTIFICATE_VERIFY_FAILED`` (or only "handshake
failed"). Every command that connects words it the same way: which endpoint, what OpenSSL
said, and how to trust the CA (``--ca-bundle``, repeatable, or the emulator's trust lines).
A certificate that is expired or names another host is not fixed by trusting more, so its
message says so instead.

The issuer is not named: Python's ssl keeps no chain of a failed handshake, and learning it
would take a second handshake without verification, which the tool never makes.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass

#: OpenSSL's verify results that a missing CA explains (X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
#: DEPTH_ZERO_SELF_SIGNED_CERT, SELF_SIGNED_CERT_IN_CHAIN, UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
#: UNABLE_TO_VERIFY_LEAF_SIGNATURE). Others (expired, hostname mismatch) are the server's.
_MISSING_CA = frozenset({2, 18, 19, 20, 21})

#: How to trust a CA, for the checker's commands (run, cleanup, probe test, events send).
CHECKER_FIX = (
    "pass --ca-bundle PATH naming the CA that signed it (repeatable), or export the trust "
    "lines `scim-readiness emulate` prints (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, "
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)"
)
#: The same for the emulator's webhook deliveries to the app.
EMULATOR_FIX = "start the emulator with --ca-bundle PATH naming the CA that signed it (repeatable)"

# How grpc (BoringSSL) and others word a failed verification in text, with OpenSSL's
# reason after it when they give one ("...CERTIFICATE_VERIFY_FAILED: unable to get local
# issuer certificate: OK").
_VERIFY_FAILED = re.compile(
    r"(?:CERTIFICATE_VERIFY_FAILED|certificate verify failed)(?:\]|:)?\s*([^:()\]]*)",
    re.IGNORECASE,
)
# Reasons no extra CA can fix: the server's certificate itself is wrong.
_SERVER_SIDE = ("expired", "not yet valid", "hostname", "not valid for", "ip address mismatch")


@dataclass(frozen=True, slots=True)
class CertificateProblem:
    """Why a certificate was refused: OpenSSL's words, and whether trusting a CA fixes it."""

    reason: str
    missing_ca: bool

    def sentence(self, endpoint: str, fix: str = CHECKER_FIX) -> str:
        """One line: which endpoint, what is wrong with its certificate, and the fix."""
        if self.missing_ca:
            return f"the TLS certificate of {endpoint} is not trusted ({self.reason}); fix: {fix}"
        return (
            f"the TLS certificate of {endpoint} is not valid ({self.reason}); the server must "
            "present a current certificate for this host name (trusting another CA with "
            "--ca-bundle does not change that)"
        )


def certificate_problem(exc: BaseException) -> CertificateProblem | None:
    """The refused certificate behind ``exc`` (any wrapping), or None if there is none."""
    chain = exception_chain(exc)
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            code = item.verify_code
            reason = item.verify_message or "certificate verify failed"
            return CertificateProblem(reason, missing_ca=code in _MISSING_CA or code is None)
    for item in chain:
        text = _grpc_details(item) or str(item)
        # Python's own wording names the failure twice: "[SSL: CERTIFICATE_VERIFY_FAILED]
        # certificate verify failed: <reason>".
        text = text.replace(
            "CERTIFICATE_VERIFY_FAILED] certificate verify failed", "CERTIFICATE_VERIFY_FAILED"
        )
        found = [m.strip() for m in _VERIFY_FAILED.findall(text)]
        if found:
            # grpc gives OpenSSL's words, not its verify result: judge by the words.
            specific = [m for m in found if m and m.lower() != "certificate verify failed"]
            reason = specific[0] if specific else "certificate verify failed"
            lowered = reason.lower()
            return CertificateProblem(
                reason, missing_ca=not any(word in lowered for word in _SERVER_SIDE)
            )
    return None


def _grpc_details(item: BaseException) -> str | None:
    details = getattr(item, "details", None)
    if callable(details):
        try:
            text = details()
        except Exception:  # noqa: BLE001 - a foreign object's accessor; the text is a bonus
            return None
        return text if isinstance(text, str) else None
    for name in ("_err_details", "_message"):
        value = getattr(item, name, None)
        if isinstance(value, str):
            return value
    return None


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it wraps: causes, contexts, exception arguments and the
    ``reason`` that urllib3 and requests hang their cause on."""
    seen: list[BaseException] = []
    stack: list[BaseException] = [exc]
    while stack:
        item = stack.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        linked = [item.__cause__, item.__context__, *item.args]
        stack.extend(nxt for nxt in linked if isinstance(nxt, BaseException))
        reason = getattr(item, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return seen
