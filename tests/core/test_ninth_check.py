"""CONTRIBUTING.md's example check, written against scim_readiness.api alone, installed as a
third-party plugin and run by the real CLI against a real server on loopback."""

from __future__ import annotations

import ast
import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scim_readiness.cli.main import main

from .conftest import write_config

ROOT = Path(__file__).resolve().parents[2]


def example_check() -> str:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "CONTRIBUTING.md should hold exactly one Python example"
    return str(blocks[0])


class _Answer(BaseHTTPRequestHandler):
    status = 204

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/webhook"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_example_imports_the_product_through_the_api_only() -> None:
    tree = ast.parse(example_check())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert {m for m in imported if m.startswith("scim_readiness")} == {"scim_readiness.api"}


def test_the_example_check_runs_from_the_cli(
    tmp_path: Path,
    server: str,
    plugin_site: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin_site({"ninth_check": example_check()}, dist="ninth")
    config = write_config(
        tmp_path, f"scalekit:\n  expect: development\nwebhook:\n  url: {server}\n"
    )
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "report.json"
    main(["run", "-c", str(config), "--only", "webhook-answers", "--json", str(report)])
    capsys.readouterr()
    checks = {c["id"]: c for c in json.loads(report.read_text())["checks"]}
    assert checks["webhook-answers"]["status"] == "PASS"
    (finding,) = checks["webhook-answers"]["findings"]
    assert (finding["code"], finding["observed"]) == ("WHA001", "HTTP 204")


def test_the_example_check_skips_without_a_webhook(
    tmp_path: Path,
    plugin_site: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin_site({"ninth_check": example_check()}, dist="ninth")
    config = write_config(tmp_path, "scalekit:\n  expect: development\n")
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "report.json"
    main(["run", "-c", str(config), "--only", "webhook-answers", "--json", str(report)])
    capsys.readouterr()
    checks = {c["id"]: c for c in json.loads(report.read_text())["checks"]}
    assert checks["webhook-answers"]["status"] == "SKIP"
