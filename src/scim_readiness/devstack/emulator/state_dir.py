"""What ``emulate`` keeps across restarts: one CA, the access-token key, generated secrets.

A new CA at every start broke every app's trust settings on each restart. With a state
directory (``emulate --state-dir DIR``, by default a per-user data directory) the CA, the
server certificate it signs, the JWT signing key and the webhook secrets it generated are
kept there, private to the user (0700 directory, 0600 keys), so an app configured once
keeps working. Nothing is written to the shared temporary directory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import ssl
import sys
from pathlib import Path
from typing import Any

from scim_readiness.devstack.emulator.tokens import SigningKey
from scim_readiness.devstack.tls_ca import LocalCA
from scim_readiness.errors import UsageError

#: A kept CA is valid this long, and replaced when it would expire within RENEW_BEFORE.
CA_LIFETIME = dt.timedelta(days=5 * 365)
RENEW_BEFORE = dt.timedelta(days=30)


def default_state_dir() -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME`` (or ``~/.local/share``) on Linux,
    ``~/Library/Application Support`` on macOS, ``%LOCALAPPDATA%`` on Windows."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "scim-readiness" / "emulator"


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: a key must never be readable, even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


class StoredCA(LocalCA):
    """A :class:`LocalCA` whose key and certificate live in a directory and are reused."""

    def __init__(self, directory: Path, name: str = "scim-readiness emulator CA") -> None:
        key_path, cert_path = directory / "ca.key", directory / "ca.pem"
        kept = _load_ca(key_path, cert_path)
        if kept is None:
            made = LocalCA(directory, name=name)  # a fresh key; its certificate is re-signed
            # LocalCA makes short-lived throwaway CAs; a kept one lives CA_LIFETIME.
            kept = (made._key, _long_lived(made._key, made.cert))
            _write_private(key_path, _key_pem(kept[0]))
            cert_path.write_bytes(kept[1].public_bytes(_pem_encoding()))
        self.directory = directory
        self._key, self.cert = kept
        self._name = self.cert.subject
        self.cert_pem = self.cert.public_bytes(_pem_encoding())
        self.ca_path = cert_path
        self._issued = 0


def _pem_encoding() -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM


def _load_ca(key_path: Path, cert_path: Path) -> tuple[Any, Any] | None:
    """The kept CA key and certificate, if both are there, match and stay valid a while."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return None  # missing or damaged: make a new one
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.public_key() != key.public_key():
        return None
    if cert.not_valid_after_utc - RENEW_BEFORE <= dt.datetime.now(dt.UTC):
        return None
    return key, cert


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem


def _long_lived(key: Any, cert: Any) -> Any:
    """The same CA certificate (subject, key, extensions) valid for CA_LIFETIME."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.subject)
        .public_key(cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(key, hashes.SHA256())


class StateDir:
    """The emulator's kept state in ``path`` (created 0700 when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser()
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.path.chmod(0o700)
        except OSError as exc:
            raise UsageError(
                f"--state-dir {self.path}: cannot create or use it ({exc.strerror})",
                hint="pass a directory you can write, e.g. --state-dir ./.emulator",
            ) from None
        self._secrets_path = self.path / "secrets.json"

    def ca(self) -> StoredCA:
        return StoredCA(self.path)

    def signing_key(self) -> SigningKey:
        path = self.path / "token-signing-key.pem"
        if path.is_file():
            try:
                return SigningKey.from_pem(path.read_bytes())
            except ValueError:
                pass  # damaged: make a new one (tokens issued with it stop working)
        key = SigningKey.generate()
        _write_private(path, key.pem())
        return key

    def _secrets(self) -> dict[str, str]:
        try:
            data = json.loads(self._secrets_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def webhook_secret(self, url: str) -> str:
        """The whsec_ secret generated for ``url`` the first time, the same ever after."""
        import base64

        kept = self._secrets()
        key = f"webhook:{url}"
        if key not in kept:
            kept[key] = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
            _write_private(self._secrets_path, json.dumps(kept, indent=2).encode())
        return kept[key]

    def trust_bundle(self, ca: LocalCA) -> Path:
        return write_trust_bundle(ca, self.path)


def write_trust_bundle(ca: LocalCA, directory: Path) -> Path:
    """The system's CAs plus the emulator's, for the variables that replace a client's whole
    trust store (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH), so
    an app keeps trusting public HTTPS too."""
    system = ssl.get_default_verify_paths().openssl_cafile
    parts = [ca.cert_pem]
    try:
        parts.insert(0, Path(system).read_bytes())
    except (OSError, TypeError):
        pass  # no system bundle file (some systems keep a directory): the CA alone
    path = directory / "trust-bundle.pem"
    path.write_bytes(b"\n".join(parts))
    return path
