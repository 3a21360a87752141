"""The HTML report: self-contained, escaped, charts drawn from the report, and readable in a
real browser (headless Chromium from Debian's packages renders it; its DOM and a screenshot
are checked)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from scim_readiness.cli.main import main
from scim_readiness.model import CheckResult, Finding, Report, Severity, Status, TimelineStep
from scim_readiness.redact import Redactor
from scim_readiness.reports import Format, renderer
from scim_readiness.reports.json_report import render as render_json

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SECRET = "s3cr3t-webhook-value-9d8e"


def report_with_charts() -> Report:
    lifecycle = CheckResult(
        id="user-lifecycle",
        title="Create, update, deprovision",
        checklist_item=4,
        status=Status.FAIL,
        findings=(
            Finding("Created user appears active", Status.PASS),
            Finding(
                "Deactivated user keeps access",
                Status.FAIL,
                expected="inactive within 30 s",
                observed=f"still active; {HOSTILE}",
                why="Suspended people keep access.",
                fix="Handle user_updated with active:false.",
                docs_url="https://docs.scalekit.com/directory/",
                severity=Severity.CRITICAL,
            ),
        ),
        duration_s=2.5,
        mutates=True,
        timeline=(
            TimelineStep("1. create", "active", "active", Status.PASS, 0.120),
            TimelineStep("2. update profile", "new name", "new name", Status.PASS, 0.045),
            TimelineStep("3. deactivate", "inactive", "active", Status.FAIL, 30.0),
        ),
    )
    endpoint = CheckResult(
        id="webhook-endpoint",
        title="Webhook endpoint",
        checklist_item=2,
        status=Status.WARN,
        findings=(Finding("Burst slower than budget", Status.WARN, observed="p99 900 ms"),),
        metrics={
            "ack_p50_ms": 80.5,
            "ack_p95_ms": 150.0,
            "burst_p50_ms": 12.0,
            "burst_p95_ms": 300.0,
            "burst_p99_ms": 900.0,
            "note": f"secret was {SECRET}",
        },
    )
    data_model = CheckResult(
        id="data-model",
        title="Data model",
        checklist_item=7,
        status=Status.FAIL,
        findings=(Finding("Users missing in the app: 2", Status.FAIL),),
        metrics={
            "directory_users": 10,
            "app_users": 8,
            "matched": 8,
            "drift": {"missing in app": 2, "inactive mismatch": 1},
        },
    )
    return Report(
        run_id="sr00html0001",
        tool_version="0.1.0",
        target="https://acme.scalekit.example",
        started_at="2026-01-31T12:00:00Z",
        duration_s=4.0,
        checks=(endpoint, lifecycle, data_model),
    )


class Elements(HTMLParser):
    """Tags, ids and text of a document, as a browser-independent first look."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)

    def ids(self) -> set[str]:
        return {found for _, a in self.tags if (found := a.get("id"))}


def parse(text: str) -> Elements:
    found = Elements()
    found.feed(text)
    return found


def test_html_is_self_contained_and_escapes_every_value() -> None:
    text = renderer(Format.HTML)(report_with_charts(), redactor=Redactor([SECRET]))
    doc = parse(text)
    assert doc.count("script") == 0 and doc.count("img") == 0  # the hostile value stayed text
    assert HOSTILE in "".join(doc.text)
    assert SECRET not in text and "***" in text
    # Nothing is loaded from anywhere: no external sheets, scripts, images or fonts.
    assert doc.count("link") == 0 and "@import" not in text and "url(" not in text
    assert not [a for _, a in doc.tags if a.get("src")]
    assert {"headline", "checks", "charts", "findings", "check-data-model"} <= doc.ids()
    assert "@media print" in text


def test_charts_draw_one_bar_per_step_percentile_and_mismatch() -> None:
    doc = parse(renderer(Format.HTML)(report_with_charts()))
    assert doc.count("svg") == 3
    # 3 timeline steps + 5 latency percentiles + 3 reconcile counts + 2 drift kinds.
    assert doc.count("rect") == 3 + 5 + 3 + 2
    text = " ".join(doc.text)
    for label in ("3. deactivate", "burst p99", "missing in app", "30,000 ms"):
        assert label in text, label


def test_passing_findings_are_listed_and_shown_in_full_with_verbose() -> None:
    quiet = parse(renderer(Format.HTML)(report_with_charts()))
    loud = parse(renderer(Format.HTML)(report_with_charts(), verbose=True))
    finding_divs = [a for t, a in quiet.tags if t == "div" and a.get("class") == "finding"]
    assert len(finding_divs) == 3  # the FAILs and the WARN, not the PASS
    assert "Created user appears active" in "".join(quiet.text)
    assert len([a for t, a in loud.tags if t == "div" and a.get("class") == "finding"]) == 4


def test_a_docs_link_that_is_not_a_web_url_stays_text() -> None:
    bad = Finding("Plugin finding", Status.FAIL, docs_url="javascript:alert(1)")
    check = CheckResult(
        id="plugin", title="P", checklist_item=0, status=Status.FAIL, findings=(bad,)
    )
    base = report_with_charts()
    report = dataclasses.replace(base, checks=(check,))
    doc = parse(renderer(Format.HTML)(report))
    assert not [a for t, a in doc.tags if t == "a" and "javascript" in (a.get("href") or "")]


def test_report_show_writes_html_from_a_saved_report(tmp_path: Path) -> None:
    saved = tmp_path / "run.json"
    saved.write_text(render_json(report_with_charts()), encoding="utf-8")
    out = tmp_path / "run.html"
    assert main(["report", "show", str(saved), "--format", "plain", "--html", str(out)]) == 0
    doc = parse(out.read_text(encoding="utf-8"))
    assert doc.count("svg") == 3
    assert "sr00html0001" in "".join(doc.text)


def test_html_to_stdout_is_refused_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "run.json"
    saved.write_text(render_json(report_with_charts()), encoding="utf-8")
    assert main(["report", "show", str(saved), "--html", "-"]) == 2
    assert "--html" in capsys.readouterr().err


# ------------------------------------------------------------------ in a real browser

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-pings",
    # Anything the browser still tries to fetch goes to a closed loopback port, never out.
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, "HOME": str(profile)},
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "report.html"
    path.write_text(renderer(Format.HTML)(report_with_charts()), encoding="utf-8")
    return path


def test_chromium_renders_headline_table_and_charts(page: Path, tmp_path: Path) -> None:
    result = browse(page, tmp_path / "profile-dom", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = parse(result.stdout)
    # The browser built the document the report meant: the headline, one row per check,
    # the three charts with every bar, and the findings.
    assert {"headline", "checks", "attention", "charts", "findings"} <= dom.ids()
    rows = [a for t, a in dom.tags if t == "tr" and (a.get("id") or "").startswith("row-")]
    assert len(rows) == 3
    assert dom.count("svg") == 3 and dom.count("rect") == 13
    assert "Deactivated user keeps access" in "".join(dom.text)
    assert dom.count("script") == 0


def test_chromium_screenshot_is_a_real_picture(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    result = browse(
        page, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1100,1400"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert png_size(data) == (1100, 1400)
    # A blank page compresses to a few kilobytes; text, tables and bars do not.
    assert len(data) > 30_000, len(data)


def test_chromium_prints_the_report_to_pdf(page: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    result = browse(
        page, tmp_path / "profile-pdf", f"--print-to-pdf={pdf}", "--no-pdf-header-footer"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") >= 1


def test_saved_report_json_round_trips_into_the_same_charts(tmp_path: Path) -> None:
    saved = json.loads(render_json(report_with_charts()))
    from scim_readiness.reports.load import from_dict

    again = renderer(Format.HTML)(from_dict(saved))
    assert parse(again).count("rect") == 13


def test_the_headline_is_the_report_models_own(page: Path) -> None:
    report = report_with_charts()
    text = page.read_text(encoding="utf-8")
    assert report.summary.headline.startswith("NOT READY")
    assert f'id="headline" data-verdict="NOT READY">{report.summary.headline}</p>' in text
