"""Typed check options: declared per check, validated when the config loads, documented from
the models.

The CLI tests load configs through the real commands with the built-in checks (and a fake
third-party distribution installed with ``plugin_site``), so what is tested is what a release
engineer sees: exit 2 and one message naming the file, line and key.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest

from scim_readiness.api import CheckInfo, CheckOptions, FindingRecorder, option
from scim_readiness.cli.main import main
from scim_readiness.config import CheckSettings, Config
from scim_readiness.engine.registry import builtin_specs
from scim_readiness.errors import ConfigError, PluginError
from scim_readiness.plugin.context import CheckContext, SharedClients
from scim_readiness.plugin.identities import TestIdentities
from scim_readiness.plugin.ledger import Ledger
from scim_readiness.plugin.options import EventOptions, OptionError, RoundTripOptions

from .conftest import write_config

ROOT = Path(__file__).resolve().parents[2]

BASE = """
scalekit:
  expect: staging
  environment_url: https://acme-staging.scalekit.dev
  client_secret: ${SCALEKIT_CLIENT_SECRET:-}
checks:
"""

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def config_with(tmp_path: Path, check_id: str, options: str) -> Path:
    """A config whose ``checks.<check_id>.options`` block is ``options`` (YAML lines)."""
    block = "".join(f"      {line}\n" for line in options.strip().splitlines())
    text = BASE.lstrip() + f"  {check_id}:\n    options:\n{block}"
    return write_config(tmp_path, text)


# ------------------------------------------------------------------ built-in checks, the CLI


@pytest.mark.parametrize("command", [("config", "validate"), ("run", "--read-only")])
def test_a_misspelt_option_is_exit_2_with_did_you_mean(
    cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    config_with(tmp_path, "environment", "secret_expiry_warn_dayz: 5")
    code, out, err = cli(*command, "-c", "readiness.yaml")
    assert code == 2, out + err
    assert err.splitlines()[:2] == [
        "error: readiness.yaml:8 (checks.environment.options.secret_expiry_warn_dayz): "
        "unknown option 'secret_expiry_warn_dayz' (did you mean 'secret_expiry_warn_days'?)",
        "  hint: options here: secret_expiry_warn_days, secret_unused_warn_days",
    ]


@pytest.mark.parametrize(
    ("check_id", "options", "key", "message"),
    [
        (
            "environment",
            "secret_expiry_warn_days: 14 days",
            "secret_expiry_warn_days",
            "option secret_expiry_warn_days must be a number ≥ 0, got '14 days' (a string)",
        ),
        (
            "environment",
            "secret_unused_warn_days: -1",
            "secret_unused_warn_days",
            "option secret_unused_warn_days must be a number ≥ 0, got -1 (a number)",
        ),
        (
            "webhook-endpoint",
            "deliveries: 2.5",
            "deliveries",
            "option deliveries must be a whole number ≥ 1, got 2.5 (a number)",
        ),
        (
            "webhook-endpoint",
            "burst: {events: 0}",
            "burst",
            "burst.events must be from 1 to 100,000, got 0",
        ),
        (
            "user-lifecycle",
            "mode: ldap",
            "mode",
            "option mode must be 'events' or 'scim', got 'ldap' (a string)",
        ),
        (
            "group-roles",
            "step_timeout_s: 601",
            "step_timeout_s",
            "option step_timeout_s must be a number > 0 and ≤ 600, got 601 (a number)",
        ),
        (
            "data-model",
            "compare_roles: yes please",
            "compare_roles",
            "option compare_roles must be true or false, got 'yes please' (a string)",
        ),
        (
            "data-model",
            "progress: sometimes",
            "progress",
            "option progress must be true or false or 'auto', got 'sometimes' (a string)",
        ),
        (
            "admin-portal",
            "organization_path: ''",
            "organization_path",
            "option organization_path must be a non-empty string, got '' (a string)",
        ),
        (
            "bad-data",
            "environment_id: 42",
            "environment_id",
            "option environment_id must be a non-empty string, got 42 (a number)",
        ),
    ],
)
def test_a_mistyped_option_is_exit_2_naming_the_key(
    cli: Cli, tmp_path: Path, check_id: str, options: str, key: str, message: str
) -> None:
    config_with(tmp_path, check_id, options)
    code, out, err = cli("config", "validate", "-c", "readiness.yaml")
    assert code == 2, out + err
    first = err.splitlines()[0]
    assert first == f"error: readiness.yaml:8 (checks.{check_id}.options.{key}): {message}"


def test_options_for_a_check_that_does_not_exist_stay_an_unknown_check(
    cli: Cli, tmp_path: Path
) -> None:
    config_with(tmp_path, "enviroment", "secret_expiry_warn_days: 5")
    code, _, err = cli("config", "validate", "-c", "readiness.yaml")
    assert code == 2
    assert "unknown check 'enviroment' (did you mean 'environment'?)" in err


def test_valid_options_of_every_builtin_check_validate(cli: Cli, tmp_path: Path) -> None:
    text = BASE.lstrip() + "".join(
        f"  {info.id}:\n    options:\n"
        + "".join(f"      {spec.name}: {_yaml(spec.default)}\n" for spec in info.options.specs())
        for info in (spec.info for spec in builtin_specs())
        if info.options is not None
    )
    write_config(tmp_path, text)
    code, out, err = cli("config", "validate", "-c", "readiness.yaml")
    assert code == 0, err
    assert "valid" in out


def _yaml(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# ------------------------------------------------------------------ the model itself


class Sample(EventOptions):
    days: float = option(default=14, description="days", ge=0)
    count: int = option(default=3, description="how many", ge=1)
    mode: Literal["a", "b"] = option(default="a", description="mode")
    progress: bool | Literal["auto"] = option(default="auto", description="progress")


def test_defaults_are_applied_and_typed() -> None:
    parsed = Sample.parse({})
    assert parsed == Sample(days=14.0, count=3, mode="a", progress="auto", environment_id=None)
    assert isinstance(parsed.days, float)
    assert Sample.parse({"count": 7, "days": 1}).count == 7
    assert Sample.parse({"days": 1}).days == 1.0 and isinstance(
        Sample.parse({"days": 1}).days, float
    )
    assert Sample.parse({"progress": False}).progress is False


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ({"dayz": 1}, ("dayz",), "unknown option 'dayz' (did you mean 'days'?)"),
        ({"days": True}, ("days",), "option days must be a number ≥ 0, got true (a boolean)"),
        ({"count": 1.0}, ("count",), "option count must be a whole number ≥ 1, got 1.0"),
        ({"mode": "A"}, ("mode",), "option mode must be 'a' or 'b', got 'A' (a string)"),
        ({"progress": 1}, ("progress",), "must be true or false or 'auto', got 1 (a number)"),
        ({"environment_id": ""}, ("environment_id",), "a non-empty string, got ''"),
    ],
)
def test_a_value_that_does_not_fit_names_the_option(
    raw: dict[str, Any], path: tuple[str, ...], message: str
) -> None:
    with pytest.raises(OptionError) as caught:
        Sample.parse(raw, key="checks.x.options")
    assert caught.value.option_path == path
    assert message in caught.value.option_message
    assert caught.value.key == f"checks.x.options.{path[0]}"
    assert isinstance(caught.value, ConfigError)


def test_a_field_without_option_is_an_error_when_the_model_is_defined() -> None:
    with pytest.raises(PluginError, match=r"Careless.days is not declared with option\(\)"):

        class Careless(CheckOptions):
            days: float = 14


def test_a_model_is_read_only_and_compares_by_value() -> None:
    parsed = Sample.parse({"count": 4})
    assert (
        parsed == Sample(count=4) and parsed != Sample() and hash(parsed) == hash(Sample(count=4))
    )
    assert repr(Sample()) == (
        "Sample(environment_id=None, days=14, count=3, mode='a', progress='auto')"
    )
    with pytest.raises(AttributeError, match="read-only"):
        parsed.count = 5  # type: ignore[misc]
    with pytest.raises(TypeError, match="Sample has no option cuont"):
        Sample(cuont=4)  # type: ignore[call-arg]


def test_an_unsupported_type_needs_parse() -> None:
    class Odd(CheckOptions):
        hosts: tuple[str, ...] = option(default=(), description="hosts")

    with pytest.raises(PluginError, match="not supported"):
        Odd.parse({"hosts": ["a"]})


def test_parse_turns_the_raw_value_into_the_field() -> None:
    def two_numbers(raw: object) -> tuple[int, int]:
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError(f"pair must be two numbers, got {raw!r}")
        return (int(raw[0]), int(raw[1]))

    class WithPair(CheckOptions):
        pair: tuple[int, int] | None = option(default=None, description="p", parse=two_numbers)

    assert WithPair.parse({"pair": [1, 2]}).pair == (1, 2)
    with pytest.raises(OptionError, match="pair must be two numbers, got 3"):
        WithPair.parse({"pair": 3})


@dataclass
class _Info:
    id: str


@dataclass
class _Settings:
    options: dict[str, Any]


@dataclass
class _Running:
    """What ``CheckOptions.of`` reads from a context."""

    info: _Info
    settings: _Settings
    options: CheckOptions


def test_a_shared_group_reads_its_own_fields_for_a_check_that_does_not_declare_it() -> None:
    ctx = _Running(_Info("third"), _Settings({"mode": "scim", "other": 1}), CheckOptions())
    assert RoundTripOptions.of(ctx).mode == "scim"
    assert RoundTripOptions.of(ctx).step_timeout_s == 30.0
    declared = _Running(_Info("x"), _Settings({}), Sample.parse({"count": 5}))
    assert Sample.of(declared).count == 5
    assert EventOptions.of(declared) is declared.options


# ------------------------------------------------------------------ a third-party check

GREETER = """
    from __future__ import annotations
    from typing import Literal
    from scim_readiness.api import CheckContext, CheckInfo, CheckOptions, option

    class Options(CheckOptions):
        greeting: str = option(default="hello", description="what to say")
        repeat: int = option(default=2, description="how often", ge=1)
        tone: Literal["calm", "loud"] = option(default="calm", description="how")

    CHECK = CheckInfo(id="greeter", title="Greets", checklist_item=0, options=Options)

    async def run(ctx: CheckContext) -> None:
        opts = Options.of(ctx)
        text = " ".join([opts.greeting] * opts.repeat)
        ctx.findings.passed(text.upper() if opts.tone == "loud" else text)
"""
UNTYPED = """
    from scim_readiness.api import CheckInfo

    CHECK = CheckInfo(id="untyped", title="Reads options as configured", checklist_item=0)

    async def run(ctx):
        ctx.findings.passed(f"anything={ctx.option('anything', 'unset')}")
"""


def titles_of(out: str, check_id: str) -> list[str]:
    (result,) = [c for c in json.loads(out)["checks"] if c["id"] == check_id]
    return [finding["title"] for finding in result["findings"]]


def test_a_third_party_check_with_its_own_options_works_end_to_end(
    cli: Cli, tmp_path: Path, plugin_site: Callable[..., Path]
) -> None:
    plugin_site({"greeter": GREETER, "untyped": UNTYPED})
    write_config(tmp_path, BASE.lstrip() + "  greeter: {}\n")
    code, out, err = cli("run", "--format", "json", "--only", "greeter")
    assert code == 0, err
    assert titles_of(out, "greeter") == ["hello hello"]  # the defaults

    config_with(tmp_path, "greeter", "greeting: hi\nrepeat: 3\ntone: loud")
    code, out, err = cli("run", "--format", "json", "--only", "greeter")
    assert code == 0, err
    assert titles_of(out, "greeter") == ["HI HI HI"]

    config_with(tmp_path, "greeter", "greeting: hi\nrepet: 3")
    code, _, err = cli("config", "validate", "-c", "readiness.yaml")
    assert code == 2
    assert err.splitlines()[0] == (
        "error: readiness.yaml:9 (checks.greeter.options.repet): unknown option 'repet' "
        "(did you mean 'repeat'?)"
    )

    config_with(tmp_path, "greeter", "repeat: 0")
    code, _, err = cli("run", "--only", "greeter")
    assert code == 2
    assert "(checks.greeter.options.repeat): option repeat must be a whole number ≥ 1" in err

    # A check that declares no model keeps receiving its options as configured.
    config_with(tmp_path, "untyped", "anything: [1, 2]")
    code, out, err = cli("run", "--format", "json", "--only", "untyped")
    assert code == 0, err
    assert titles_of(out, "untyped") == ["anything=[1, 2]"]


# ------------------------------------------------------------------ the README table


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "readme_options", ROOT / "tools/readme_options.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_options_table_is_generated_from_the_models() -> None:
    tool = _tool()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = tool.builtin_table()
    assert tool.with_table(readme, table) == readme, "run python tools/readme_options.py"
    # Every declared option of every built-in check is in it, with its default.
    for info in (spec.info for spec in builtin_specs()):
        for option_spec in info.options.specs() if info.options is not None else ():
            assert f"| `{info.id}` | `{option_spec.name}` |" in table


def test_the_tool_rewrites_a_stale_table() -> None:
    tool = _tool()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stale = readme.replace("| `14` |", "| `15` |", 1)
    assert stale != readme
    assert tool.with_table(stale, tool.builtin_table()) == readme


def _context(info: CheckInfo, options: dict[str, Any], tmp_path: Path) -> CheckContext:
    from scim_readiness.clients.http import TlsSettings

    config = Config.model_validate({})
    return CheckContext(
        info=info,
        config=config,
        settings=CheckSettings(options=options),
        run_id="r1",
        read_only=True,
        findings=FindingRecorder(),
        ledger=Ledger(tmp_path / "ledger.jsonl", "r1"),
        identities=TestIdentities("r1"),
        shared=SharedClients(config, TlsSettings()),
    )


def test_the_context_parses_the_declared_model_and_leaves_undeclared_options_alone(
    tmp_path: Path,
) -> None:
    typed = CheckInfo(id="typed", title="t", checklist_item=0, options=Sample)
    ctx = _context(typed, {"count": 9}, tmp_path)
    assert Sample.of(ctx).count == 9 and ctx.option("count") == 9
    assert EventOptions.of(ctx).environment_id is None
    unknown = r"^checks.typed.options.cont: unknown option 'cont' \(did you mean 'count'\?\)"
    with pytest.raises(ConfigError, match=unknown):
        _ = _context(typed, {"cont": 9}, tmp_path).options

    # A check (or the cleanup sweep's stand-in) that declares no model: options unchecked,
    # and a shared group still reads its own fields from them.
    bare = CheckInfo(id="bare", title="b", checklist_item=0)
    ctx = _context(bare, {"mode": "scim", "free": [1]}, tmp_path)
    assert ctx.option("free") == [1] and ctx.option("missing", 5) == 5
    assert RoundTripOptions.of(ctx).mode == "scim"
