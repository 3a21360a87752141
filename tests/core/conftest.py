"""Fixtures for the core tests: an isolated environment, fake checks, and a way to install
fake checks as a real distribution (a ``*.dist-info`` with entry points on ``sys.path``)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from scim_readiness.engine.registry import CheckSpec
from scim_readiness.plugin.context import CheckContext
from scim_readiness.plugin.contract import CheckInfo, Need
from scim_readiness.plugin.entry import RunFn

ISOLATED_ENV = (
    "SCALEKIT_ENVIRONMENT_URL",
    "SCALEKIT_CLIENT_ID",
    "SCALEKIT_CLIENT_SECRET",
    "SCALEKIT_WEBHOOK_SECRET",
    "SCIM_READINESS_CONFIG",
    "SCIM_READINESS_DEBUG",
    "SCIM_READINESS_DISABLE_PLUGIN_AUTOLOAD",
    "GITHUB_STEP_SUMMARY",
    "NO_COLOR",
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "100")


def spec(
    check_id: str,
    run: RunFn | None = None,
    *,
    cleanup: RunFn | None = None,
    mutates: bool = False,
    needs: tuple[str, ...] = (),
    item: int = 0,
    timeout: float = 30.0,
    target: str = "app",
) -> CheckSpec:
    async def passing(ctx: CheckContext) -> None:
        ctx.findings.passed(f"{check_id} fine")

    return CheckSpec(
        info=CheckInfo(
            id=check_id,
            title=f"Fake {check_id}",
            checklist_item=item,
            needs=tuple(Need(need) for need in needs),
            mutates=mutates,
            docs_url=f"https://docs.example.com/{check_id}",
            mutation_target=target,
            default_timeout_s=timeout,
        ),
        run=run or passing,
        cleanup=cleanup,
        origin=f"tests.{check_id}",
    )


@pytest.fixture
def make_spec() -> Callable[..., CheckSpec]:
    return spec


def write_config(tmp_path: Path, text: str, name: str = "readiness.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Install check modules as a distribution on ``sys.path`` (and return its directory)."""

    def install(modules: dict[str, str], dist: str = "fake-checks") -> Path:
        site = tmp_path / "site"
        site.mkdir(exist_ok=True)
        entry_points = ["[scim_readiness.checks]"]
        for name, source in modules.items():
            (site / f"{name}.py").write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
            entry_points.append(f"{name} = {name}")
        info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text("\n".join(entry_points) + "\n", encoding="utf-8")
        monkeypatch.syspath_prepend(str(site))
        return site

    return install
