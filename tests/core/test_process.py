"""The CLI as a separate process: start-up imports, Ctrl-C and SIGTERM, `python -m`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .conftest import write_config

# What `--help` and `checks` must not pay for: the SDK and the servers, and also pydantic
# (the config models) and asyncio, which only a run needs.
HEAVY = ("scalekit", "grpc", "starlette", "uvicorn", "cryptography", "pydantic", "asyncio")
# The product's own modules that only running a check needs: a check's body (its
# declaration names it with `deferred`) and everything a body uses, down to the HTTP clients,
# the event builders and the config models.
RUN_ONLY = re.compile(
    r"scim_readiness\.(checks\.[a-z_]+\.check|provisioning\.|webhooks\.|events|clients|"
    r"plugin\.(target|wait|context|identities)|environment_url|guards|config)"
)


def env_with(site: Path | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SCALEKIT_", "SCIM_READINESS_"))
    }
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    env["NO_COLOR"] = "1"
    return env


@pytest.mark.parametrize(
    "args", [["--help"], ["checks"], ["checks", "--format", "json"], ["explain", "run006"]]
)
def test_help_and_checks_do_not_import_heavy_modules(args: list[str]) -> None:
    probe = textwrap.dedent(
        f"""
        import contextlib, io, json, re, sys
        from scim_readiness.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main({args!r})
        heavy = sorted(
            m
            for m in sys.modules
            if m.split(".")[0] in {HEAVY!r} or re.match({RUN_ONLY.pattern!r}, m)
        )
        print(json.dumps({{"code": code, "heavy": heavy}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env_with()
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "heavy": []}


def test_python_dash_m_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scim_readiness", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_with(),
    )
    assert (done.returncode, done.stdout) == (0, "scim-readiness 0.1.0\n")


SLOW_CHECK = """
    import asyncio, os, pathlib
    from scim_readiness.plugin.contract import CheckInfo
    CHECK = CheckInfo(id="slow", title="Waits forever", checklist_item=0, mutates=True)
    MARKS = pathlib.Path(os.environ["SLOW_MARKS"])
    async def run(ctx):
        ctx.findings.passed("first step done")
        (MARKS / "started").write_text("x")
        await asyncio.sleep(3600)
    async def cleanup(ctx):
        await asyncio.sleep(0.05)
        (MARKS / "cleaned").write_text(ctx.run_id)
"""
QUICK_CHECK = """
    from scim_readiness.plugin.contract import CheckInfo
    CHECK = CheckInfo(id="quick", title="Quick", checklist_item=0)
    async def run(ctx):
        ctx.findings.passed("quick one")
"""


def start_slow_run(tmp_path: Path, plugin_site: object) -> tuple[subprocess.Popen[str], Path]:
    site = plugin_site({"slow_check": SLOW_CHECK, "quick_check": QUICK_CHECK})  # type: ignore[operator]
    marks = tmp_path / "marks"
    marks.mkdir()
    config = write_config(tmp_path, "scalekit:\n  expect: staging\n")
    env = env_with(site)
    env["SLOW_MARKS"] = str(marks)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scim_readiness",
            "run",
            "-c",
            str(config),
            "--only",
            "slow",
            "--only",
            "quick",
            "--format",
            "plain",
            "--json",
            str(tmp_path / "partial.json"),
            "--junit",
            str(tmp_path / "partial.xml"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 60
    while not (marks / "started").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"the slow check never started:\n{out}\n{err}")
        time.sleep(0.05)
    return process, marks


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_cleans_up_writes_a_partial_report_and_exits_130(
    tmp_path: Path, plugin_site: object, sig: signal.Signals
) -> None:
    process, marks = start_slow_run(tmp_path, plugin_site)
    process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the run did not stop after the signal")
    assert process.returncode == 130, err
    assert (marks / "cleaned").exists()
    report = json.loads((tmp_path / "partial.json").read_text(encoding="utf-8"))
    assert report["interrupted"] is True
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["slow"]["interrupted"] is True
    assert [f["title"] for f in checks["slow"]["findings"]] == [
        "first step done",
        "interrupted before it finished",
    ]
    assert checks["quick"]["status"] == "PASS"
    assert (tmp_path / "partial.xml").read_text(encoding="utf-8").startswith("<?xml")
    assert "(interrupted)" in out
    assert "interrupted: cleanup ran and the partial report was written" in err
    assert "Traceback" not in err


STUCK_CLEANUP_CHECK = """
    import asyncio, os, pathlib
    from scim_readiness.plugin.contract import CheckInfo
    CHECK = CheckInfo(id="slow", title="Waits forever", checklist_item=0, mutates=True)
    MARKS = pathlib.Path(os.environ["SLOW_MARKS"])
    async def run(ctx):
        (MARKS / "started").write_text("x")
        await asyncio.sleep(3600)
    async def cleanup(ctx):
        (MARKS / "cleaning").write_text("x")
        await asyncio.sleep(30)
"""


def test_second_ctrl_c_during_cleanup_exits_130_without_a_traceback(
    tmp_path: Path, plugin_site: object
) -> None:
    # The impatient Ctrl-C Ctrl-C: the second one lands while cleanup is still running, so
    # asyncio.run abandons its loop with tasks unfinished.
    site = plugin_site({"slow_check": STUCK_CLEANUP_CHECK, "quick_check": QUICK_CHECK})  # type: ignore[operator]
    marks = tmp_path / "marks"
    marks.mkdir()
    config = write_config(tmp_path, "scalekit:\n  expect: staging\n")
    env = env_with(site)
    env["SLOW_MARKS"] = str(marks)
    argv = [sys.executable, "-m", "scim_readiness", "run", "-c", str(config), "--only", "slow"]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    try:
        for mark in ("started", "cleaning"):
            deadline = time.monotonic() + 60
            while not (marks / mark).exists() and process.poll() is None:
                assert time.monotonic() < deadline, f"never reached {mark}"
                time.sleep(0.02)
            if mark == "started":
                process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "interrupted again during cleanup" in err, (err, out)
    assert "scim-readiness cleanup" in err
    assert "Traceback" not in err, err
    assert "Task was destroyed" not in err, err
