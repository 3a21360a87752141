"""URL classes and credential shapes, without any network."""

from __future__ import annotations

import pytest

from scim_readiness.environment_url import (
    UrlClass,
    classify_environment_url,
    client_id_problems,
    environment_url_problems,
    secret_problems,
    webhook_secret_problems,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acme.scalekit.dev", UrlClass.DEVELOPMENT),
        ("https://acme-dev.scalekit.cloud", UrlClass.DEVELOPMENT),
        ("https://acme.scalekit.cloud", UrlClass.PRODUCTION),
        ("https://acme.scalekit.com", UrlClass.PRODUCTION),
        ("https://auth.acme-corp.com", UrlClass.PRODUCTION),
        ("https://localhost:8443", UrlClass.LOCAL),
        ("https://127.0.0.1:8443", UrlClass.LOCAL),
        ("https://[::1]:8443", UrlClass.LOCAL),
        ("https://10.1.2.3", UrlClass.PRIVATE),
        ("https://192.168.0.10", UrlClass.PRIVATE),
        ("https://scalekit.corp.internal", UrlClass.PRIVATE),
        ("https://intranet", UrlClass.PRIVATE),
        ("https://", UrlClass.INVALID),
    ],
)
def test_environment_url_classes(url: str, expected: UrlClass) -> None:
    assert classify_environment_url(url).url_class is expected


def test_custom_domain_is_recognised_as_such() -> None:
    assert classify_environment_url("https://auth.acme-corp.com").is_custom_domain
    assert not classify_environment_url("https://acme.scalekit.com").is_custom_domain


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://acme.scalekit.com", "https://"),
        ("https://acme.scalekit.com/api", "path"),
        ("https://acme.scalekit.com?x=1", "query"),
        (" https://acme.scalekit.com", "whitespace"),
        ("https://user:pw@acme.scalekit.com", "credentials"),
        ("acme.scalekit.com", "https://"),
    ],
)
def test_malformed_environment_urls_are_explained(url: str, fragment: str) -> None:
    problems = environment_url_problems(url)
    assert problems and any(fragment in p.message for p in problems)
    assert any(p.blocking for p in problems)


def test_trailing_slash_is_a_warning_not_a_blocker() -> None:
    problems = environment_url_problems("https://acme.scalekit.com/")
    assert [p.blocking for p in problems] == [False]
    assert environment_url_problems("https://acme.scalekit.com") == []
    assert environment_url_problems("https://localhost:8443") == []


def test_client_id_shape() -> None:
    assert client_id_problems("skc_58327482062864390") == []
    assert client_id_problems("58327482062864390")
    assert client_id_problems("skc_583 27")
    assert client_id_problems("skc_1 ")


@pytest.mark.parametrize(
    "secret",
    [
        "changeme",
        "xxx",
        "XXXXXXXXXXXXXXXXXXXX",
        "<your client secret>",
        "${SCALEKIT_CLIENT_SECRET}",
        "your-client-secret-here",
        "****************",
        "test",
        "short",
    ],
)
def test_placeholder_secrets_are_caught(secret: str) -> None:
    problems = secret_problems(secret)
    assert problems
    assert all(secret not in p.message for p in problems), "a problem must never echo the secret"


def test_real_looking_secret_passes() -> None:
    assert secret_problems("test_emulator_client_secret_7f3a9c") == []
    assert secret_problems("prod_8Hq2vZ0kL4mN7pR1sT5wX9yB") == []


def test_webhook_secret_shape() -> None:
    assert webhook_secret_problems("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == []
    assert webhook_secret_problems("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert webhook_secret_problems("whsec_not base64!")
