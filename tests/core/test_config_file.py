"""Config loading: every bad input ends in one exact message naming file, line and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scim_readiness.engine.config_file import load_config, parse_config, starter_text
from scim_readiness.errors import ConfigError, ExitCode

from .conftest import write_config

IDS = ("environment", "webhook-signature")


def error_of(text: str, **env: str) -> str:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        with pytest.raises(ConfigError) as info:
            parse_config(text, path="readiness.yaml", check_ids=IDS)
    assert info.value.exit_code is ExitCode.USAGE
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "scalekit:\n  environmnt_url: https://x\n",
            "readiness.yaml:2 (scalekit.environmnt_url): unknown key 'environmnt_url' "
            "(did you mean 'environment_url'?)\n"
            "  hint: allowed here: environment_url, client_id, client_secret, expect, "
            "organization_id, organization_external_id, directory_id, timeout_s",
        ),
        (
            "webhook:\n  url: https://app.example.com/hook\n  latency_budget_s: fast\n",
            "readiness.yaml:3 (webhook.latency_budget_s): expected a number, got 'fast' (a string)",
        ),
        (
            "webhook:\n  latency_budget_s: -1\n",
            "readiness.yaml:2 (webhook.latency_budget_s): input should be greater than 0, "
            "got -1 (a number)",
        ),
        (
            "scalekit:\n  expect: prod\n",
            "readiness.yaml:2 (scalekit.expect): expected one of 'production', 'staging' or "
            "'development', got 'prod' (a string)",
        ),
        (
            "scalekit: yes\n",
            "readiness.yaml:1 (scalekit): expected a mapping (key: value lines), "
            "got true (a boolean)",
        ),
        (
            "webhook:\n  allowed_hosts: app.example.com\n",
            "readiness.yaml:2 (webhook.allowed_hosts): expected a list, "
            "got 'app.example.com' (a string)",
        ),
        (
            "admin_portal:\n  attestations:\n    - item: branding\n      who: me\n",
            "readiness.yaml:3 (admin_portal.attestations[0].when): required key is missing\n"
            "  also readiness.yaml:3 (admin_portal.attestations[0].what): required key is missing\n"
            "  hint: add when: … under admin_portal.attestations[0]",
        ),
        (
            "scalekit:\n  client_secret: ${SK_SECRET_UNSET}\n",
            "readiness.yaml:2 (scalekit.client_secret): environment variable SK_SECRET_UNSET "
            "is not set\n  hint: export SK_SECRET_UNSET=… before running, or write "
            "${SK_SECRET_UNSET:-default} in the config",
        ),
        (
            "webhook:\n  url: ${not a var}\n",
            "readiness.yaml:2 (webhook.url): malformed variable reference ${not a var}\n"
            "  hint: write ${NAME} or ${NAME:-default}; write $${ for a literal ${",
        ),
        (
            "checks:\n  webhook-signatur:\n    enabled: false\n",
            "readiness.yaml:2 (checks.webhook-signatur): unknown check 'webhook-signatur' "
            "(did you mean 'webhook-signature'?)\n"
            "  hint: `scim-readiness checks` lists the check ids",
        ),
        (
            "checks:\n  environment:\n    timeout: 5\n",
            "readiness.yaml:3 (checks.environment.timeout): unknown key 'timeout' "
            "(did you mean 'timeout_s'?)\n  hint: allowed here: enabled, timeout_s, options",
        ),
        (
            "scalekit:\n  expect: staging\n  bad: [1,\n",
            "readiness.yaml:4: invalid YAML: expected the node content, but found '<stream end>'\n"
            "  hint: check the indentation and quoting around that line",
        ),
        (
            "webhook: {}\nwebhook: {}\n",
            "readiness.yaml:2 (webhook): key 'webhook' appears twice\n"
            "  hint: YAML would silently keep the last one; delete one of them",
        ),
        (
            "probe:\n  kind: command\n",
            "readiness.yaml:2 (probe.kind): probe.kind is 'command' but there is no "
            "probe.command section\n"
            "  hint: add a probe.command: block (see readiness.example.yaml)",
        ),
        (
            "probe:\n  kind: http\n  http:\n    timeout_s: 3\n",
            "readiness.yaml:3 (probe.http): probe.http defines none of user_by_email, "
            "user_by_id, list_users\n  hint: a probe needs at least one way to read users",
        ),
        (
            "- scalekit\n",
            "readiness.yaml:1: expected a mapping of sections (scalekit:, webhook:, …), got a list",
        ),
        (
            "# nothing here\n",
            "readiness.yaml: the config file is empty\n"
            "  hint: `scim-readiness config init` writes a commented starter",
        ),
        (
            "source_path: /etc\n",
            "readiness.yaml:1 (source_path): unknown key 'source_path'",
        ),
    ],
)
def test_exact_messages(text: str, message: str) -> None:
    assert error_of(text) == message


def test_alias_bombs_and_python_tags_are_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    assert "expands to more than 100000 values" in error_of(bomb)
    assert error_of("scalekit: !!python/object:os.system {}\n") == (
        "readiness.yaml:1 (scalekit): unsupported YAML tag "
        "tag:yaml.org,2002:python/object:os.system"
    )
    assert error_of("webhook:\n  url: !!python/name:os.system x\n").startswith(
        "readiness.yaml:2: invalid YAML value: could not determine a constructor"
    )


def test_interpolation_defaults_and_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_HOST", "app.example.com")
    monkeypatch.setenv("EMPTY", "")
    cfg = parse_config(
        "webhook:\n"
        "  url: https://${HOOK_HOST}/hooks?x=$${literal}\n"
        "  latency_budget_s: ${BUDGET_UNSET:-2.5}\n"
        "  health_url: ${EMPTY:-https://app.example.com/health}\n",
        path="r.yaml",
        check_ids=(),
    )
    assert cfg.webhook.url == "https://app.example.com/hooks?x=${literal}"
    assert cfg.webhook.latency_budget_s == 2.5
    assert cfg.webhook.health_url == "https://app.example.com/health"


def test_environment_fallbacks_fill_only_empty_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALEKIT_ENVIRONMENT_URL", "https://from-env.example.com")
    monkeypatch.setenv("SCALEKIT_CLIENT_ID", "skc_from_env")
    monkeypatch.setenv("SCALEKIT_CLIENT_SECRET", "env-secret-value")
    monkeypatch.setenv("SCALEKIT_WEBHOOK_SECRET", "whsec_envsecret")
    cfg = parse_config(
        "scalekit:\n  environment_url: https://from-file.example.com\n  client_id: ''\n",
        path="r.yaml",
        check_ids=(),
    )
    assert cfg.scalekit.environment_url == "https://from-file.example.com"
    assert cfg.scalekit.client_id == "skc_from_env"
    assert cfg.scalekit.client_secret is not None
    assert cfg.scalekit.client_secret.get_secret_value() == "env-secret-value"
    assert cfg.webhook.secret is not None
    assert cfg.webhook.secret.get_secret_value() == "whsec_envsecret"
    assert "env-secret-value" not in repr(cfg) and "env-secret-value" not in str(cfg)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", check_ids=())
    assert str(info.value) == (
        f"{tmp_path / 'nope.yaml'}: config file not found\n  hint: pass -c PATH, set "
        "SCIM_READINESS_CONFIG, or create one with `scim-readiness config init`"
    )
    with pytest.raises(ConfigError, match="expected a config file, found a directory"):
        load_config(tmp_path, check_ids=())
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="the config file is not UTF-8 text"):
        load_config(binary, check_ids=())


def test_check_ids_default_to_the_discovered_checks(tmp_path: Path) -> None:
    path = write_config(tmp_path, "checks:\n  environment:\n    enabled: false\n")
    cfg = load_config(path)
    assert cfg.checks.for_check("environment").enabled is False
    assert cfg.source_path == str(path)


def test_the_example_is_the_starter_and_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2]
    example = (root / "readiness.example.yaml").read_text(encoding="utf-8")
    assert example == starter_text()
    cfg = parse_config(example, path="readiness.example.yaml")
    assert cfg.scalekit.expect.value == "production"
    secret_values = re.findall(
        r"^\s*#?\s*(?:client_secret|secret|token|Authorization):\s*(.*)$", example, re.M
    )
    assert len(secret_values) >= 5
    for value in secret_values:  # secrets appear only as ${ENV} references
        assert "${" in value, value


def test_every_config_key_is_documented_in_the_example() -> None:
    from pydantic import BaseModel

    from scim_readiness.config import Config

    text = starter_text()
    missing = []

    def walk(model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            if name == "source_path":
                continue
            if f"{name}:" not in text:
                missing.append(f"{model.__name__}.{name}")
            annotation = field.annotation
            for candidate in (annotation, *getattr(annotation, "__args__", ())):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    walk(candidate)

    walk(Config)
    assert missing == []


def test_options_are_checked_against_the_models_given() -> None:
    from scim_readiness.checks import environment, webhook_endpoint

    models = {"environment": environment.Options, "webhook-signature": None}
    text = (
        "checks:\n"
        "  webhook-signature:\n"
        "    options: {anything: [1]}\n"  # no model: passed through unchecked
        "  environment:\n"
        "    enabled: true\n"
        "    options:\n"
        "      secret_unused_warn_days: 3\n"
        "      secret_expiry_warn_dayz: 5\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, path="readiness.yaml", check_ids=IDS, check_options=models)
    assert str(caught.value) == (
        "readiness.yaml:8 (checks.environment.options.secret_expiry_warn_dayz): unknown option "
        "'secret_expiry_warn_dayz' (did you mean 'secret_expiry_warn_days'?)\n"
        "  hint: options here: secret_expiry_warn_days, secret_unused_warn_days"
    )
    fine = text.replace("dayz", "days")
    cfg = parse_config(fine, path="readiness.yaml", check_ids=IDS, check_options=models)
    assert cfg.checks.for_check("webhook-signature").options == {"anything": [1]}
    # Without models (a caller that names ids only) options are not looked at.
    parse_config(text, path="readiness.yaml", check_ids=IDS)
    burst = "checks:\n  webhook-endpoint:\n    options:\n      burst: {events: 5, rate: 2}\n"
    with pytest.raises(ConfigError, match=r"^readiness.yaml:4 \(checks.webhook-endpoint"):
        parse_config(
            burst,
            path="readiness.yaml",
            check_ids=("webhook-endpoint",),
            check_options={"webhook-endpoint": webhook_endpoint.Options},
        )


def test_load_config_checks_options_of_the_discovered_checks(tmp_path: Path) -> None:
    path = write_config(tmp_path, "checks:\n  data-model:\n    options:\n      samples: many\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == 4
    assert caught.value.key == "checks.data-model.options.samples"
    assert "option samples must be a whole number ≥ 0, got 'many' (a string)" in str(caught.value)
