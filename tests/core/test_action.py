"""The GitHub Action (action.yml): its shape, and its run step executed as the runner would,
against the embedded stack (emulator + reference app on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scim_readiness.devstack.demo_stack import start_stack

ACTION = Path(__file__).resolve().parents[2] / "action.yml"


@pytest.fixture(scope="module")
def action() -> dict[str, object]:
    data = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps(action: dict[str, object]) -> list[dict[str, object]]:
    runs = action["runs"]
    assert isinstance(runs, dict) and runs["using"] == "composite"
    found = runs["steps"]
    assert isinstance(found, list)
    return found


def test_action_sets_up_python_installs_runs_uploads_and_fails_last(
    action: dict[str, object],
) -> None:
    uses = [str(s.get("uses", "")) for s in steps(action)]
    assert uses[0].startswith("actions/setup-python@")
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    upload = next(s for s in steps(action) if str(s.get("uses", "")).startswith("actions/upload"))
    assert str(upload["if"]).startswith("always()")  # reports are kept when the run fails
    assert steps(action)[-1]["name"] == "Verdict"
    inputs: dict[str, object] = action["inputs"]  # type: ignore[assignment]
    assert {"config", "args", "python-version", "install", "artifact-name"} <= set(inputs)


def test_no_input_is_pasted_into_a_script(action: dict[str, object]) -> None:
    # `${{ inputs.x }}` inside `run:` is shell injection; inputs go through `env:`.
    for step in steps(action):
        assert "${{" not in str(step.get("run", "")), step["name"]


def _run_step(action: dict[str, object]) -> str:
    step = next(s for s in steps(action) if s.get("id") == "run")
    return str(step["run"])


def _execute(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "PATH": path, "NO_COLOR": "1", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_args_split_on_spaces_without_glob_expansion(
    action: dict[str, object], tmp_path: Path
) -> None:
    (tmp_path / "xa").write_text("")  # what `x*` would expand to
    outputs = tmp_path / "out.txt"
    done = _execute(
        _run_step(action),
        {
            "CONFIG": "readiness.yaml",
            "ARGS": "--read-only  --format x*",
            "REPORT_DIR": str(tmp_path / "r"),
            "GITHUB_OUTPUT": str(outputs),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        },
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "--format x*:" in done.stderr
    assert "exit-code=2" in outputs.read_text()


def test_the_run_step_reports_annotates_and_summarises(
    action: dict[str, object], tmp_path: Path
) -> None:
    outputs, summary, reports = tmp_path / "out.txt", tmp_path / "summary.md", tmp_path / "r"
    with start_stack(("directory-drift",), workdir=tmp_path) as stack:
        config = stack.write_config(tmp_path / "readiness.yaml")
        done = _execute(
            _run_step(action),
            {
                "CONFIG": str(config),
                "ARGS": f"--ca-bundle {stack.ca_path} --yes",
                "REPORT_DIR": str(reports),
                "GITHUB_OUTPUT": str(outputs),
                "GITHUB_STEP_SUMMARY": str(summary),
            },
            tmp_path,
        )
    assert done.returncode == 0, done.stderr  # the Verdict step fails the job, not this one
    recorded = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert recorded == {"exit-code": "1", "verdict": "NOT READY", "report-dir": str(reports)}
    assert sorted(p.name for p in reports.iterdir()) == ["report.html", "report.json", "report.xml"]
    assert "SCIM readiness" in summary.read_text()
    errors = [line for line in done.stdout.splitlines() if line.startswith("::error ")]
    assert errors and all("data-model" in line for line in errors)


def test_the_verdict_step_exits_with_the_recorded_code(
    action: dict[str, object], tmp_path: Path
) -> None:
    script = str(steps(action)[-1]["run"])
    assert _execute(script, {"CODE": "1", "VERDICT": "NOT READY"}, tmp_path).returncode == 1
    assert _execute(script, {"CODE": "0", "VERDICT": "READY"}, tmp_path).returncode == 0
    assert _execute(script, {}, tmp_path).returncode == 3  # the run step never got to record
