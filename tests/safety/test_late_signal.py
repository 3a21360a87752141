"""A SIGTERM that arrives after the checks are done but before the report files are written.

CI sends SIGTERM again when a job is slow to stop; the run must still write its files and exit
130, not die with the signal's default action (exit -15, no report).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Runs the real CLI in a child process; the report writer is wrapped so that the process
# signals itself at exactly the moment between the end of the suite and the files.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from scim_readiness.cli import run as cli_run
    from scim_readiness.plugin.contract import CheckInfo
    from scim_readiness.engine.registry import CheckSpec
    from scim_readiness.cli.main import main

    async def run(ctx):
        ctx.findings.passed("done")

    spec = CheckSpec(
        info=CheckInfo(id="quick", title="Quick", checklist_item=0),
        run=run,
        cleanup=None,
        origin="tests.quick",
    )
    real_write = cli_run.write_files

    def late_signal_then_write(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the signal is delivered here, before the files are written
        return real_write(*args, **kwargs)

    cli_run.write_files = late_signal_then_write
    real_execute = cli_run.execute
    cli_run.execute = lambda *a, **k: real_execute(*a, **{**k, "specs": [spec]})
    sys.exit(main(sys.argv[1:]))
    """
)


def test_sigterm_after_the_suite_still_writes_the_report_and_exits_130(tmp_path: Path) -> None:
    config = tmp_path / "readiness.yaml"
    config.write_text("scalekit:\n  expect: staging\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCALEKIT_", "SCIM_"))}
    env["SCIM_READINESS_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    args = ["run", "-c", str(config), "--format", "plain", "--json", str(tmp_path / "r.json")]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 130, done.stderr
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in report["checks"]] == ["quick"]
    assert "Traceback" not in done.stderr


def test_shutdown_reports_of_the_interrupt_itself_are_quiet_and_real_errors_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    from scim_readiness.cli.run import _quiet_about_interrupts

    loop = asyncio.new_event_loop()
    try:
        interrupt = BaseExceptionGroup("unhandled errors in a TaskGroup", [KeyboardInterrupt()])
        with caplog.at_level("ERROR", logger="asyncio"):
            _quiet_about_interrupts(loop, {"message": "shutdown", "exception": interrupt})
            assert not caplog.records
            _quiet_about_interrupts(loop, {"message": "shutdown", "exception": ValueError("x")})
        assert [r.getMessage() for r in caplog.records] == ["shutdown"]
    finally:
        loop.close()
