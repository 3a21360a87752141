"""`config validate` tells a valid config from one that is ready to run: a fresh `config init`
file is valid but evaluates nothing; a literal webhook secret is warned about (never shown);
a webhook URL that is not http(s) is a config error (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scim_readiness.cli.main import app
from scim_readiness.engine.config_file import (
    literal_secret_warnings,
    parse_config,
    readiness_gaps,
    starter_text,
)
from scim_readiness.errors import ConfigError

SECRET = "whsec_" + "Zm9vYmFyYmF6cXV4" * 2


@pytest.fixture(autouse=True)
def _no_secrets_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "SCALEKIT_ENVIRONMENT_URL",
        "SCALEKIT_CLIENT_ID",
        "SCALEKIT_CLIENT_SECRET",
        "SCALEKIT_WEBHOOK_SECRET",
    ):
        monkeypatch.delenv(var, raising=False)


def test_a_fresh_starter_config_is_valid_but_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "readiness.yaml"
    path.write_text(starter_text())
    result = CliRunner().invoke(app, ["config", "validate", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid, but not ready to run:" in result.output
    assert "scalekit.environment_url, scalekit.client_id, scalekit.client_secret empty" in (
        result.output
    )
    assert "environment and admin-portal would ERROR" in result.output
    assert "webhook.url empty: webhook-endpoint, webhook-signature" in result.output


def test_a_complete_config_has_no_gaps() -> None:
    config = parse_config(
        "scalekit:\n  environment_url: https://acme.scalekit.com\n  client_id: skc_1\n"
        "  client_secret: ${X:-s3cr3t}\n  organization_id: org_1\n"
        "webhook:\n  url: https://app.example.com/hook\n  secret: ${Y:-whsec_abc}\n"
    )
    assert readiness_gaps(config) == []


def test_an_empty_webhook_secret_is_a_gap() -> None:
    config = parse_config("webhook:\n  url: https://app.example.com/hook\n")
    (gap,) = readiness_gaps(config)
    assert gap.startswith("webhook.secret empty")


@pytest.mark.parametrize("url", ["ftp://app.example.com/hook", "app.example.com/hook"])
def test_a_webhook_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"webhook:\n  url: {url}\n", path="readiness.yaml")
    assert caught.value.exit_code == 2
    assert "webhook.url must be an http(s) URL" in caught.value.message
    assert caught.value.line == 2


def test_a_literal_webhook_secret_is_warned_about_without_showing_it(tmp_path: Path) -> None:
    text = f"webhook:\n  url: https://app.example.com/hook\n  secret: {SECRET}\n"
    (warning,) = literal_secret_warnings(text, "readiness.yaml")
    assert warning.startswith("readiness.yaml:3: warning: a literal webhook secret")
    assert SECRET not in warning and SECRET[6:14] not in warning
    path = tmp_path / "readiness.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["config", "validate", "-c", str(path)])
    assert "a literal webhook secret (whsec_…)" in result.output
    assert SECRET[6:14] not in result.output


def test_a_secret_from_the_environment_draws_no_warning() -> None:
    text = "webhook:\n  secret: ${SCALEKIT_WEBHOOK_SECRET}  # whsec_ from the dashboard\n"
    assert literal_secret_warnings(text) == []
