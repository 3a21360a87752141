"""Waivers: a waived finding shows as WAIVED everywhere and does not fail the run, an expired
one fails it and says so, an unused one is reported, and the config names only known codes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from scim_readiness.cli.main import main
from scim_readiness.config import Waiver
from scim_readiness.engine.waivers import apply_waivers
from scim_readiness.model import CheckResult, Finding, Report, Status, Verdict
from scim_readiness.reports import Format, renderer
from scim_readiness.reports.diff import diff
from scim_readiness.reports.diff import render as render_diff

from .conftest import write_config

CHECKS = {
    "coded_fail": """
        from scim_readiness.api import CheckInfo, FindingCode
        CHECK = CheckInfo(
            id="coded-fail", title="Fails once", checklist_item=0,
            codes=(
                FindingCode("CFA001", "The thing works", "It matters.", "Fix the thing."),
                FindingCode("CFA002", "The other thing works", "It matters.", "Fix it."),
            ),
        )
        async def run(ctx):
            ctx.findings.passed("other thing fine", code="CFA002")
            ctx.findings.failed("thing broken", observed="HTTP 500", code="CFA001")
    """,
    "coded_pass": """
        from scim_readiness.api import CheckInfo, FindingCode
        CHECK = CheckInfo(
            id="coded-pass", title="Passes", checklist_item=0,
            codes=(FindingCode("CPA001", "Fine", "It matters.", "Nothing."),),
        )
        async def run(ctx):
            ctx.findings.passed("fine", code="CPA001")
    """,
}
STAGING = """
scalekit:
  expect: staging
  environment_url: https://acme-staging.scalekit.dev
webhook:
  url: https://app.example.com/hooks/scalekit
"""
FUTURE = (dt.date.today() + dt.timedelta(days=30)).isoformat()
PAST = (dt.date.today() - dt.timedelta(days=1)).isoformat()


def waiver_yaml(code: str = "CFA001", expires: str = FUTURE, extra: str = "") -> str:
    return (
        f"waivers:\n  - code: {code}\n    reason: vendor fix due next sprint\n"
        f"    owner: platform-team\n    expires: {expires}\n{extra}"
    )


@pytest.fixture
def cli(
    tmp_path: Path,
    plugin_site: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., tuple[int, str, str]]:
    plugin_site(CHECKS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCIM_READINESS_DISABLE_PLUGIN_AUTOLOAD", "")

    def invoke(waivers: str, *args: str) -> tuple[int, str, str]:
        write_config(tmp_path, STAGING + waivers)
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


ONLY = ("--only", "coded-fail", "--only", "coded-pass")
Cli = Callable[..., tuple[int, str, str]]


def test_without_a_waiver_the_failure_fails_the_run(cli: Cli) -> None:
    code, out, _ = cli("", "run", "--format", "json", *ONLY)
    assert code == 1
    assert json.loads(out)["summary"]["verdict"] == "NOT READY"


def test_a_waived_failure_shows_as_waived_everywhere_and_does_not_fail_the_run(
    cli: Cli, tmp_path: Path
) -> None:
    code, out, _ = cli(
        waiver_yaml(),
        "run",
        "--format",
        "plain",
        *ONLY,
        "--json",
        "r.json",
        "--junit",
        "r.xml",
        "--markdown",
        "r.md",
        "--html",
        "r.html",
    )
    assert code == 0, out
    assert "[WAIVED FAIL] CFA001 thing broken" in out
    assert f"waiver: waived by platform-team until {FUTURE}: vendor fix due next sprint" in out
    assert "WAIVED  coded-fail" in out
    assert "(accepted: not selected with --only); 1 waived (CFA001)" in out.splitlines()[-1]

    data = json.loads((tmp_path / "r.json").read_text())
    assert data["summary"]["waived"] == 1 and data["summary"]["counts"]["WAIVED"] == 1
    check = next(c for c in data["checks"] if c["id"] == "coded-fail")
    assert check["status"] == "WAIVED"
    broken = next(f for f in check["findings"] if f["code"] == "CFA001")
    assert broken["status"] == "FAIL" and broken["waived"] is True
    assert broken["waiver"]["owner"] == "platform-team" and broken["waiver"]["expired"] is False

    root = ET.fromstring((tmp_path / "r.xml").read_text(encoding="utf-8"))  # noqa: S314
    case = next(c for c in root.iter("testcase") if "coded-fail" in c.get("name", ""))
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("WAIVED: CFA001 waived")
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["codes.coded-fail"] == "CFA001"
    assert (props["waiver.coded-fail"] or "").startswith("CFA001 waived by platform-team")
    assert props["waived"] == "1" and root.get("skipped") == "1"
    import xmlschema

    xmlschema.XMLSchema(str(Path(__file__).with_name("junit.xsd"))).validate(
        str(tmp_path / "r.xml")
    )

    assert "- **WAIVED FAIL** `CFA001` thing broken" in (tmp_path / "r.md").read_text()
    assert (
        'WAIVED FAIL</span> <code class="code">CFA001</code>' in (tmp_path / "r.html").read_text()
    )


def test_github_annotations_make_a_waived_finding_a_notice(cli: Cli) -> None:
    code, out, _ = cli(waiver_yaml(), "run", "--format", "github", *ONLY)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("::notice title=CFA001 coded-fail [WAIVED FAIL] thing broken::")
    assert not any(line.startswith("::error") for line in lines)


def test_an_expired_waiver_fails_the_run_and_says_when_and_whose(
    cli: Cli,
) -> None:
    code, out, _ = cli(waiver_yaml(expires=PAST), "run", "--format", "github", *ONLY)
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith("::error title=CFA001 coded-fail [FAIL] thing broken::")
    assert f"waived by platform-team expired on {PAST}" in first


def test_an_unused_waiver_is_a_warning_not_a_failure(cli: Cli) -> None:
    waivers = waiver_yaml(code="CPA001")  # coded-pass passes: nothing to waive
    code, out, _ = cli(waivers, "run", "--format", "plain", "--only", "coded-pass")
    assert code == 0
    assert "[WARN] CPA001: matched no failing finding (owner platform-team" in out
    code, out, _ = cli(waivers, "run", "--format", "github", "--only", "coded-pass")
    assert "::warning title=scim-readiness unused waiver::CPA001" in out


def test_a_waiver_for_another_target_or_check_does_not_apply(cli: Cli) -> None:
    other = waiver_yaml(extra="    target: https://app.example.com/elsewhere\n")
    code, _, _ = cli(other, "run", "--format", "json", *ONLY)
    assert code == 1
    mine = waiver_yaml(extra="    target: https://APP.example.com/hooks/scalekit/\n")
    code, _, _ = cli(mine, "run", "--format", "json", *ONLY)
    assert code == 0


def test_config_validate_refuses_an_unknown_code_and_reports_an_expired_waiver(
    cli: Cli,
) -> None:
    code, _, err = cli(waiver_yaml(code="CFA01"), "config", "validate")
    assert code == 2
    assert "unknown finding code 'CFA01' (did you mean 'CFA001'?)" in err
    assert "waivers[0].code" in err
    code, _, err = cli(waiver_yaml(extra="    check: coded-pass\n"), "config", "validate")
    assert code == 2
    assert "CFA001 is a finding code of coded-fail, not of coded-pass" in err
    code, _, err = cli(
        waiver_yaml().replace("    owner: platform-team\n", ""), "config", "validate"
    )
    assert code == 2 and "owner" in err
    code, out, _ = cli(waiver_yaml(expires=PAST), "config", "validate")
    assert code == 0
    assert f"warning: waivers[0] (CFA001): expired on {PAST} (owner platform-team)" in out


def test_config_schema_names_the_known_codes(cli: Cli) -> None:
    code, out, _ = cli("", "config", "schema")
    assert code == 0
    waiver = json.loads(out)["$defs"]["Waiver"]
    assert {"CFA001", "CPA001", "RUN006"} <= set(waiver["properties"]["code"]["enum"])
    assert set(waiver["required"]) == {"code", "reason", "owner", "expires"}


# ------------------------------------------------------------------ the model's honesty


def _full_report(*extra: CheckResult) -> Report:
    passing = tuple(
        CheckResult(f"c{i}", f"C{i}", i, Status.PASS, (Finding("ok", Status.PASS),))
        for i in range(1, 8)
    )
    return Report("sr1", "0", "t", "2026-01-01T00:00:00Z", 1.0, (*passing, *extra))


PORTAL = CheckResult(
    "admin-portal",
    "Portal",
    8,
    Status.FAIL,
    (
        Finding("link generated", Status.PASS, code="ADM001"),
        Finding("not on the custom domain", Status.FAIL, code="ADM003"),
        Finding("not reached", Status.SKIP, code="RUN010"),
    ),
)


def _waiver(code: str, expires: dt.date) -> Waiver:
    return Waiver(code=code, reason="r", owner="o", expires=expires)


def test_a_waived_fail_is_never_pass_evidence_and_the_headline_says_so() -> None:
    on = dt.date(2026, 6, 1)
    report = apply_waivers(
        _full_report(PORTAL), [_waiver("ADM003", dt.date(2026, 7, 1))], on=on, targets=()
    )
    portal = report.checks[-1]
    assert portal.status is Status.WAIVED
    summary = report.summary
    assert summary.verdict is Verdict.READY and report.exit_code() == 0
    assert summary.headline == (
        "READY WITH WAIVERS: all 8 checklist items evaluated, none failed unwaived; "
        "1 waived (ADM003)"
    )
    assert "passed" not in summary.headline


def test_a_waiver_covers_no_skip_or_error_and_expires_on_its_date() -> None:
    expires = dt.date(2026, 6, 1)
    waivers = [_waiver("RUN010", dt.date(2027, 1, 1)), _waiver("ADM003", expires)]
    report = apply_waivers(_full_report(PORTAL), waivers, on=expires, targets=())
    portal = report.checks[-1]
    assert portal.status is Status.FAIL and report.exit_code() == 1
    broken = next(f for f in portal.findings if f.code == "ADM003")
    assert broken.waiver is not None and broken.waiver.expired and not broken.waived
    assert [w.code for w in report.unused_waivers] == ["RUN010"]


def test_report_diff_shows_a_finding_waived_and_one_no_longer_waived() -> None:
    on = dt.date(2026, 6, 1)
    plain = _full_report(PORTAL)
    waived = apply_waivers(plain, [_waiver("ADM003", dt.date(2026, 7, 1))], on=on, targets=())
    expired = apply_waivers(plain, [_waiver("ADM003", on)], on=on, targets=())
    now_waived = diff(plain, waived)
    assert [(w.check_id, w.waived) for w in now_waived.waiver_changes] == [("admin-portal", True)]
    assert not now_waived.regressed
    lost = diff(waived, expired)
    assert lost.regressed
    text = render_diff(lost)
    assert "admin-portal: ADM003 not on the custom domain: no longer waived: the waiver " in text
    assert "expired on 2026-06-01 (owner o)" in text


def test_saved_reports_keep_their_waivers_and_version_1_reports_still_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scim_readiness.reports.load import from_dict

    on = dt.date(2026, 6, 1)
    report = apply_waivers(
        _full_report(PORTAL), [_waiver("ADM003", dt.date(2026, 7, 1))], on=on, targets=()
    )
    data = json.loads(renderer(Format.JSON)(report))
    assert from_dict(data) == report
    old = json.loads(renderer(Format.JSON)(_full_report(PORTAL)))
    old["schema_version"] = 1
    del old["summary"]["waived"], old["summary"]["unused_waivers"]
    for check in old["checks"]:
        for finding in check["findings"]:
            for key in ("code", "waived", "waiver"):
                del finding[key]
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    (tmp_path / "new.json").write_text(json.dumps(data), encoding="utf-8")
    assert main(["report", "show", str(tmp_path / "old.json"), "--format", "plain"]) == 0
    assert main(["report", "diff", str(tmp_path / "old.json"), str(tmp_path / "new.json")]) == 0
    out = capsys.readouterr().out
    assert "[FAIL] not on the custom domain" in out  # no code in a version 1 report
    assert "better or neutral:\n  admin-portal: FAIL -> WAIVED" in out
    loaded_old = from_dict(old)
    assert loaded_old.checks[-1].findings[1].code == ""
    # Upgrading does not make every finding look new: uncoded ones are matched by title.
    assert diff(loaded_old, _full_report(PORTAL)).new_findings == ()
    reworded = dataclasses.replace(
        PORTAL, findings=(*PORTAL.findings, Finding("another domain", Status.FAIL, code="ADM003"))
    )
    assert [
        n.finding.title for n in diff(_full_report(PORTAL), _full_report(reworded)).new_findings
    ] == ["another domain"]


def test_the_console_report_shows_codes_waivers_and_unused_waivers() -> None:
    on = dt.date(2026, 6, 1)
    waivers = [_waiver("ADM003", dt.date(2026, 7, 1)), _waiver("ADM009", dt.date(2026, 7, 1))]
    report = apply_waivers(_full_report(PORTAL), waivers, on=on, targets=())
    text = renderer(Format.RICH)(report)
    assert "[WAIVED FAIL] ADM003 not on the custom domain" in text
    assert "waived by o until 2026-07-01: r" in text
    assert "[SKIP] RUN010 not reached" in text
    assert "Unused waivers" in text and "ADM009: matched no failing finding" in text
    assert "Verdict: READY WITH WAIVERS:" in text
