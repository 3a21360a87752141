"""`config schema`: the JSON Schema of readiness.yaml, generated from the config models,
accepts the shipped example and starter configs and refuses what the loader refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from scim_readiness.cli.main import main
from scim_readiness.engine.config_file import load_config
from scim_readiness.engine.config_schema import config_schema
from scim_readiness.engine.registry import discover

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "src" / "scim_readiness" / "starter.yaml"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return config_schema([s.info.id for s in discover()])


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(schema: dict[str, Any], data: Any) -> list[str]:
    return [e.message for e in validator(schema).iter_errors(data)]


@pytest.mark.parametrize("path", [ROOT / "readiness.example.yaml", STARTER], ids=lambda p: p.name)
def test_shipped_configs_are_valid_against_the_schema(schema: dict[str, Any], path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert errors(schema, data) == []


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"scalekit": {"enviroment_url": "https://x"}}, "enviroment_url"),
        ({"webhook": {"latency_budget_s": -1}}, "-1"),
        ({"scalekit": {"expect": "prod"}}, "'prod'"),
        ({"checks": {"no-such-check": {}}}, "no-such-check"),
        ({"checks": {"environment": {"enabeld": False}}}, "enabeld"),
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(
    schema: dict[str, Any], data: dict[str, Any], problem: str, tmp_path: Path
) -> None:
    found = errors(schema, data)
    assert found and any(problem in message for message in found), found
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(Exception, match="bad.yaml"):
        load_config(path)


def test_env_references_are_valid_wherever_a_scalar_is(schema: dict[str, Any]) -> None:
    data = {
        "webhook": {"latency_budget_s": "${BUDGET:-3}"},
        "checks": {"allow_mutation": "${ALLOW}"},
    }
    assert errors(schema, data) == []
    assert errors(schema, {"webhook": {"latency_budget_s": "three"}})


def test_option_schemas_plug_into_each_check(schema: dict[str, Any]) -> None:
    typed = config_schema(
        ["environment"],
        {"environment": {"type": "object", "properties": {"days": {"type": "integer"}}}},
    )
    ok = {"checks": {"environment": {"options": {"days": 3}}}}
    assert errors(typed, ok) == []
    assert errors(typed, {"checks": {"environment": {"options": {"days": "x"}}}})
    # Without a declared options schema the options stay free-form.
    assert errors(schema, {"checks": {"environment": {"options": {"anything": [1]}}}}) == []


def test_config_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$schema"].endswith("2020-12/schema")
    assert "webhook-signature" in printed["$defs"]["ChecksSection"]["properties"]


def test_config_init_writes_a_modeline_and_the_schema_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "readiness.yaml"
    assert main(["config", "init", str(path)]) == 0
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=readiness.schema.json"
    written = json.loads((tmp_path / "readiness.schema.json").read_text(encoding="utf-8"))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert errors(written, data) == []
    load_config(path)  # the modeline is a comment to the loader
