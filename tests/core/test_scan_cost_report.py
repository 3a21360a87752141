"""A list-only probe's scan cost (each check's ``probe_scan`` metrics) shows in the text
reports, summed and per check; a probe that never scanned adds no line."""

from __future__ import annotations

import pytest

from scim_readiness.model import CheckResult, Finding, Report, Status
from scim_readiness.reports import Format, renderer
from scim_readiness.reports.json_report import to_dict
from scim_readiness.reports.load import from_dict


def _check(check_id: str, **metrics: object) -> CheckResult:
    return CheckResult(
        id=check_id,
        title=check_id,
        checklist_item=4,
        status=Status.PASS,
        findings=(Finding(title="observed", status=Status.PASS),),
        duration_s=1.0,
        metrics=metrics,
    )


def _report(*checks: CheckResult) -> Report:
    return Report(
        run_id="sr0123456789",
        tool_version="0.1.0",
        target="https://acme.scalekit.com",
        started_at="2026-01-31T12:00:00Z",
        duration_s=3.5,
        checks=checks,
    )


SCANNED = _report(
    _check("environment"),
    _check("user-lifecycle", probe_scan={"lookups": 1200, "users_read": 40_500, "pages": 810}),
    _check("bad-data", probe_scan={"lookups": 3, "users_read": 99, "pages": 2}),
    # A check whose metered probe never had to scan: nothing to add.
    _check("group-roles", probe_scan={"lookups": 0, "users_read": 0, "pages": 0}),
)
LINE = (
    "Probe scans: 1,203 lookups were answered by reading the user list, 40,599 users read in "
    "812 pages (user-lifecycle 1,200 lookups, 40,500 users; bad-data 3 lookups, 99 users)"
)


@pytest.mark.parametrize("fmt", [Format.RICH, Format.PLAIN, Format.MARKDOWN])
def test_the_scan_cost_is_stated_summed_and_per_check(fmt: Format) -> None:
    # Rich may wrap the line at the console width: compare the words.
    text = " ".join(renderer(fmt)(SCANNED).split())
    assert LINE in text
    assert "group-roles 0" not in text


@pytest.mark.parametrize("fmt", [Format.RICH, Format.PLAIN, Format.MARKDOWN])
def test_no_scan_no_line(fmt: Format) -> None:
    quiet = _report(_check("environment"), _check("user-lifecycle", deliveries=3))
    assert "Probe scans" not in renderer(fmt)(quiet)


def test_a_saved_report_shows_the_same_cost() -> None:
    loaded = from_dict(to_dict(SCANNED))
    text = " ".join(renderer(Format.PLAIN)(loaded).split())
    assert LINE in text
