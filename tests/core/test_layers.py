"""The package's layers hold and it has no import cycles, as installed (checks included)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_layers", ROOT / "tools" / "check_layers.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_layers"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return _tool()


def test_contracts_kept_and_no_cycles(tool: ModuleType, tmp_path: Path) -> None:
    staged = tool.stage(tmp_path)
    code, said = tool.check(staged)
    assert code == 0, said
    assert "2 kept, 0 broken" in said
    assert "no import cycles" in said


def test_checks_are_part_of_the_graph(tool: ModuleType, tmp_path: Path) -> None:
    # The built-in checks live outside src/; a staging that left them out would keep every
    # contract trivially.
    staged = tool.stage(tmp_path)
    assert (staged / "scim_readiness" / "checks" / "bad_data" / "check.py").is_file()
    assert (staged / "scim_readiness" / "checks" / "data_model" / "reconcile.py").is_file()


def test_an_upward_import_breaks_the_layers(tool: ModuleType, tmp_path: Path) -> None:
    staged = tool.stage(tmp_path)
    probe = staged / "scim_readiness" / "clients" / "probe.py"
    probe.write_text(probe.read_text() + "\nfrom scim_readiness.engine import runner  # noqa\n")
    code, said = tool.check(staged)
    assert code == 1
    assert "BROKEN" in said or "broken" in said


def test_a_type_only_cycle_is_found(tool: ModuleType, tmp_path: Path) -> None:
    staged = tool.stage(tmp_path)
    errors = staged / "scim_readiness" / "errors.py"
    errors.write_text(
        errors.read_text() + "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from scim_readiness.model import Status  # noqa\n"
    )
    code, said = tool.check(staged)
    assert code == 1
    assert "import cycle: scim_readiness." in said


def test_a_check_importing_devstack_is_refused(tool: ModuleType, tmp_path: Path) -> None:
    staged = tool.stage(tmp_path)
    check = staged / "scim_readiness" / "checks" / "environment" / "check.py"
    check.write_text(check.read_text() + "\nimport scim_readiness.devstack.tls_ca  # noqa\n")
    code, said = tool.check(staged)
    assert code == 1
