"""Redaction gaps found by trying to leak secrets: URL user-info, credential-named query
parameters outside a fixed list, and secrets cut short before anything could recognise them."""

from __future__ import annotations

import httpx
import pytest

from scim_readiness.redact import Redactor, is_credential_name, redact_text

TOKEN = "scimtok_Qm9vYmFyYmF6cXV4MTIzNDU2Nzg5"


def windows(secret: str, size: int = 10) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def leaks(text: str, secret: str) -> list[str]:
    return [w for w in windows(secret) if w in text]


@pytest.mark.parametrize("redact", [Redactor().text, redact_text])
def test_a_password_in_url_user_info_is_masked(redact) -> None:  # type: ignore[no-untyped-def]
    text = redact("probe failed: https://probe:hunter2-correct-horse@app.example/api/users")
    assert "hunter2" not in text and "correct-horse" not in text
    assert "app.example/api/users" in text


@pytest.mark.parametrize(
    "name", ["api-key", "X-Api-Key", "accessToken", "client.secret", "API_KEY", "sessionId"]
)
def test_every_credential_named_query_value_is_masked(name: str) -> None:
    text = Redactor().text(f"GET https://app.example/u?page=2&{name}=v4lu3-th4t-l34ks&email=a%40b")
    assert "v4lu3-th4t-l34ks" not in text, text
    assert "page=2" in text and "email=a%40b" in text


def test_harmless_parameter_names_stay_readable() -> None:
    assert not any(is_credential_name(n) for n in ("page", "per_page", "email", "cursor", "id"))


def test_a_secret_cut_short_leaves_no_ten_character_piece() -> None:
    redactor = Redactor([TOKEN])
    for keep in range(6, len(TOKEN)):
        shown = redactor.text("answered: " + TOKEN[:keep] + "…")
        assert not leaks(shown, TOKEN), (keep, shown)


def test_an_endpoint_that_echoes_the_token_leaks_none_of_it() -> None:
    """The SCIM answer was cut to 160 characters before redaction; a token straddling the
    cut left its first characters in the finding."""
    from scim_readiness.provisioning.drivers import _scim_error

    for pad in range(140, 165):
        body = ("invalid credentials " + "x" * pad + " Bearer " + TOKEN).encode()
        response = httpx.Response(401, content=body)
        # redacted where the token is known, and again by the report's redactor
        for message in (
            _scim_error(response, (TOKEN,)),
            Redactor([TOKEN]).text(_scim_error(response)),
        ):
            assert not leaks(message, TOKEN), (pad, message)
