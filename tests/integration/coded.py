"""What every report must satisfy once a check declares codes: each finding it records carries
a code of its own catalogue, or one of the engine's (RUN), so waivers and diffs can name it."""

from __future__ import annotations

from collections.abc import Iterable

from scim_readiness.engine.codes import ENGINE_CODES
from scim_readiness.engine.registry import discover
from scim_readiness.model import Report

ENGINE = frozenset(entry.code for entry in ENGINE_CODES)


def catalogues() -> dict[str, frozenset[str]]:
    """Each check's declared codes, by check id."""
    return {spec.info.id: frozenset(c.code for c in spec.info.codes) for spec in discover()}


def uncoded(reports: Iterable[Report], check_id: str) -> list[str]:
    """The findings of ``check_id`` whose code is neither its own nor the engine's."""
    allowed = catalogues()[check_id] | ENGINE
    return [
        f"{report.run_id} {check.id}: [{f.status.value}] {f.code or '(no code)'} {f.title}"
        for report in reports
        for check in report.checks
        if check.id == check_id
        for f in check.findings
        if f.code not in allowed
    ]


def assert_coded(report: Report) -> None:
    """Every finding of every check that declares codes is coded from its catalogue."""
    coded = [check_id for check_id, codes in catalogues().items() if codes]
    missing = [line for check_id in coded for line in uncoded([report], check_id)]
    assert not missing, missing
