"""The CLI end to end: exit codes, files, messages on stderr, reports on stdout.

Fake checks are installed as a real distribution with entry points (see ``plugin_site``), so
the CLI discovers them exactly as it would a third-party plugin.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from scim_readiness.cli.main import main

from .conftest import write_config

FAKE_CHECKS = {
    "fake_pass": """
        from scim_readiness.plugin.contract import CheckInfo
        CHECK = CheckInfo(id="fake-pass", title="Always passes", checklist_item=0)
        async def run(ctx):
            ctx.findings.passed("all good", observed="secret-canary-9931 is not here")
    """,
    "fake_fail": """
        from scim_readiness.plugin.contract import CheckInfo
        CHECK = CheckInfo(id="fake-fail", title="Always fails", checklist_item=0)
        async def run(ctx):
            ctx.findings.failed("it broke", expected="x", observed="y", fix="fix it")
    """,
    "fake_warn": """
        from scim_readiness.plugin.contract import CheckInfo
        CHECK = CheckInfo(id="fake-warn", title="Always warns", checklist_item=0)
        async def run(ctx):
            ctx.findings.warned("meh")
    """,
    "fake_mutator": """
        from scim_readiness.plugin.contract import CheckInfo
        CHECK = CheckInfo(id="fake-mutator", title="Changes data", checklist_item=4, mutates=True)
        async def run(ctx):
            ctx.findings.passed("changed and restored")
    """,
    "fake_error": """
        from scim_readiness.plugin.contract import CheckInfo
        CHECK = CheckInfo(id="fake-error", title="Always crashes", checklist_item=0)
        async def run(ctx):
            raise ValueError("the check tripped")
    """,
}

STAGING = """
scalekit:
  expect: staging
  environment_url: https://acme-staging.scalekit.dev
  client_secret: ${SCALEKIT_CLIENT_SECRET:-}
"""


@pytest.fixture
def cli(
    tmp_path: Path,
    plugin_site: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., tuple[int, str, str]]:
    plugin_site(FAKE_CHECKS)
    write_config(tmp_path, STAGING)
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_version_and_help(cli: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = cli("--version")
    assert (code, out) == (0, "scim-readiness 0.1.0\n")
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("run", "checks", "config", "report", "cleanup"):
        assert command in out


@pytest.mark.parametrize(
    ("args", "code", "verdict"),
    [
        # Leaving the checklist out with --only names it as accepted: PARTIAL, exit 0.
        (("--only", "fake-pass"), 0, "PARTIAL"),
        (("--only", "fake-pass", "--only", "fake-fail"), 1, "NOT READY"),
        (("--only", "fake-warn"), 0, "PARTIAL"),
        (("--only", "fake-warn", "--fail-on", "warn"), 1, "PARTIAL"),
        # A selected check that could not run under --read-only is a gap nobody accepted.
        (("--only", "fake-pass", "--only", "fake-mutator", "--read-only"), 4, "PARTIAL"),
        (
            (
                "--only",
                "fake-pass",
                "--only",
                "fake-mutator",
                "--read-only",
                "--accept-skip",
                "fake-mutator",
            ),
            0,
            "PARTIAL",
        ),
        (
            (
                "--only",
                "fake-pass",
                "--only",
                "fake-mutator",
                "--read-only",
                "--accept-skip",
                "mutating",
            ),
            0,
            "PARTIAL",
        ),
        # Accepting every gap cannot make a run that observed nothing pass.
        (("--only", "fake-mutator", "--read-only", "--accept-skip", "mutating"), 4, "PARTIAL"),
        (("--only", "fake-error", "--only", "fake-pass"), 3, "INCOMPLETE"),
        (("--only", "fake-error", "--only", "fake-fail"), 1, "NOT READY"),
    ],
)
def test_exit_codes_follow_the_verdict(
    cli: Callable[..., tuple[int, str, str]], args: tuple[str, ...], code: int, verdict: str
) -> None:
    got, out, err = cli("run", "--format", "json", *args)
    assert got == code, err
    assert json.loads(out)["summary"]["verdict"] == verdict


def test_error_check_has_a_one_line_cause(cli: Callable[..., tuple[int, str, str]]) -> None:
    _, out, _ = cli("run", "--format", "plain", "--only", "fake-error")
    assert "[ERROR] RUN012 internal error in check fake-error: ValueError: the check tripped" in out


def test_report_files_are_written_and_consistent(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    summary.write_text("earlier step\n", encoding="utf-8")
    code, out, _ = cli(
        "run",
        "--format",
        "plain",
        "--only",
        "fake-pass",
        "--only",
        "fake-fail",
        "--json",
        "report.json",
        "--junit",
        "report.xml",
        "--markdown",
        "-",
    )
    assert code == 1
    assert "FAIL   fake-fail" in out
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in data["checks"]] == ["fake-fail", "fake-pass"]
    root = ET.fromstring((tmp_path / "report.xml").read_text(encoding="utf-8"))  # noqa: S314
    assert root.get("failures") == "1" and root.get("tests") == "2"
    md = summary.read_text(encoding="utf-8")
    assert md.startswith("earlier step\n## ❌ SCIM readiness: NOT READY")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "-c", "missing.yaml"), "error: missing.yaml: config file not found"),
        (
            ("run", "--only", "fake-pas"),
            "error: --only fake-pas: no such check (did you mean 'fake-pass'?)",
        ),
        (("run", "--only", "fake-pass", "--skip", "fake-pass"), "error: conflicting flags"),
        (("run", "--ca-bundle", "nope.pem"), "error: --ca-bundle nope.pem: not a readable file"),
        (("run", "--format", "xml"), "error: --format xml: use rich, plain, json or github"),
        (("run", "--timeout", "0"), "error: Invalid value for '--timeout'"),
        (("run", "--fail-on", "error"), "error: Invalid value for '--fail-on'"),
        (
            ("run", "--json", "no/such/dir/r.json"),
            "error: --json no/such/dir/r.json: the directory",
        ),
        (("run", "--bogus"), "error: No such option: --bogus"),
        (
            ("run", "--json", "r.out", "--junit", "./r.out"),
            "error: conflicting flags: --json and --junit both write r.out",
        ),
        (("report", "show", "nope.json"), "error: nope.json: report file not found"),
        (("nonsense",), "error: No such command 'nonsense'"),
    ],
)
def test_usage_errors_exit_2_with_one_message(
    cli: Callable[..., tuple[int, str, str]], args: tuple[str, ...], message: str
) -> None:
    code, out, err = cli(*args)
    assert code == 2
    assert err.startswith(message), err
    assert "Traceback" not in err and out == ""


def test_a_bad_ca_bundle_is_refused(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n", encoding="utf-8")
    code, _, err = cli("run", "--ca-bundle", "junk.pem")
    assert code == 2
    assert err.startswith("error: --ca-bundle junk.pem: no PEM certificates in it")


def test_a_real_ca_bundle_is_accepted(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    from scim_readiness.devstack.tls_ca import LocalCA

    ca = LocalCA(tmp_path / "ca")
    code, _, err = cli("run", "--ca-bundle", str(ca.ca_path), "--only", "fake-pass")
    assert code == 0, err


def test_debug_shows_a_redacted_traceback(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALEKIT_CLIENT_SECRET", "secret-canary-9931")
    write_config(tmp_path, "webhook:\n  latency_budget_s: ${SCALEKIT_CLIENT_SECRET}\n")
    code, _, err = cli("run")
    assert code == 2
    assert "Traceback" not in err
    assert "secret-canary-9931" not in err and "***" in err
    code, _, err = cli("--debug", "run")
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert "secret-canary-9931" not in err


def test_checks_lists_built_ins_and_plugins(cli: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = cli("checks", "--format", "json")
    assert code == 0
    rows = {row["id"]: row for row in json.loads(out)}
    builtins = [
        "environment",
        "webhook-endpoint",
        "webhook-signature",
        "delivery-semantics",
        "user-lifecycle",
        "group-roles",
        "bad-data",
        "data-model",
        "admin-portal",
    ]
    assert [check for check in rows if check in builtins] == builtins
    assert rows["fake-pass"]["origin"] == "fake-checks (entry point fake_pass)"
    code, out, _ = cli("checks")
    assert code == 0 and "webhook-signature" in out and "fake-fail" in out


def test_checks_shows_read_only_mode_and_options(cli: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = cli("checks", "--format", "json")
    assert code == 0
    rows = {row["id"]: row for row in json.loads(out)}
    # The runner's read-only decision, as declared: signature has a reduced mode, the
    # round trips cannot run without changing data, environment changes nothing anyway.
    assert rows["webhook-signature"]["read_only"] == "reduced"
    assert rows["user-lifecycle"]["read_only"] == "none"
    assert rows["environment"]["read_only"] == "full"
    options = {o["name"]: o for o in rows["environment"]["options"]}
    assert options["secret_expiry_warn_days"]["default"] == "14"
    assert options["secret_expiry_warn_days"]["value"] == "a number ≥ 0"

    code, out, _ = cli("checks", "bad-data")
    assert code == 0
    assert "read-only run: skipped" in out and "max_scan_users" in out and "50000" in out


def test_checks_with_an_unknown_id_exits_2_with_a_suggestion(
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    code, _, err = cli("checks", "bad-dat")
    assert code == 2
    assert "no check 'bad-dat' (did you mean 'bad-data'?)" in err


def test_plugin_autoload_can_be_turned_off(
    cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_READINESS_DISABLE_PLUGIN_AUTOLOAD", "1")
    _, out, _ = cli("checks", "--format", "json")
    assert "fake-pass" not in [row["id"] for row in json.loads(out)]


def test_a_duplicate_plugin_id_exits_2(
    plugin_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    plugin_site(
        {
            "dup_env": """
                from scim_readiness.plugin.contract import CheckInfo
                CHECK = CheckInfo(id="environment", title="Impostor", checklist_item=1)
                async def run(ctx):
                    pass
            """
        },
        dist="impostor",
    )
    assert main(["checks"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: two checks share the id 'environment': scim_readiness.checks.environment "
        "and impostor (entry point dup_env)"
    )


def test_a_misspelt_need_fails_at_registration(
    plugin_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Before needs were typed, needs=("webhok",) was accepted and the check SKIPped forever.
    plugin_site(
        {
            "typo_need": """
                from scim_readiness.api import CheckInfo
                CHECK = CheckInfo(id="typo", title="Typo", checklist_item=0, needs=("webhok",))
                async def run(ctx):
                    pass
            """
        },
        dist="typo",
    )
    assert main(["checks"]) == 2
    err = capsys.readouterr().err
    assert "needs 'webhok', which is not a config section (did you mean 'webhook'?)" in err
    assert "Traceback" not in err


def test_needs_name_config_sections() -> None:
    from scim_readiness.api import Need
    from scim_readiness.config import Config

    assert {n.value for n in Need} <= set(Config.model_fields)


def test_a_broken_plugin_exits_2_naming_it(
    plugin_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    plugin_site({"broken_mod": "raise RuntimeError('plugin exploded')\n"}, dist="broken")
    assert main(["checks"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: check plugin broken (entry point broken_mod) could not be loaded: "
        "RuntimeError: plugin exploded"
    )
    assert "SCIM_READINESS_DISABLE_PLUGIN_AUTOLOAD=1" in err


def test_config_init_and_validate(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    code, out, _ = cli("config", "init", "new.yaml")
    assert code == 0 and out.startswith("wrote new.yaml")
    code, _, err = cli("config", "init", "new.yaml")
    assert code == 2 and err.startswith("error: new.yaml already exists")
    assert cli("config", "init", "new.yaml", "--force")[0] == 0
    code, out, _ = cli("config", "validate", "-c", "new.yaml")
    assert code == 0
    # Valid, but a fresh starter file has no URL or credentials yet: it says so.
    assert out.startswith("new.yaml: valid, but not ready to run:\n")
    assert "group-roles        would SKIP: needs the config section 'roles', which is absent" in out
    write_config(tmp_path, "scalekit:\n  expect: prod\n", name="bad.yaml")
    code, _, err = cli("config", "validate", "-c", "bad.yaml")
    assert code == 2 and err.startswith("error: bad.yaml:2 (scalekit.expect): expected one of")


def test_config_path_from_the_environment(
    cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_READINESS_CONFIG", "elsewhere.yaml")
    code, _, err = cli("run", "--only", "fake-pass")
    assert code == 2 and err.startswith("error: elsewhere.yaml: config file not found")


def test_report_show_and_diff(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    assert cli("run", "--only", "fake-pass", "--json", "old.json")[0] == 0
    assert cli("run", "--only", "fake-pass", "--only", "fake-fail", "--json", "new.json")[0] == 1
    code, out, _ = cli("report", "show", "new.json", "--format", "plain")
    assert code == 0 and "Verdict: NOT READY" in out
    code, out, _ = cli("report", "show", "new.json", "--format", "junit")
    assert code == 0 and out.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    code, out, _ = cli("report", "diff", "old.json", "new.json")
    assert code == 1
    assert "  fake-fail: (absent) -> FAIL" in out and out.endswith("REGRESSED\n")
    code, out, _ = cli("report", "diff", "new.json", "new.json")
    assert code == 0 and out.endswith("no regressions\n")
    code, out, _ = cli("report", "diff", "new.json", "old.json")  # a vanished check is lost cover
    assert code == 1 and "  fake-fail: FAIL -> (absent)" in out


def test_cleanup_with_an_empty_ledger_succeeds(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    # Removal itself is tested with the cleanup module; here only the CLI wiring.
    code, out, _ = cli("cleanup")
    assert code == 0
    assert out == f"nothing outstanding in {tmp_path / '.scim-readiness' / 'ledger.jsonl'}\n"


LEAKY_CHECK = """
    from scim_readiness.plugin.contract import CheckInfo
    CHECK = CheckInfo(id="leaky", title="Leaks on purpose", checklist_item=0)
    async def run(ctx):
        sk = ctx.config.scalekit.client_secret.get_secret_value()
        wh = ctx.config.webhook.secret.get_secret_value()
        token = ctx.config.probe.http.headers["Authorization"].get_secret_value()
        ctx.findings.failed(f"leaked {sk}", observed=f"{wh} and {token}", evidence={"k": sk})
        ctx.findings.step("s", expected=wh, observed=token, status="FAIL")
        raise RuntimeError(f"crashed holding {sk}")
"""


def test_no_secret_reaches_any_output_end_to_end(
    tmp_path: Path,
    plugin_site: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    canaries = {
        "SCALEKIT_CLIENT_SECRET": "sk-canary-client-secret-0042",
        "SCALEKIT_WEBHOOK_SECRET": "whsec_Y2FuYXJ5LXdlYmhvb2s=",
        "APP_PROBE_TOKEN": "probe-canary-token-0043",
    }
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    plugin_site({"leaky_check": LEAKY_CHECK})
    write_config(
        tmp_path,
        """
        scalekit:
          expect: staging
          client_secret: ${SCALEKIT_CLIENT_SECRET}
        probe:
          kind: http
          http:
            user_by_email: http://127.0.0.1:9/probe?email={email}
            headers:
              Authorization: Bearer ${APP_PROBE_TOKEN}
        """,
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    seen = []
    for fmt in ("rich", "plain", "json"):
        code = main(
            [
                "--debug",
                "run",
                "--only",
                "leaky",
                "--format",
                fmt,
                "-v",
                "--json",
                "r.json",
                "--junit",
                "r.xml",
                "--markdown",
                "-",
            ]
        )
        assert code == 1
        out, err = capsys.readouterr()
        assert "--- traceback of check leaky" in err  # --debug shows the check's traceback
        seen += [out, err]
        seen += [(tmp_path / n).read_text(encoding="utf-8") for n in ("r.json", "r.xml")]
    seen.append((tmp_path / "summary.md").read_text(encoding="utf-8"))
    for text in seen:
        for value in (*canaries.values(), "Y2FuYXJ5LXdlYmhvb2s="):
            assert value not in text
    assert any("leaked ***" in text for text in seen)


def test_verbose_reports_each_finished_check_on_stderr_only(
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, err = cli("run", "--only", "fake-pass", "--format", "json", "-v")
    assert code == 0
    assert err.splitlines()[0].startswith("PASS  fake-pass (")
    assert json.loads(out)["checks"][0]["findings"][0]["title"] == "all good"  # stdout stays JSON


def test_markdown_dash_without_a_step_summary_says_so(
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    code, _, err = cli("run", "--only", "fake-pass", "--format", "plain", "--markdown", "-")
    assert code == 0
    assert "note: --markdown -: GITHUB_STEP_SUMMARY is not set" in err


def test_read_only_headline_names_what_was_not_evaluated_in_every_format(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    args = ("run", "--only", "fake-pass", "--only", "fake-mutator", "--read-only")
    code, out, _ = cli(
        *args, "--format", "plain", "--json", "r.json", "--junit", "r.xml", "--markdown", "-"
    )
    headline = (
        "READ-ONLY: 0 of 8 items evaluated, none failed; not evaluated: 4 fake-mutator; "
        + ", ".join(f"{n} (no check selected)" for n in (1, 2, 3, 5, 6, 7, 8))
        + " (accepted: not selected with --only)"
    )
    assert code == 4
    assert f"Verdict: {headline}  (1 PASS, 1 SKIP)" in out
    assert "READY" not in out.replace("READ-ONLY", "")
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["summary"]["headline"] == headline
    item4 = data["summary"]["coverage"]["items"][3]
    assert item4["checks"] == ["fake-mutator"] and not item4["evaluated"]
    assert item4["accepted_by"] == ""
    root = ET.fromstring((tmp_path / "r.xml").read_text(encoding="utf-8"))  # noqa: S314
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["verdict"] == "PARTIAL" and props["headline"] == headline
    assert summary.read_text(encoding="utf-8").startswith(f"## ⏭️ SCIM readiness: {headline}")
    # Accepted, the item is named with how, and the exit code no longer holds the gap.
    code, out, _ = cli(*args, "--accept-skip", "mutating", "--format", "plain")
    assert code == 0
    assert (
        "; 4 fake-mutator, 5 (no check selected), 6 (no check selected) "
        "(accepted: --accept-skip mutating)  (1 PASS, 1 SKIP)"
    ) in out


def test_accept_skip_must_name_a_check(cli: Callable[..., tuple[int, str, str]]) -> None:
    code, _, err = cli("run", "--only", "fake-pass", "--accept-skip", "bad-dat")
    assert code == 2
    assert err.startswith("error: --accept-skip bad-dat: no such check (did you mean 'bad-data'?)")


def test_production_without_consent_and_nothing_observed_is_never_ready(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    write_config(tmp_path, "scalekit:\n  environment_url: https://env.example.com\n")
    code, out, _ = cli("run", "--only", "fake-mutator", "--format", "plain")
    assert code == 4
    assert "creates test users in production" in out
    assert (
        "Verdict: PARTIAL: 0 of 8 items evaluated, none failed; not evaluated: 4 fake-mutator"
        in out
    )


def _demo(*args: str, cwd: Path) -> tuple[int, dict[str, object], str]:
    import os
    import subprocess
    import sys

    env = {**os.environ, "NO_COLOR": "1", "SCIM_READINESS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "scim_readiness", "demo", "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
        check=False,
    )
    return done.returncode, json.loads(done.stdout), done.stderr


def test_demo_clean_is_ready_with_every_item_and_read_only_is_not(tmp_path: Path) -> None:
    code, report, err = _demo(cwd=tmp_path)
    assert code == 0, err
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert summary["headline"] == "READY: all 8 checklist items evaluated and passed"
    assert summary["coverage"]["items_evaluated"] == 8
    code, report, err = _demo("--read-only", cwd=tmp_path)
    assert code == 4, err
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert summary["verdict"] == "PARTIAL"
    assert summary["headline"] == (
        "READ-ONLY: 5 of 8 items evaluated, none failed; "
        "not evaluated: 4 delivery-semantics, user-lifecycle, 5 group-roles, 6 bad-data"
    )
    statuses = {c["id"]: c["status"] for c in report["checks"]}  # type: ignore[attr-defined]
    assert statuses["webhook-signature"] == "PASS"  # its read-only mode ran
    code, report, err = _demo("--read-only", "--accept-skip", "mutating", cwd=tmp_path)
    assert code == 0, err
