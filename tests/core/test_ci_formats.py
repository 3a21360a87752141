"""CI-facing formats: GitHub annotations and `report diff` as JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scim_readiness.cli.main import main
from scim_readiness.model import CheckResult, Finding, Report, Status
from scim_readiness.redact import Redactor
from scim_readiness.reports import Format, renderer
from scim_readiness.reports.github import escape_data, escape_property
from scim_readiness.reports.json_report import render as render_json

SECRET = "gh-annotation-secret-4411"


def report(*checks: CheckResult, run_id: str = "sr-new") -> Report:
    return Report(
        run_id=run_id,
        tool_version="0.1.0",
        target="https://acme.example",
        started_at="2026-01-31T12:00:00Z",
        duration_s=1.0,
        checks=checks,
    )


def check(check_id: str, status: Status, *findings: Finding) -> CheckResult:
    return CheckResult(
        id=check_id, title=check_id, checklist_item=1, status=status, findings=findings
    )


FAILING = check(
    "webhook-signature",
    Status.FAIL,
    Finding("Valid signature accepted", Status.PASS),
    Finding(
        "Stale delivery accepted: 100%, twice",
        Status.FAIL,
        expected="4xx",
        observed=f"HTTP 200\nsecret {SECRET}",
        fix="Check the timestamp.",
    ),
)
WARNING = check("webhook-endpoint", Status.WARN, Finding("Slow answer", Status.WARN))
ERRORED = check("environment", Status.ERROR, Finding("Scalekit did not answer", Status.ERROR))


def test_github_format_annotates_each_failing_and_warning_finding() -> None:
    text = renderer(Format.GITHUB)(report(FAILING, WARNING, ERRORED), redactor=Redactor([SECRET]))
    commands = [line for line in text.splitlines() if line.startswith("::")]
    assert commands[:3] == [
        "::error title=webhook-signature [FAIL] Stale delivery accepted%3A 100%25%2C twice"
        "::expected: 4xx%0Aobserved: HTTP 200%0Asecret ***%0Afix: Check the timestamp.",
        "::warning title=webhook-endpoint [WARN] Slow answer::Slow answer",
        "::error title=environment [ERROR] Scalekit did not answer::Scalekit did not answer",
    ]
    assert commands[3].startswith("::notice title=scim-readiness::")
    assert "NOT READY" in commands[3]
    assert len(commands) == 4  # the PASS finding is not annotated
    assert SECRET not in text
    assert "Verdict: NOT READY" in text  # the plain report follows for any other CI shell


def test_workflow_command_escaping() -> None:
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a: b, c") == "a%3A b%2C c"


def test_run_and_report_show_accept_format_github(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "r.json"
    saved.write_text(render_json(report(FAILING)), encoding="utf-8")
    assert main(["report", "show", str(saved), "--format", "github"]) == 0
    assert capsys.readouterr().out.startswith("::error title=webhook-signature")


def _save(path: Path, r: Report) -> str:
    path.write_text(render_json(r), encoding="utf-8")
    return str(path)


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[str, str]:
    old = report(
        check("webhook-signature", Status.PASS, Finding("ok", Status.PASS)),
        check("data-model", Status.FAIL, Finding("drift", Status.FAIL)),
        run_id="sr-old",
    )
    new = report(
        FAILING,
        check("data-model", Status.PASS, Finding("ok", Status.PASS)),
    )
    return _save(tmp_path / "old.json", old), _save(tmp_path / "new.json", new)


def test_report_diff_json(two_runs: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "diff", *two_runs, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "old_run": "sr-old",
        "new_run": "sr-new",
        "regressed": True,
        "changes": [
            {"check": "webhook-signature", "old": "PASS", "new": "FAIL", "worse": True},
            {"check": "data-model", "old": "FAIL", "new": "PASS", "worse": False},
        ],
        "new_findings": [
            {
                "check": "webhook-signature",
                "code": "",
                "status": "FAIL",
                "waived": False,
                "title": "Stale delivery accepted: 100%, twice",
                "observed": f"HTTP 200\nsecret {SECRET}",
                "fix": "Check the timestamp.",
            }
        ],
        "waiver_changes": [],
    }


def test_report_diff_markdown_puts_the_outcome_and_regressions_first(
    two_runs: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "diff", *two_runs, "--format", "markdown"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "### scim-readiness: ❌ **Regressed**"
    table = [line for line in lines if line.startswith("| `")]
    assert table == [
        "| `webhook-signature` | PASS | FAIL | worse |",
        "| `data-model` | FAIL | PASS | better |",
    ]
    assert "- `webhook-signature` **FAIL** Stale delivery accepted: 100%, twice" in lines


def test_report_diff_rejects_an_unknown_format(
    two_runs: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "diff", *two_runs, "--format", "html"]) == 2
    assert "use text, json, markdown" in capsys.readouterr().err
