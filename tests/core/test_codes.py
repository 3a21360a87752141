"""Finding codes: registration refuses a catalogue that could make two findings
indistinguishable, and the look-up explain and waivers use is case-insensitive."""

from __future__ import annotations

import pytest

from scim_readiness.api import CheckInfo, FindingCode
from scim_readiness.engine.codes import (
    ENGINE_CODES,
    catalogue,
    find_code,
    unknown_code_hint,
    validate_catalogues,
)
from scim_readiness.engine.registry import discover
from scim_readiness.errors import PluginError


def info(check_id: str, *codes: str) -> CheckInfo:
    entries = tuple(FindingCode(c, f"tests {c}", "why", "fix") for c in codes)
    return CheckInfo(id=check_id, title=check_id, checklist_item=0, codes=entries)


@pytest.mark.parametrize(
    ("infos", "message"),
    [
        ([info("a", "AB001")], "'AB001' is not three capital letters and three digits"),
        ([info("a", "abc001")], "'abc001' is not three capital letters"),
        ([info("a", "ABC001", "ABC001")], "ABC001 is declared twice"),
        ([info("a", "ABC001", "ABD002")], "mix the prefixes ABC, ABD"),
        ([info("a", "ABC001"), info("b", "ABC002")], "the code prefix ABC already belongs to a"),
        ([info("a", "RUN001")], "the code prefix RUN already belongs to (engine)"),
    ],
)
def test_a_bad_catalogue_is_a_plugin_error(infos: list[CheckInfo], message: str) -> None:
    with pytest.raises(PluginError) as caught:
        validate_catalogues(infos)
    assert message in caught.value.message


def test_good_catalogues_and_empty_ones_pass() -> None:
    validate_catalogues([info("a", "ABC001", "ABC002"), info("b", "XYZ001"), info("c")])


def test_the_builtin_catalogues_are_valid_and_the_engine_codes_are_numbered_in_order() -> None:
    validate_catalogues(spec.info for spec in discover())
    assert [c.code for c in ENGINE_CODES] == [f"RUN{n:03}" for n in range(1, len(ENGINE_CODES) + 1)]


def test_codes_are_found_whatever_their_case_and_a_typo_gets_a_suggestion() -> None:
    entries = catalogue([info("a", "ABC001", "ABC002")])
    found = find_code(entries, " abc002 ")
    assert found is not None and (found.owner, found.code.code) == ("a", "ABC002")
    assert find_code(entries, "RUN006") is not None
    assert find_code(entries, "ABC009") is None
    assert "did you mean 'ABC001'" in unknown_code_hint(entries, "ABC01")


def test_the_readme_s_delivery_semantics_table_names_each_scenario_by_its_code() -> None:
    """The README explains delivery-semantics' findings in a table with their codes; each
    row's finding must be the start of that code's catalogue title, so the two cannot drift."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (DLV\d{3}(?:, DLV\d{3})*) \| ([^|]+) \|", readme, re.M)
    infos = [spec.info for spec in discover()]
    titles = {entry.code.code: entry.code.title for entry in catalogue(infos)}
    assert len(rows) >= 10
    for codes, finding in rows:
        for code in codes.split(", "):
            assert titles[code].lower().startswith(finding.strip().lower()), (code, finding)
