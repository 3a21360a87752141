"""Installed the way users install: the project and a third-party check plugin, each built
and installed by pip into a fresh directory, then discovered by the CLI in a new process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILTINS = [
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


def pip_install(source: Path, target: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_pip_installed_project_ships_its_checks_and_finds_an_installed_plugin(
    tmp_path: Path,
) -> None:
    plugin = tmp_path / "plugin-src"
    (plugin / "acme_checks").mkdir(parents=True)
    (plugin / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=69"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "acme-scim-checks"
            version = "1.0.0"

            [project.entry-points."scim_readiness.checks"]
            acme-sso = "acme_checks.sso"
            """
        ),
        encoding="utf-8",
    )
    (plugin / "acme_checks" / "__init__.py").write_text("", encoding="utf-8")
    (plugin / "acme_checks" / "sso.py").write_text(
        textwrap.dedent(
            """
            from scim_readiness.plugin.contract import CheckInfo
            CHECK = CheckInfo(id="acme-sso", title="ACME SSO policy", checklist_item=0)
            async def run(ctx):
                ctx.findings.failed("SSO is optional", expected="enforced", observed="optional")
            """
        ),
        encoding="utf-8",
    )
    # Build from a copy: an in-tree build would leave build/ behind in the checkout.
    source = tmp_path / "project-src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "tests"
        ),
    )
    project_site, plugin_site = tmp_path / "project", tmp_path / "plugins"
    pip_install(source, project_site)
    pip_install(plugin, plugin_site)
    assert (project_site / "scim_readiness" / "checks" / "webhook_signature" / "check.py").is_file()
    assert (project_site / "scim_readiness" / "reports" / "json_schema_v1.json").is_file()
    assert (project_site / "scim_readiness" / "starter.yaml").is_file()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCALEKIT_", "SCIM_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_site), str(project_site)])
    config = tmp_path / "readiness.yaml"
    config.write_text("scalekit:\n  expect: staging\n", encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scim_readiness", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )

    where = subprocess.run(
        [sys.executable, "-c", "import scim_readiness.checks as c; print(c.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert where.stdout.strip().startswith(str(project_site)), where.stdout + where.stderr

    listed = cli("checks", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [*BUILTINS, "acme-sso"]
    assert rows[-1]["origin"] == "acme-scim-checks (entry point acme-sso)"

    ran = cli("run", "--only", "acme-sso", "--format", "json")
    assert ran.returncode == 1, ran.stderr
    (check,) = json.loads(ran.stdout)["checks"]
    assert (check["id"], check["status"]) == ("acme-sso", "FAIL")

    env["SCIM_READINESS_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    assert [r["id"] for r in json.loads(cli("checks", "--format", "json").stdout)] == BUILTINS
