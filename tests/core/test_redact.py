"""The redactor: secrets and their encodings out, ordinary text untouched."""

from __future__ import annotations

import base64
import json

from scim_readiness.redact import Redactor, mask_url_tokens


def test_secrets_and_their_encodings_are_masked() -> None:
    secret = "s3cr3t/with+odd=chars"
    r = Redactor([secret, "whsec_QUJDREVGR0g="])
    text = " | ".join(
        [
            secret,
            "s3cr3t%2Fwith%2Bodd%3Dchars",
            "s3cr3t%2fwith%2bodd%3dchars",
            json.dumps(secret),
            base64.b64encode(secret.encode()).decode(),
            "QUJDREVGR0g=",
        ]
    )
    assert r.text(text) == " | ".join(["***", "***", "***", '"***"', "***", "***"])


def test_short_values_are_not_treated_as_secrets() -> None:
    assert Redactor(["abc", ""]).text("abc abc") == "abc abc"


def test_url_tokens_and_magic_links_are_masked() -> None:
    assert mask_url_tokens("https://app.example.com/cb?code=abc123&state=ok#x") == (
        "https://app.example.com/cb?code=***&state=ok#x"
    )
    assert mask_url_tokens("https://portal.example.com/magicLink/9f8e7d6c5b4a_xyz?x=1") == (
        "https://portal.example.com/magicLink/***?x=1"
    )
    assert mask_url_tokens("Authorization: Bearer eyJhbGciOi.J9x") == "Authorization: Bearer ***"


def test_ordinary_prose_is_left_alone() -> None:
    prose = (
        "Basic authentication is not enough; a bearer tokenless request got 401. "
        "See https://docs.scalekit.com/guides/admin-portal/?tab=keys for the key rotation."
    )
    assert Redactor(["unrelated-secret"]).text(prose) == prose
