"""A check whose declaration names its body with `deferred`: listing reads the declaration
only, running imports the body, and a missing or broken body is a clear error, never a
traceback or a silent PASS."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from scim_readiness.cli.main import main
from scim_readiness.engine.registry import discover
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.model import Status

from .test_runner import config

DECLARATION = """
    from scim_readiness.api import CheckInfo, deferred
    CHECK = CheckInfo(id="split", title="Split in two", checklist_item=0)
    run = deferred("split_body", "run")
    cleanup = deferred("split_body", "cleanup")
"""
BODY = """
    import pathlib
    pathlib.Path(__file__).with_name("imported").write_text("yes")
    async def run(ctx):
        ctx.findings.passed("the body ran", observed="imported on the first call")
    async def cleanup(ctx):
        pathlib.Path(__file__).with_name("cleaned").write_text(ctx.run_id)
"""


@pytest.fixture(autouse=True)
def _fresh_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each test installs its own split_check and split_body; the import system must not hand
    # it the previous test's.
    for name in ("split_check", "split_body"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def install(plugin_site: Callable[..., Path], declaration: str, body: str | None) -> Path:
    site = plugin_site({"split_check": declaration}, dist="split")
    if body is not None:
        (site / "split_body.py").write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return site


def run_split() -> dict[str, object]:
    specs = [spec for spec in discover() if spec.info.id == "split"]
    report = asyncio.run(run_suite(config(ids=("split",)), RunOptions(), specs=specs))
    (result,) = report.checks
    return {"status": result.status, "titles": [f.title for f in result.findings]}


def test_listing_reads_the_declaration_and_running_imports_the_body(
    plugin_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site = install(plugin_site, DECLARATION, BODY)
    assert main(["checks", "--format", "json"]) == 0
    assert '"split"' in capsys.readouterr().out
    assert not (site / "imported").exists()

    outcome = run_split()
    assert outcome == {"status": Status.PASS, "titles": ["the body ran"]}
    assert (site / "imported").read_text() == "yes"
    assert (site / "cleaned").read_text() != ""


def test_a_misspelt_body_fails_at_discovery(
    plugin_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    install(plugin_site, DECLARATION.replace('"split_body"', '"split_bodyy"'), BODY)
    assert main(["checks"]) == 2
    err = capsys.readouterr().err
    assert "check body split_bodyy does not exist" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("raise ImportError('no module named requests_oauthlib')", "ImportError: no module"),
        ("async def cleanup(ctx):\n    pass", "check body split_body defines no run()"),
    ],
    ids=["import fails", "no run"],
)
def test_a_broken_body_is_the_checks_error_not_a_traceback(
    plugin_site: Callable[..., Path], body: str, said: str
) -> None:
    install(plugin_site, DECLARATION, body)
    outcome = run_split()
    assert outcome["status"] is Status.ERROR
    titles = outcome["titles"]
    assert isinstance(titles, list)
    assert any(said in title for title in titles), titles
