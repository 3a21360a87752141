"""`scim-readiness explain CODE` and docs/codes.md, both from the same catalogues."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from scim_readiness.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_explain_prints_what_is_tested_why_it_matters_how_to_fix_and_the_docs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explain", "adm007"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ADM007"
    assert out[1] == "  check:  admin-portal (Admin portal configuration)"
    labels = [line.split(":")[0].strip() for line in out[1:]]
    assert labels == ["check", "tests", "why", "fix", "docs"]
    assert "refuses an unauthenticated caller" in out[2]
    assert out[-1].endswith("https://docs.scalekit.com/guides/admin-portal/#embed-the-admin-portal")


def test_explain_knows_the_engine_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "RUN006"]) == 0
    out = capsys.readouterr().out
    assert "check:  the engine (any check)" in out
    assert "Blocked by a failed prerequisite" in out


def test_an_unknown_code_exits_2_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "ADM0077"]) == 2
    err = capsys.readouterr().err
    assert "unknown finding code 'ADM0077' (did you mean 'ADM007'?)" in err
    assert "Traceback" not in err


def test_explain_without_a_code_lists_every_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    codes = [line.split()[0] for line in lines]
    assert "DLV013" in codes and "ADM001" in codes and codes[-1] == "RUN016"
    assert len(codes) == len(set(codes))


def test_docs_codes_md_is_generated_from_the_catalogues() -> None:
    spec = importlib.util.spec_from_file_location("codes_doc", ROOT / "tools/codes_doc.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    page = (ROOT / "docs/codes.md").read_text(encoding="utf-8")
    assert tool.builtin_page() == page, "run python tools/codes_doc.py"
    assert "| ADM005 | The portal allows framing by the app's origin" in page


def test_the_readme_links_the_catalogue() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/codes.md)" in readme
    assert "## Finding codes and waivers" in readme
