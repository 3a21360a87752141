"""`environment` against the emulator through the real SDK and the runner."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import re
import socket

import pytest
import yaml
from scim_readiness.checks.environment import CHECK as ENVIRONMENT
from scim_readiness.checks.environment import check as environment_body

from checks_scalekit.conftest import StackFactory
from checks_scalekit.stack import Stack, check, finding, raw_text, result_of, run, titles
from scim_readiness.clients.http import TlsSettings
from scim_readiness.clients.scalekit import ScalekitGateway, connect
from scim_readiness.config import Config
from scim_readiness.devstack.emulator import default_seed
from scim_readiness.devstack.emulator.seed import SecretSeed
from scim_readiness.engine.config_file import parse_config
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.model import CheckResult, Severity, Status


def coded(result: CheckResult) -> CheckResult:
    """``result``, once each of its findings is shown to carry a code of the check's catalogue."""
    catalogue = {code.code for code in ENVIRONMENT.codes}
    assert [(f.title, f.code) for f in result.findings if f.code not in catalogue] == []
    return result


def environment(stack: Stack, config: Config | None = None) -> CheckResult:
    return coded(check(stack, "environment", config))


def test_the_catalogue_names_each_code_the_check_records_once() -> None:
    used = set(re.findall(r'"(ENV\d{3})"', inspect.getsource(environment_body)))
    declared = [code.code for code in ENVIRONMENT.codes]
    assert declared == [f"ENV{n:03d}" for n in range(1, len(declared) + 1)]
    assert used == set(declared)


def secret_free(stack: Stack, *texts: str) -> None:
    for text in texts:
        assert stack.emulator.client_secret not in text
        assert stack.emulator.scim_token() not in text


def test_clean_setup_passes_and_shows_no_secret(stack: Stack) -> None:
    report = run(stack, None, "environment")
    result = coded(result_of(report, "environment"))
    assert result.status is Status.PASS, titles(result)
    assert "Client-credentials exchange succeeds" in titles(result)
    assert "Directory sync is enabled for the organisation" in titles(result)
    suffix = finding(result, "not about to expire").observed
    assert suffix.startswith("…") and stack.emulator.scim_token()[-4:] in suffix
    secret_free(stack, raw_text(report))


def test_local_url_when_production_is_expected_fails(stack: Stack) -> None:
    result = environment(stack, stack.config(scalekit={"expect": "production"}))
    assert result.status is Status.FAIL
    failed = finding(result, "not a production environment")
    assert failed.status is Status.FAIL and failed.severity is Severity.CRITICAL
    assert "localhost" in failed.observed
    # Everything else about the environment still works and is still reported.
    assert finding(result, "exchange succeeds").status is Status.PASS


def test_development_url_when_production_is_expected_fails(stack: Stack) -> None:
    # The config names a *.scalekit.dev environment; the connection itself is made to the
    # emulator (nothing may leave loopback), so only the URL rule decides.
    emu = stack.emulator
    config = stack.config(
        scalekit={"environment_url": "https://acme-dev.scalekit.dev", "expect": "production"}
    )
    real = stack.config().scalekit

    async def gateway() -> ScalekitGateway:
        return await connect(real, TlsSettings(ca_bundle=str(emu.ca_path)))

    options = RunOptions(only=("environment",), ca_bundle=stack.ca_path)
    report = asyncio.run(run_suite(config, options, scalekit_factory=gateway))
    result = coded(result_of(report, "environment"))
    assert result.status is Status.FAIL
    failed = finding(result, "not a production environment")
    assert "acme-dev.scalekit.dev is a *.scalekit.dev host" in failed.observed


def test_wrong_client_secret_fails_with_the_servers_reason(stack: Stack) -> None:
    wrong = "wrong_secret_0123456789abcdef"
    report = run(stack, stack.config(scalekit={"client_secret": wrong}), "environment")
    result = coded(result_of(report, "environment"))
    assert result.status is Status.FAIL
    refused = finding(result, "Client credentials are refused")
    assert "invalid_client" in refused.observed or "client" in refused.observed.lower()
    assert "localhost" in refused.observed
    # Nothing after the exchange is claimed.
    assert not [t for t in titles(result) if "organisation" in t.lower()]
    text = raw_text(report)
    assert wrong not in text
    secret_free(stack, text)


def test_placeholder_secret_fails_without_trying_it(stack: Stack) -> None:
    result = environment(stack, stack.config(scalekit={"client_secret": "changeme"}))
    assert result.status is Status.FAIL
    assert "placeholder" in finding(result, "is not a real secret").observed
    assert finding(result, "not attempted").status is Status.SKIP
    assert "changeme" not in json.dumps([f.observed for f in result.findings])


def test_unreachable_environment_is_an_error_naming_host_and_cause(stack: Stack) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = stack.config(scalekit={"environment_url": f"https://127.0.0.1:{port}"})
    result = environment(stack, config)
    assert result.status is Status.ERROR
    error = finding(result, "could not be reached")
    assert f"127.0.0.1:{port}" in error.observed
    assert "refused" in error.observed


def test_malformed_values_are_explained(stack: Stack) -> None:
    config = stack.config(
        scalekit={"environment_url": "http://localhost/api", "client_id": "58327482062864390"}
    )
    result = environment(stack, config)
    assert result.status is Status.FAIL
    url = finding(result, "SCALEKIT_ENVIRONMENT_URL is malformed")
    assert "https://" in url.observed and "path" in url.observed
    assert "skc_" in finding(result, "SCALEKIT_CLIENT_ID is malformed").observed


def test_organisation_by_external_id_and_unknown_organisation(stack: Stack) -> None:
    emu = stack.emulator
    by_external = stack.config(
        scalekit={"organization_id": None, "organization_external_id": "tenant-acme"}
    )
    result = environment(stack, by_external)
    assert result.status is Status.PASS, titles(result)
    assert "external id 'tenant-acme'" in finding(result, "organisation is readable").observed

    unknown = stack.config(scalekit={"organization_id": "org_99999999999999999"})
    result = environment(stack, unknown)
    assert result.status is Status.FAIL
    assert "does not exist" in finding(result, "not readable").observed
    assert emu.organization_id not in finding(result, "not readable").observed


def seed_tweak(**directory_changes: object) -> object:
    seed = default_seed()
    directory = seed.directories[0].model_copy(update=directory_changes)
    return seed.model_copy(update={"directories": [directory]})


def test_organisation_without_dir_sync_fails(stack_factory: StackFactory) -> None:
    seed = default_seed()
    org = seed.organizations[0].model_copy(update={"features": {"dir_sync": False, "sso": True}})
    with stack_factory(seed=seed.model_copy(update={"organizations": [org]})) as stack:
        result = environment(stack)
    assert result.status is Status.FAIL
    assert finding(result, "not enabled").observed == "dir_sync disabled"


def _secret(**changes: object) -> SecretSeed:
    now = dt.datetime.now(dt.UTC)
    base = {
        "id": "dirsecret_1",
        "create_time": now - dt.timedelta(days=30),
        "expire_time": now + dt.timedelta(days=200),
        "last_used_time": now - dt.timedelta(hours=1),
    }
    return SecretSeed(**{**base, **changes})  # type: ignore[arg-type]


def test_directory_secret_expiring_in_three_days_fails(stack_factory: StackFactory) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    with stack_factory(seed=seed_tweak(secrets=[_secret(expire_time=soon)])) as stack:
        result = environment(stack)
    assert result.status is Status.FAIL
    failed = finding(result, "expires in")
    assert failed.status is Status.FAIL
    assert "3.0 days" in failed.title or "2.9 days" in failed.title


def test_directory_secret_expiring_within_the_warn_threshold_warns(
    stack_factory: StackFactory,
) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    with stack_factory(seed=seed_tweak(secrets=[_secret(expire_time=soon)])) as stack:
        result = environment(stack)
    assert finding(result, "expires in").status is Status.WARN
    assert result.status is Status.WARN, titles(result)


def test_expiry_threshold_is_an_option(stack_factory: StackFactory) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    with stack_factory(seed=seed_tweak(secrets=[_secret(expire_time=soon)])) as stack:
        config = stack.config(checks={"environment": {"options": {"secret_expiry_warn_days": 2}}})
        result = environment(stack, config)
    assert result.status is Status.PASS, titles(result)


def test_one_long_lived_active_secret_is_enough(stack_factory: StackFactory) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    secrets = [_secret(expire_time=soon), _secret(id="dirsecret_2", suffix="zz99")]
    with stack_factory(seed=seed_tweak(secrets=secrets)) as stack:
        result = environment(stack)
    assert finding(result, "not about to expire").status is Status.PASS


def test_directory_never_used_warns(stack_factory: StackFactory) -> None:
    with stack_factory(seed=seed_tweak(secrets=[_secret(last_used_time=None)])) as stack:
        result = environment(stack)
    assert result.status is Status.WARN
    assert finding(result, "never been used").status is Status.WARN


def test_disabled_directory_and_no_active_secret_fail(stack_factory: StackFactory) -> None:
    seed = seed_tweak(enabled=False, secrets=[_secret(status="INACTIVE")])
    with stack_factory(seed=seed) as stack:
        result = environment(stack)
    assert result.status is Status.FAIL
    assert finding(result, "Directory is disabled").status is Status.FAIL
    assert finding(result, "no active SCIM secret").status is Status.FAIL


def loaded(stack: Stack, **scalekit: object) -> Config:
    """The stack's config as the CLI gets it: YAML through the loader (which applies the
    ``SCALEKIT_*`` fallbacks); ``scalekit`` keys replace the file's (None leaves one out)."""
    raw = stack.raw_config(env_refs=False)
    for key, value in scalekit.items():
        if value is None:
            raw["scalekit"].pop(key, None)
        else:
            raw["scalekit"][key] = value
    return parse_config(yaml.safe_dump(raw), path="readiness.yaml")


def test_credentials_from_scalekit_variables_are_used(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALEKIT_CLIENT_SECRET", stack.emulator.client_secret)
    monkeypatch.setenv("SCALEKIT_CLIENT_ID", stack.emulator.client_id)
    config = loaded(stack, client_secret=None, client_id="")
    result = environment(stack, config)
    assert result.status is Status.PASS, [(f.status, f.title, f.observed) for f in result.findings]
    assert finding(result, "SCALEKIT_CLIENT_SECRET is set").observed == (
        "from $SCALEKIT_CLIENT_SECRET (value not shown)"
    )
    assert "from $SCALEKIT_CLIENT_ID" in finding(result, "SCALEKIT_CLIENT_ID is set").observed


def test_a_value_in_the_file_wins_over_its_variable(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALEKIT_CLIENT_ID", "skc_99999999999999999")
    result = environment(stack, loaded(stack))
    assert result.status is Status.PASS, [(f.status, f.title, f.observed) for f in result.findings]
    observed = finding(result, "SCALEKIT_CLIENT_ID is set").observed
    assert observed == f"{stack.emulator.client_id} (from scalekit.client_id)"


def test_the_check_reads_no_variable_itself(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # A config not made by the loader has no fallbacks applied: the loader is the one place.
    monkeypatch.setenv("SCALEKIT_CLIENT_SECRET", stack.emulator.client_secret)
    result = environment(stack, stack.config(scalekit={"client_secret": None}))
    assert result.status is Status.FAIL
    assert finding(result, "SCALEKIT_CLIENT_SECRET is not set").status is Status.FAIL


def test_a_missing_variable_names_both_places(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCALEKIT_CLIENT_SECRET", raising=False)
    result = environment(stack, stack.config(scalekit={"client_secret": None}))
    assert result.status is Status.FAIL
    missing = finding(result, "SCALEKIT_CLIENT_SECRET is not set")
    assert missing.observed == ("neither scalekit.client_secret nor $SCALEKIT_CLIENT_SECRET is set")


def test_a_mistyped_option_is_one_clear_error(stack: Stack) -> None:
    config = stack.config(
        checks={"environment": {"options": {"secret_expiry_warn_days": "14 days"}}}
    )
    # The runner records the option error (the check never starts), so no ENV code is due.
    result = check(stack, "environment", config)
    assert result.status is Status.ERROR
    (only,) = result.findings
    assert "secret_expiry_warn_days must be a number" in only.title
    assert "internal error" not in only.title


def test_a_production_url_when_development_is_expected_warns(stack: Stack) -> None:
    emu = stack.emulator
    config = stack.config(scalekit={"environment_url": "https://acme.scalekit.com"})
    real = stack.config().scalekit

    async def gateway() -> ScalekitGateway:
        return await connect(real, TlsSettings(ca_bundle=stack.ca_path))

    options = RunOptions(only=("environment",), ca_bundle=stack.ca_path)
    report = asyncio.run(run_suite(config, options, scalekit_factory=gateway))
    result = coded(result_of(report, "environment"))
    assert emu.env_url not in raw_text(report)
    assert result.status is Status.WARN
    assert finding(result, "development was expected").status is Status.WARN


def test_a_hung_scalekit_is_an_error_within_the_call_bound(stack: Stack) -> None:
    stack.emulator.delays["GetOrganization"] = 30.0
    try:
        config = stack.config(scalekit={"timeout_s": 0.5})
        result = environment(stack, config)
    finally:
        stack.emulator.delays.clear()
    assert result.status is Status.ERROR
    error = finding(result, "Organisation could not be read")
    assert "within 0.5 s" in error.observed
