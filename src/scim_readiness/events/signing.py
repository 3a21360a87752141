"""Standard Webhooks signatures, the scheme Scalekit signs its webhooks with."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping

#: The header families a sender may use; Scalekit's SDKs read ``webhook-*``, one of its
#: sample apps reads ``svix-*``, so a faithful sender sends both.
HEADER_FAMILIES = ("webhook", "svix")
#: Every header that carries (part of) a signature, lower-case.
SIGNATURE_HEADERS = frozenset(f"{family}-signature" for family in HEADER_FAMILIES)
REDACTED = "v1,<redacted>"


def _key(secret: str) -> bytes:
    text = secret.strip()
    if text.startswith("whsec_"):
        text = text[len("whsec_") :]
    try:
        key = base64.b64decode(text + "==", validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the webhook secret is not a whsec_ secret (base64 after whsec_)") from exc
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` over ``{msg_id}.{timestamp}.{body}``.

    ``secret`` is a ``whsec_`` secret. Raises ValueError for a secret that is not one.
    """
    key = _key(secret)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # Deliberately broken bodies (invalid UTF-8) still get a signature over their exact
        # bytes, so a receiver's rejection is about the body, not the signature.
        digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode("ascii")
    from standardwebhooks.webhooks import Webhook

    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return str(Webhook(key).sign(msg_id=msg_id, timestamp=moment, data=text))


def signed_headers(
    secret: str,
    msg_id: str,
    timestamp: int,
    body: bytes,
    *,
    families: Iterable[str] = HEADER_FAMILIES,
    signature: str | None = None,
) -> dict[str, str]:
    """The ``{family}-id``, ``-timestamp`` and ``-signature`` headers for each family.

    ``signature`` overrides the computed value (several space-separated signatures model key
    rotation; a broken one models an attack).
    """
    value = signature if signature is not None else sign(secret, msg_id, timestamp, body)
    headers: dict[str, str] = {}
    for family in families:
        if family not in HEADER_FAMILIES:
            raise ValueError(f"unknown header family {family!r}; expected one of {HEADER_FAMILIES}")
        headers[f"{family}-id"] = msg_id
        headers[f"{family}-timestamp"] = str(timestamp)
        headers[f"{family}-signature"] = value
    return headers


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy fit for output: signature values replaced (they are bearer proofs)."""
    from scim_readiness.redact import redact_signature_headers

    return redact_signature_headers(headers, SIGNATURE_HEADERS)
