"""Renderers are pure functions of a Report: exact JSON, JUnit read back, no secrets anywhere."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from scim_readiness.errors import ExitCode, UsageError
from scim_readiness.model import (
    CheckResult,
    FailOn,
    Finding,
    Report,
    Severity,
    Status,
    TimelineStep,
    Verdict,
)
from scim_readiness.redact import Redactor
from scim_readiness.reports import Format, renderer
from scim_readiness.reports.diff import diff
from scim_readiness.reports.diff import render as render_diff
from scim_readiness.reports.json_report import to_dict
from scim_readiness.reports.load import from_dict, load_report

CANARY_SECRET = "canary-client-secret-7f3a9c"
CANARY_WEBHOOK = "whsec_Y2FuYXJ5LXdlYmhvb2stc2VjcmV0"
CANARY_TOKEN = "canary-probe-token-51d2"
CANARY_ODD = "canary odd/secret+=&?"  # characters that change under URL/JSON/HTML encoding
PORTAL = "https://acme.scalekit.com/magicLink/7a1c9e2b-canary-portal-token?token=cafe1234feed"


def sample(**changes: object) -> Report:
    fail = Finding(
        title="Stale delivery accepted",
        status=Status.FAIL,
        expected="4xx for a timestamp older than 5 minutes",
        observed="HTTP 200",
        why="A captured delivery can be replayed.",
        fix="Verify the timestamp window.",
        docs_url="https://docs.example.com/webhooks",
        severity=Severity.HIGH,
        evidence={"status_code": 200},
    )
    ok = Finding(title="Valid signature accepted", status=Status.PASS, severity=Severity.INFO)
    base = {
        "run_id": "sr0123456789",
        "tool_version": "0.1.0",
        "target": "https://acme.scalekit.com",
        "started_at": "2026-01-31T12:00:00Z",
        "duration_s": 3.5,
        "checks": (
            CheckResult(
                id="webhook-signature",
                title="Webhook signature validation",
                checklist_item=3,
                status=Status.FAIL,
                findings=(ok, fail),
                duration_s=1.25,
                mutates=True,
                docs_url="https://docs.example.com/webhooks",
                timeline=(
                    TimelineStep("user_created", "user active", "user active", Status.PASS, 0.42),
                ),
                metrics={"deliveries": 9},
            ),
            CheckResult(
                id="data-model",
                title="Data model",
                checklist_item=7,
                status=Status.SKIP,
                findings=(
                    Finding(
                        title="needs the config section 'probe', which is absent",
                        status=Status.SKIP,
                        severity=Severity.INFO,
                    ),
                ),
            ),
            CheckResult(
                id="environment",
                title="Environment",
                checklist_item=1,
                status=Status.ERROR,
                findings=(Finding(title="Scalekit did not answer", status=Status.ERROR),),
                duration_s=10.0,
                interrupted=True,
            ),
        ),
    }
    base.update(changes)
    return Report(**base)  # type: ignore[arg-type]


def test_json_is_exactly_the_documented_schema() -> None:
    assert json.loads(renderer(Format.JSON)(sample())) == {
        "schema_version": 2,
        "tool": "scim-readiness",
        "tool_version": "0.1.0",
        "run_id": "sr0123456789",
        "target": "https://acme.scalekit.com",
        "started_at": "2026-01-31T12:00:00Z",
        "duration_s": 3.5,
        "read_only": False,
        "interrupted": False,
        "summary": {
            "verdict": "NOT READY",
            "total": 3,
            "counts": {"PASS": 0, "WARN": 0, "FAIL": 1, "SKIP": 1, "ERROR": 1, "WAIVED": 0},
            "headline": "NOT READY: 1 check failed (webhook-signature); 1 of 8 items evaluated; "
            "not evaluated: 1 environment, 2 (no check selected), 4 (no check selected), "
            "5 (no check selected), 6 (no check selected), 7 data-model, "
            "8 (no check selected)",
            "coverage": {
                "items_total": 8,
                "items_evaluated": 1,
                "complete": False,
                "items": [
                    {
                        "item": 1,
                        "checks": ["environment"],
                        "evaluated": False,
                        "status": None,
                        "reason": "environment: ERROR (Scalekit did not answer)",
                        "accepted_by": "",
                    },
                    *(
                        {
                            "item": n,
                            "checks": [],
                            "evaluated": False,
                            "status": None,
                            "reason": "no check selected",
                            "accepted_by": "",
                        }
                        for n in (2,)
                    ),
                    {
                        "item": 3,
                        "checks": ["webhook-signature"],
                        "evaluated": True,
                        "status": "FAIL",
                        "reason": "",
                        "accepted_by": "",
                    },
                    *(
                        {
                            "item": n,
                            "checks": [],
                            "evaluated": False,
                            "status": None,
                            "reason": "no check selected",
                            "accepted_by": "",
                        }
                        for n in (4, 5, 6)
                    ),
                    {
                        "item": 7,
                        "checks": ["data-model"],
                        "evaluated": False,
                        "status": None,
                        "reason": "data-model: SKIP (needs the config section 'probe', which "
                        "is absent)",
                        "accepted_by": "",
                    },
                    {
                        "item": 8,
                        "checks": [],
                        "evaluated": False,
                        "status": None,
                        "reason": "no check selected",
                        "accepted_by": "",
                    },
                ],
            },
            "waived": 0,
            "unused_waivers": [],
        },
        "checks": [
            {
                "id": "webhook-signature",
                "title": "Webhook signature validation",
                "checklist_item": 3,
                "status": "FAIL",
                "findings": [
                    {
                        "code": "",
                        "title": "Valid signature accepted",
                        "status": "PASS",
                        "expected": "",
                        "observed": "",
                        "why": "",
                        "fix": "",
                        "docs_url": "",
                        "severity": "info",
                        "evidence": {},
                        "waived": False,
                        "waiver": None,
                    },
                    {
                        "code": "",
                        "title": "Stale delivery accepted",
                        "status": "FAIL",
                        "expected": "4xx for a timestamp older than 5 minutes",
                        "observed": "HTTP 200",
                        "why": "A captured delivery can be replayed.",
                        "fix": "Verify the timestamp window.",
                        "docs_url": "https://docs.example.com/webhooks",
                        "severity": "high",
                        "evidence": {"status_code": 200},
                        "waived": False,
                        "waiver": None,
                    },
                ],
                "duration_s": 1.25,
                "mutates": True,
                "docs_url": "https://docs.example.com/webhooks",
                "timeline": [
                    {
                        "step": "user_created",
                        "expected": "user active",
                        "observed": "user active",
                        "status": "PASS",
                        "latency_s": 0.42,
                    }
                ],
                "metrics": {"deliveries": 9},
                "interrupted": False,
            },
            {
                "id": "data-model",
                "title": "Data model",
                "checklist_item": 7,
                "status": "SKIP",
                "findings": [
                    {
                        "code": "",
                        "title": "needs the config section 'probe', which is absent",
                        "status": "SKIP",
                        "expected": "",
                        "observed": "",
                        "why": "",
                        "fix": "",
                        "docs_url": "",
                        "severity": "info",
                        "evidence": {},
                        "waived": False,
                        "waiver": None,
                    }
                ],
                "duration_s": 0.0,
                "mutates": False,
                "docs_url": "",
                "timeline": [],
                "metrics": {},
                "interrupted": False,
            },
            {
                "id": "environment",
                "title": "Environment",
                "checklist_item": 1,
                "status": "ERROR",
                "findings": [
                    {
                        "code": "",
                        "title": "Scalekit did not answer",
                        "status": "ERROR",
                        "expected": "",
                        "observed": "",
                        "why": "",
                        "fix": "",
                        "docs_url": "",
                        "severity": "medium",
                        "evidence": {},
                        "waived": False,
                        "waiver": None,
                    }
                ],
                "duration_s": 10.0,
                "mutates": False,
                "docs_url": "",
                "timeline": [],
                "metrics": {},
                "interrupted": True,
            },
        ],
    }


def test_a_saved_report_loads_back_to_the_same_report(tmp_path: Path) -> None:
    report = sample(interrupted=True, read_only=True)
    path = tmp_path / "report.json"
    path.write_text(renderer(Format.JSON)(report), encoding="utf-8")
    loaded = load_report(path)
    assert to_dict(loaded) == to_dict(report)
    assert loaded == report


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a JSON report"),
        ('{"schema_version": 3, "checks": []}', "schema_version 3 is not supported"),
        ('{"schema_version": 1, "checks": [{"id": "x"}]}', "checks[0]: missing 'findings'"),
        (
            '{"schema_version": 1, "checks": [{"id": "x", "status": "MAYBE", "findings": [],'
            ' "duration_s": 0}]}',
            "checks[0]: unknown status 'MAYBE'",
        ),
    ],
)
def test_bad_saved_reports_are_usage_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=re.escape(message)):
        load_report(path)


def test_junit_reads_back_with_one_testcase_per_check() -> None:
    root = ET.fromstring(renderer(Format.JUNIT)(sample()))  # noqa: S314 - our own output
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == (
        "3",
        "1",
        "1",
        "1",
    )
    cases = {c.get("classname"): c for c in suite.findall("testcase")}
    assert list(cases) == [
        "scim-readiness.webhook-signature",
        "scim-readiness.data-model",
        "scim-readiness.environment",
    ]
    failure = cases["scim-readiness.webhook-signature"].find("failure")
    assert failure is not None and failure.get("message") == "Stale delivery accepted"
    assert "observed: HTTP 200" in (failure.text or "")
    assert "step [PASS] user_created" in (failure.text or "")
    error = cases["scim-readiness.environment"].find("error")
    assert error is not None and error.get("message") == "Scalekit did not answer"
    assert "(interrupted before it finished)" in (error.text or "")
    skipped = cases["scim-readiness.data-model"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "needs the config section 'probe', which is absent"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "NOT READY" and props["run_id"] == "sr0123456789"


def test_markdown_plain_and_console_show_verdict_findings_and_timeline() -> None:
    report = sample()
    md = renderer(Format.MARKDOWN)(report)
    assert md.startswith("## ❌ SCIM readiness: NOT READY")
    assert "| `webhook-signature` | 3 | ❌ FAIL | 1.2s | Stale delivery accepted |" in md
    assert "  - Fix: Verify the timestamp window." in md
    assert "Valid signature accepted" not in md  # PASS findings only with verbose
    assert "Valid signature accepted" in renderer(Format.MARKDOWN)(report, verbose=True)
    for fmt in (Format.PLAIN, Format.RICH):
        text = renderer(fmt)(report)
        assert "Verdict: NOT READY" in text
        assert "Stale delivery accepted" in text and "Verify the timestamp window." in text
        assert "https://docs.example.com/webhooks" in text
        assert "user_created" in text  # the timeline
        assert "\x1b[" not in text  # no colour unless asked


def test_console_colour_only_when_asked() -> None:
    from scim_readiness.reports import console

    assert "\x1b[" in console.render(sample(), color=True)


def test_no_secret_survives_any_format() -> None:
    leaky = Finding(
        title=f"Token {CANARY_TOKEN} and secret {CANARY_SECRET} in a title",
        status=Status.FAIL,
        observed=f"Authorization: Bearer {CANARY_TOKEN}; link {PORTAL}",
        why=f"the webhook secret {CANARY_WEBHOOK} / {CANARY_WEBHOOK[6:]}",
        fix=f"encoded {quote(CANARY_ODD, safe='')} {quote_plus(CANARY_ODD).lower()} "
        f"{json.dumps(CANARY_ODD)} {html.escape(CANARY_ODD)}",
        evidence={"header": f"Bearer {CANARY_TOKEN}", "nested": [CANARY_SECRET]},
    )
    check = CheckResult(
        id="leaky",
        title=f"Leaky {CANARY_SECRET}",
        checklist_item=0,
        status=Status.FAIL,
        findings=(leaky,),
        timeline=(TimelineStep("s", CANARY_TOKEN, PORTAL, Status.FAIL),),
        metrics={"k": CANARY_SECRET},
    )
    report = sample(checks=(check,), target=f"https://x.example.com/?token={CANARY_TOKEN}")
    redactor = Redactor([CANARY_SECRET, CANARY_WEBHOOK, CANARY_TOKEN, CANARY_ODD])
    for fmt in Format:
        text = renderer(fmt)(report, redactor=redactor, verbose=True)
        for canary in (
            CANARY_SECRET,
            CANARY_WEBHOOK,
            CANARY_WEBHOOK[6:],
            CANARY_TOKEN,
            "7a1c9e2b-canary-portal-token",
            "cafe1234feed",
            "canary",
        ):
            assert canary not in text, (fmt, canary)
        assert "***" in text


def test_diff_finds_regressions_and_new_findings() -> None:
    old = sample()
    better_env = CheckResult("environment", "Environment", 1, Status.PASS)
    worse_dm = CheckResult(
        "data-model",
        "Data model",
        7,
        Status.FAIL,
        findings=(Finding(title="3 users missing in the app", status=Status.FAIL),),
    )
    new = sample(run_id="sr9", checks=(old.checks[0], worse_dm, better_env))
    d = diff(old, new)
    assert d.regressed
    assert [(c.check_id, c.old, c.new, c.worse) for c in d.changes] == [
        ("data-model", Status.SKIP, Status.FAIL, True),
        ("environment", Status.ERROR, Status.PASS, False),
    ]
    assert [(n.check_id, n.finding.title) for n in d.new_findings] == [
        ("data-model", "3 users missing in the app")
    ]
    assert not diff(old, old).regressed
    # Backwards, data-model went FAIL -> SKIP: the defect is no longer looked at, which is a
    # loss of coverage, not an improvement; environment went PASS -> ERROR.
    back = diff(new, old)
    assert back.regressed
    assert [(c.check_id, c.worse, c.lost_coverage) for c in back.changes] == [
        ("data-model", True, True),
        ("environment", True, True),
    ]


@pytest.mark.parametrize("now", [Status.SKIP, Status.ERROR])
def test_diff_a_fail_that_is_no_longer_evaluated_is_a_regression(now: Status) -> None:
    failing = CheckResult("bad-data", "Bad data", 6, Status.FAIL)
    hidden = CheckResult("bad-data", "Bad data", 6, now)
    d = diff(sample(checks=(failing,)), sample(run_id="sr9", checks=(hidden,)))
    assert d.regressed
    text = render_diff(d)
    assert f"worse:\n  bad-data: FAIL -> {now.value} (no longer evaluated)\n" in text
    assert "better or neutral" not in text
    assert text.endswith("REGRESSED\n")
    # Coming back into coverage is not a regression.
    assert not diff(sample(checks=(hidden,)), sample(checks=(failing,))).changes[0].lost_coverage


def test_json_stays_json_whatever_a_check_left_in_evidence() -> None:
    # Not JSON-shaped on purpose (a float NaN, a class, an int key): what a plugin might leave.
    evidence: dict[Any, Any] = {"nan": float("nan"), "inf": float("inf"), "obj": object, 3: (1, 2)}
    odd = Finding(title="odd evidence", status=Status.WARN, evidence=evidence)
    report = sample(checks=(CheckResult("odd", "Odd", 0, Status.WARN, (odd,)),))
    evidence = json.loads(renderer(Format.JSON)(report))["checks"][0]["findings"][0]["evidence"]
    assert evidence == {"nan": "nan", "inf": "inf", "obj": "<class 'object'>", "3": [1, 2]}


def test_json_round_trip_through_from_dict_keeps_attested_findings() -> None:
    attested = Finding(title="branding attested by jane", status=Status.ATTESTED)
    report = sample(checks=(CheckResult("admin-portal", "Portal", 8, Status.PASS, (attested,)),))
    assert from_dict(to_dict(report)) == report


def _schema() -> dict[str, Any]:
    from importlib.resources import files

    text = files("scim_readiness.reports").joinpath("json_schema_v2.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def test_reports_match_the_published_json_schema() -> None:
    import asyncio

    import jsonschema

    from scim_readiness.engine.config_file import parse_config
    from scim_readiness.engine.runner import RunOptions, run_suite

    from .conftest import spec

    validator = jsonschema.Draft202012Validator(_schema())
    validator.check_schema(_schema())
    cfg = parse_config("scalekit:\n  expect: staging\n", path="r.yaml", check_ids=())
    live = asyncio.run(run_suite(cfg, RunOptions(), specs=[spec("a"), spec("b", needs=("probe",))]))
    for report in (sample(), sample(interrupted=True), live):
        validator.validate(json.loads(renderer(Format.JSON)(report)))
    broken = json.loads(renderer(Format.JSON)(sample()))
    broken["checks"][0]["status"] = "ATTESTED"  # a finding status, never a check's
    assert not validator.is_valid(broken)
    del broken["checks"][0]["status"]
    assert "'status' is a required property" in [e.message for e in validator.iter_errors(broken)]


def test_junit_is_valid_against_the_schema_ci_systems_read() -> None:
    import xmlschema

    schema = xmlschema.XMLSchema(str(Path(__file__).with_name("junit.xsd")))
    control = CheckResult(
        "odd", "Odd \x07 bytes", 0, Status.WARN, (Finding("bell \x07", Status.WARN),)
    )
    for report in (
        sample(),
        sample(interrupted=True),
        sample(checks=(control,)),
        sample(checks=()),
    ):
        schema.validate(renderer(Format.JUNIT)(report))
    with pytest.raises(xmlschema.XMLSchemaValidationError):  # the schema is not a rubber stamp
        schema.validate(renderer(Format.JUNIT)(sample()).replace('classname="', 'klass="'))


def test_finding_details_are_the_set_fields_in_reading_order_and_docs_only_when_not_pass() -> None:
    docs = "https://docs.example.com/webhooks"
    failed = Finding("t", Status.FAIL, observed="500", fix="return 2xx", docs_url=docs)
    assert failed.details() == [("observed", "500"), ("fix", "return 2xx"), ("docs", docs)]
    passed = Finding("t", Status.PASS, expected="2xx", observed="204", docs_url=docs)
    assert passed.details() == [("expected", "2xx"), ("observed", "204")]
    report = sample(
        checks=(
            CheckResult(
                id="c", title="C", checklist_item=1, status=Status.FAIL, findings=(failed, passed)
            ),
        )
    )
    for fmt in (Format.PLAIN, Format.MARKDOWN, Format.JUNIT, Format.RICH):
        assert renderer(fmt)(report, verbose=True).count(docs) == 1, fmt


def _items(statuses: dict[int, Status], **changes: object) -> Report:
    checks = tuple(
        CheckResult(f"check-{n}", f"Check {n}", n, status, mutates=n in (4, 5, 6))
        for n, status in statuses.items()
    )
    return sample(checks=checks, **changes)


ALL_PASS = dict.fromkeys(range(1, 9), Status.PASS)


def test_ready_only_when_all_eight_items_were_evaluated_and_passed() -> None:
    report = _items(ALL_PASS)
    assert report.summary.verdict is Verdict.READY
    assert report.summary.headline == "READY: all 8 checklist items evaluated and passed"
    assert report.exit_code() == 0
    warned = _items({**ALL_PASS, 2: Status.WARN})
    assert warned.summary.headline.endswith("; 1 check warned (check-2)")
    assert (warned.exit_code(), warned.exit_code(FailOn.WARN)) == (0, 1)


def test_a_gap_in_coverage_is_partial_and_exits_4_until_accepted() -> None:
    gaps = {**ALL_PASS, 4: Status.SKIP, 5: Status.SKIP, 6: Status.SKIP}
    report = _items(gaps, read_only=True)
    summary = report.summary
    assert summary.verdict is Verdict.PARTIAL
    assert summary.headline == (
        "READ-ONLY: 5 of 8 items evaluated, none failed; "
        "not evaluated: 4 check-4, 5 check-5, 6 check-6"
    )
    assert report.exit_code() == ExitCode.NOT_EVALUATED
    assert int(ExitCode.NOT_EVALUATED) == 4  # the documented number CI scripts test
    # Accepting two of the three is not enough.
    partly = _items(gaps, read_only=True, accepted={4: "--skip check-4", 5: "--skip check-5"})
    assert partly.exit_code() == 4
    assert partly.summary.headline.endswith(
        "not evaluated: 6 check-6; 4 check-4 (accepted: --skip check-4); "
        "5 check-5 (accepted: --skip check-5)"
    )
    everything = dict.fromkeys((4, 5, 6), "--accept-skip mutating")
    accepted = _items(gaps, read_only=True, accepted=everything)
    assert accepted.summary.verdict is Verdict.PARTIAL  # never READY: not all was evaluated
    assert accepted.exit_code() == 0
    # Not a read-only run: the same gap says PARTIAL.
    assert _items(gaps).summary.headline.startswith("PARTIAL: 5 of 8 items evaluated")
    # An item with no check in the report is a gap too.
    assert _items(dict.fromkeys(range(1, 8), Status.PASS)).summary.headline.endswith(
        "not evaluated: 8 (no check selected)"
    )


def test_nothing_observed_never_exits_0_even_with_every_gap_accepted() -> None:
    skipped = _items(
        dict.fromkeys(range(1, 9), Status.SKIP), accepted=dict.fromkeys(range(1, 9), "x")
    )
    assert skipped.summary.verdict is Verdict.PARTIAL
    assert skipped.exit_code() == 4
    assert "READY" not in skipped.summary.headline


def test_failures_and_errors_still_win_and_say_what_was_covered() -> None:
    failed = _items({**ALL_PASS, 3: Status.FAIL, 4: Status.SKIP})
    assert failed.summary.headline == (
        "NOT READY: 1 check failed (check-3); 7 of 8 items evaluated; not evaluated: 4 check-4"
    )
    assert failed.exit_code() == 1
    errored = _items({**ALL_PASS, 2: Status.ERROR})
    assert errored.summary.headline == (
        "INCOMPLETE: 1 check could not be evaluated (check-2), none failed; "
        "7 of 8 items evaluated; not evaluated: 2 check-2"
    )
    assert errored.exit_code() == 3


def test_one_skipped_check_leaves_its_item_unevaluated_beside_a_passing_one() -> None:
    extra = CheckResult("plugin-4", "Plugin", 4, Status.SKIP)
    report = _items(ALL_PASS)
    report = sample(checks=(*report.checks, extra))
    item = report.coverage.items[3]
    assert (item.evaluated, item.checks, item.reason) == (
        False,
        ("check-4", "plugin-4"),
        "plugin-4: SKIP",
    )
    assert report.exit_code() == 4


def test_accepted_items_survive_a_saved_report() -> None:
    report = _items({**ALL_PASS, 6: Status.SKIP}, accepted={6: "--skip check-6"})
    loaded = from_dict(json.loads(renderer(Format.JSON)(report)))
    assert loaded.accepted == {6: "--skip check-6"}
    assert loaded.summary == report.summary
    assert loaded.exit_code() == 0


def test_junit_failure_text_lists_the_failing_findings_first() -> None:
    root = ET.fromstring(renderer(Format.JUNIT)(sample()))  # noqa: S314
    failure = next(root.iter("failure"))
    lines = (failure.text or "").splitlines()
    assert lines[0] == "[FAIL] Stale delivery accepted"
    assert lines.index("[PASS] Valid signature accepted") > lines.index("    observed: HTTP 200")
