"""Probes against a real loopback HTTP server and real subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from scim_readiness.clients.http import TlsSettings
from scim_readiness.clients.probe import AppUser, Probe, build_probe
from scim_readiness.config import ProbeSection
from scim_readiness.errors import ProbeError

TOKEN = "probe-token-canary-77"
USERS = [
    {
        "id": f"u{i}",
        "directory_user_id": f"diruser_{i}",
        "email": f"user{i}+tag@example.com",
        "name": f"User {i}",
        "active": i != 2,
        "roles": ["member"] if i else ["admin", "member"],
        "tenant": "acme",
        "attributes": {"department": "eng"},
    }
    for i in range(5)
]


class AppHandler(BaseHTTPRequestHandler):
    release = threading.Event()
    seen_auth: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, status: int, body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (the /slow tests): that is what they test

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.seen_auth.append(self.headers.get("authorization", ""))
        if self.headers.get("authorization") != f"Bearer {TOKEN}":
            self.answer(401, {"error": "unauthorised"})
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/probe/users/by-email":
            found = [u for u in USERS if u["email"] == query["email"][0]]
            self.answer(200, found[0]) if found else self.answer(404, {})
        elif url.path == "/probe/users":
            start = int((query.get("cursor") or ["0"])[0] or 0)
            page = USERS[start : start + 2]
            following = start + 2 if start + 2 < len(USERS) else None
            self.answer(
                200, {"users": page, "next_cursor": None if following is None else str(following)}
            )
        elif url.path == "/probe/loop":
            self.answer(200, {"users": [], "next_cursor": "same"})
        elif url.path.startswith("/probe/users/"):
            wanted = unquote(url.path.rsplit("/", 1)[1])
            found = [u for u in USERS if u["directory_user_id"] == wanted]
            self.answer(200, found[0]) if found else self.answer(404, {})
        elif url.path == "/slow":
            self.release.wait(10)
            self.answer(200, USERS[0])
        elif url.path == "/broken":
            self.answer(500, {"error": "boom"})
        elif url.path == "/html":
            self.answer(200, b"<html>login</html>")
        elif url.path == "/no-email":
            self.answer(200, {"id": "x", "active": True})
        else:
            self.answer(404, {})


@pytest.fixture
def app_url() -> Iterator[str]:
    AppHandler.release.clear()
    AppHandler.seen_auth = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), AppHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        AppHandler.release.set()
        server.shutdown()
        server.server_close()


def http_probe(base: str, **overrides: Any) -> Probe:
    http = {
        "user_by_email": f"{base}/probe/users/by-email?email={{email}}",
        "user_by_id": f"{base}/probe/users/{{directory_user_id}}",
        "list_users": f"{base}/probe/users?cursor={{cursor}}",
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "timeout_s": 2,
    }
    http.update(overrides)
    section = ProbeSection.model_validate({"kind": "http", "http": http})
    return build_probe(section, TlsSettings())


async def collect(probe: Probe) -> list[AppUser]:
    try:
        return [user async for user in probe.list_users()]
    finally:
        await probe.aclose()


def test_http_probe_reads_users_by_email_id_and_pages(app_url: str) -> None:
    async def scenario() -> tuple[AppUser | None, AppUser | None, AppUser | None, list[AppUser]]:
        probe = http_probe(app_url)
        try:
            by_email = await probe.user_by_email("user1+tag@example.com")  # '+' must be encoded
            by_id = await probe.user_by_id("diruser_2")
            missing = await probe.user_by_email("nobody@example.com")
            listed = [u async for u in probe.list_users()]
        finally:
            await probe.aclose()
        return by_email, by_id, missing, listed

    by_email, by_id, missing, listed = asyncio.run(scenario())
    assert by_email == AppUser(
        id="u1",
        directory_user_id="diruser_1",
        email="user1+tag@example.com",
        name="User 1",
        active=True,
        roles=("member",),
        tenant="acme",
        attributes={"department": "eng"},
    )
    assert by_id is not None and by_id.active is False
    assert missing is None
    assert [u.id for u in listed] == ["u0", "u1", "u2", "u3", "u4"]
    assert listed[0].roles == ("admin", "member")
    assert set(AppHandler.seen_auth) == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    ("overrides", "call", "message"),
    [
        ({"user_by_email": "{base}/broken?e={email}"}, "email", "answered HTTP 500"),
        ({"user_by_email": "{base}/html?e={email}"}, "email", "did not answer with JSON"),
        (
            {"user_by_email": "{base}/no-email?e={email}"},
            "email",
            "probe answer lacks an email at 'email'",
        ),
        ({"headers": {"Authorization": "Bearer wrong"}}, "email", "answered HTTP 401"),
        (
            {"user_by_email": "{base}/slow?e={email}", "timeout_s": 0.3},
            "email",
            "did not finish answering within 0.3 s",
        ),
        (
            {"list_users": "{base}/probe/loop?c={cursor}"},
            "list",
            "returned the cursor 'same' twice",
        ),
        (
            {"user_by_id": None, "list_users": None},
            "id",
            "probe.http.user_by_id is not set",
        ),
        (
            {"user_by_email": "http://127.0.0.1:9/x?token=" + TOKEN + "&e={email}"},
            "email",
            "failed",
        ),
    ],
)
def test_http_probe_errors_are_plain_and_never_show_the_token(
    app_url: str, overrides: dict[str, Any], call: str, message: str
) -> None:
    resolved = {
        k: v.replace("{base}", app_url) if isinstance(v, str) else v for k, v in overrides.items()
    }

    async def scenario() -> None:
        probe = http_probe(app_url, **resolved)
        try:
            if call == "email":
                await probe.user_by_email("user1+tag@example.com")
            elif call == "id":
                await probe.user_by_id("diruser_1")
            else:
                [u async for u in probe.list_users()]
        finally:
            await probe.aclose()

    with pytest.raises(ProbeError) as info:
        asyncio.run(scenario())
    assert message in str(info.value)
    assert TOKEN not in str(info.value)


PROBE_SCRIPT = r"""
import json, os, sys, time
users = {u["email"]: u for u in json.loads(os.environ["PROBE_USERS"])}
mode, value = sys.argv[1], sys.argv[2]
if mode == "email":
    print(json.dumps(users.get(value)))
elif mode == "list":
    items = list(users.values())
    start = int(value or 0)
    nxt = start + 3 if start + 3 < len(items) else None
    print(json.dumps({"users": items[start:start + 3], "next_cursor": nxt}))
elif mode == "empty":
    pass
elif mode == "fail":
    print("database is locked", file=sys.stderr)
    sys.exit(4)
elif mode == "garbage":
    print("not json")
elif mode == "hang":
    with open(value, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
"""


def command_probe(tmp_path: Path, **commands: list[str]) -> Probe:
    script = tmp_path / "probe_script.py"
    script.write_text(PROBE_SCRIPT, encoding="utf-8")
    section = ProbeSection.model_validate(
        {
            "kind": "command",
            "command": {
                **{k: [sys.executable, str(script), *v] for k, v in commands.items()},
                "timeout_s": 1,
            },
        }
    )
    return build_probe(section, TlsSettings())


@pytest.fixture(autouse=True)
def _probe_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_USERS", json.dumps(USERS))


def test_command_probe_reads_and_pages(tmp_path: Path) -> None:
    probe = command_probe(
        tmp_path,
        user_by_email=["email", "{email}"],
        list_users=["list", "{cursor}"],
    )

    async def scenario() -> tuple[AppUser | None, AppUser | None, list[AppUser]]:
        found = await probe.user_by_email("user3+tag@example.com")
        missing = await probe.user_by_email("x; rm -rf / $(whoami)@example.com")  # no shell
        return found, missing, await collect(probe)

    found, missing, listed = asyncio.run(scenario())
    assert found is not None and found.id == "u3" and found.tenant == "acme"
    assert missing is None
    assert [u.id for u in listed] == ["u0", "u1", "u2", "u3", "u4"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fail", "{email}"], "exited with status 4: database is locked"),
        (["garbage", "{email}"], "did not print JSON"),
    ],
)
def test_command_probe_errors(tmp_path: Path, argv: list[str], message: str) -> None:
    probe = command_probe(tmp_path, user_by_email=argv)
    with pytest.raises(ProbeError, match=message):
        asyncio.run(probe.user_by_email("user1+tag@example.com"))


def test_command_probe_empty_output_means_not_found(tmp_path: Path) -> None:
    probe = command_probe(tmp_path, user_by_id=["empty", "{directory_user_id}"])
    assert asyncio.run(probe.user_by_id("diruser_1")) is None


def test_command_probe_is_killed_on_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    probe = command_probe(tmp_path, user_by_id=["hang", str(pid_file)])
    with pytest.raises(ProbeError, match=r"did not finish within 1 s and was killed"):
        asyncio.run(probe.user_by_id("diruser_1"))
    pid = int(pid_file.read_text(encoding="utf-8"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break  # gone (and reaped by the probe)
        time.sleep(0.05)
    else:
        pytest.fail(f"probe command {pid} is still running")


def test_command_probe_reports_a_missing_program(tmp_path: Path) -> None:
    section = ProbeSection.model_validate(
        {"kind": "command", "command": {"user_by_email": [str(tmp_path / "nope"), "{email}"]}}
    )
    probe = build_probe(section, TlsSettings())
    with pytest.raises(ProbeError, match="could not start"):
        asyncio.run(probe.user_by_email("a@example.com"))


def test_http_probe_over_https_trusts_exactly_the_ca_bundle(tmp_path: Path) -> None:
    from scim_readiness.devstack.tls_ca import LocalCA

    ca = LocalCA(tmp_path / "ca")
    cert = ca.issue("127.0.0.1")
    AppHandler.release.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), AppHandler)
    server.socket = cert.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    base = f"https://127.0.0.1:{server.server_address[1]}"
    section = ProbeSection.model_validate(
        {
            "kind": "http",
            "http": {
                "user_by_id": f"{base}/probe/users/{{directory_user_id}}",
                "headers": {"Authorization": f"Bearer {TOKEN}"},
                "timeout_s": 5,
            },
        }
    )

    async def lookup(tls: TlsSettings) -> AppUser | None:
        probe = build_probe(section, tls)
        try:
            return await probe.user_by_id("diruser_3")
        finally:
            await probe.aclose()

    try:
        trusted = asyncio.run(lookup(TlsSettings(ca_bundle=str(ca.ca_path))))
        with pytest.raises(ProbeError, match="is not trusted .* --ca-bundle PATH"):
            asyncio.run(lookup(TlsSettings()))
    finally:
        server.shutdown()
        server.server_close()
    assert trusted is not None and trusted.id == "u3"
