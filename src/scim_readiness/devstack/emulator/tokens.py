"""Access tokens as Scalekit issues them: RS256 JWTs, verifiable with the JWKS at ``/keys``.

The SDKs' ``validate_access_token`` fetches ``/keys``, picks the key named by the token's
``kid`` and checks the signature and expiry; the emulator's own API checks tokens the same
way, so a token stays valid across a restart that keeps the key (``emulate --state-dir``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    private: RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        from cryptography.hazmat.primitives.asymmetric import rsa

        return cls.from_private(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def from_private(cls, private: RSAPrivateKey) -> SigningKey:
        numbers = private.public_key().public_numbers()
        digest = hashlib.sha256(f"{numbers.n}:{numbers.e}".encode()).hexdigest()
        return cls(private, f"snk_{int(digest[:15], 16)}")  # Scalekit's kids look like snk_…

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        private = load_pem_private_key(pem, password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError("the token signing key must be an RSA private key")
        return cls.from_private(private)

    def pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _int_b64(numbers.n),
            "e": _int_b64(numbers.e),
        }

    def issue(self, *, issuer: str, client_id: str, lifetime_s: float) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        claims = {
            "iss": issuer,
            "sub": client_id,
            "aud": [client_id],
            "client_id": client_id,
            "iat": now,
            "nbf": now,
            "exp": now + math.ceil(lifetime_s),
            "jti": "tkn_" + secrets.token_hex(12),
            "scope": "openid",
        }
        signing_input = ".".join(
            _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self.private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this key signed and that has not expired; else None."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64(parts[0]))
            if header.get("alg") != "RS256" or header.get("kid") != self.kid:
                return None
            self.private.public_key().verify(
                _unb64(parts[2]),
                f"{parts[0]}.{parts[1]}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            claims: dict[str, Any] = json.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature, UnicodeDecodeError, AttributeError):
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
            return None
        return claims


_process_key: SigningKey | None = None
_process_key_lock = threading.Lock()


def process_signing_key() -> SigningKey:
    """One key per process unless a state directory supplies one: generating a 2048-bit
    key costs 50-120 ms, and tests and the demo start many emulators. Thread-safe, so the
    emulator can start making it in the background while its servers start."""
    global _process_key
    with _process_key_lock:
        if _process_key is None:
            _process_key = SigningKey.generate()
        return _process_key
