"""The production guard and --read-only, as a user (and the wire) sees them.

* ``expect: production`` without consent: off a terminal the mutating checks are SKIP with a
  reason naming ``--yes`` and ``checks.allow_mutation``, and nothing is created; on a terminal
  the CLI asks, and only an explicit "yes" lets them run.
* ``--read-only``: every request to the app and to the SCIM endpoint passes through a
  recording proxy; none changes state, and the app and the emulator hold exactly what they
  held before.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scim_readiness.devstack.emulator import process_ca

from .conftest import cli_args, cli_env, leftovers, run_cli, write_config
from .faulty_servers import RecordingProxy

if TYPE_CHECKING:
    from scim_readiness.devstack.demo_stack import Stack

PRODUCTION = {"expect": "production"}
NO_CONSENT = {"allow_mutation": False, "timeout_s": 60}


def _statuses(report_path: Path) -> dict[str, tuple[str, str]]:
    report = json.loads(report_path.read_text())
    return {c["id"]: (c["status"], c["findings"][0]["title"]) for c in report["checks"]}


def test_production_without_consent_skips_mutating_checks_off_a_terminal(
    stack: Stack, tmp_path: Path
) -> None:
    config = write_config(
        stack, tmp_path / "readiness.yaml", scalekit=PRODUCTION, checks=NO_CONSENT
    )
    done = run_cli(
        "run", "-c", str(config), "--ca-bundle", stack.ca_path, "--only", "user-lifecycle",
        "--only", "bad-data", "--json", str(tmp_path / "r.json"), "--format", "plain",
    )  # fmt: skip
    assert "Traceback" not in done.stderr
    statuses = _statuses(tmp_path / "r.json")
    for check in ("user-lifecycle", "bad-data"):
        status, title = statuses[check]
        assert status == "SKIP", statuses
        assert "production" in title and "not allowed" in title, title
    assert "--yes" in done.stdout and "allow_mutation" in done.stdout
    assert not (tmp_path / "ledger.jsonl").exists()
    assert not leftovers(stack)


def test_production_with_yes_runs_them(stack: Stack, tmp_path: Path) -> None:
    config = write_config(
        stack, tmp_path / "readiness.yaml", scalekit=PRODUCTION, checks=NO_CONSENT
    )
    done = run_cli(
        "run", "-c", str(config), "--ca-bundle", stack.ca_path, "--only", "user-lifecycle",
        "--yes", "--json", str(tmp_path / "r.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert _statuses(tmp_path / "r.json")["user-lifecycle"][0] == "PASS"
    assert not leftovers(stack)


def _prompted_run(stack: Stack, tmp_path: Path, answer: bytes) -> tuple[int, str]:
    """Run on a pseudo-terminal (stdin and stderr), answer the prompt, return (exit, screen)."""
    config = write_config(
        stack, tmp_path / "readiness.yaml", scalekit=PRODUCTION, checks=NO_CONSENT
    )
    main, child = pty.openpty()
    args = ["run", "-c", str(config), "--ca-bundle", stack.ca_path, "--only", "user-lifecycle"]
    args += ["--json", str(tmp_path / "r.json"), "--format", "plain"]
    process = subprocess.Popen(
        cli_args(*args), stdin=child, stderr=child, stdout=subprocess.PIPE, env=cli_env()
    )
    os.close(child)
    screen = b""
    answered = False
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:
                    break  # the child closed the terminal
                screen += chunk
            if not answered and b"Type 'yes'" in screen:
                os.write(main, answer)
                answered = True
            if process.poll() is not None and not ready:
                break
        process.communicate(timeout=60)
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert answered, screen.decode(errors="replace")
    return process.returncode, screen.decode(errors="replace")


def test_on_a_terminal_the_cli_asks_and_no_means_skip(stack: Stack, tmp_path: Path) -> None:
    code, screen = _prompted_run(stack, tmp_path, b"no\n")
    assert "user-lifecycle" in screen and "zz-scim-readiness+" in screen
    assert code == 4, screen  # nothing observed and the gap not accepted: never exit 0
    assert _statuses(tmp_path / "r.json")["user-lifecycle"][0] == "SKIP"
    assert not (tmp_path / "ledger.jsonl").exists()


def test_on_a_terminal_yes_lets_mutating_checks_run(stack: Stack, tmp_path: Path) -> None:
    code, screen = _prompted_run(stack, tmp_path, b"yes\n")
    assert code == 0, screen
    assert _statuses(tmp_path / "r.json")["user-lifecycle"][0] == "PASS"
    assert (tmp_path / "ledger.jsonl").exists()
    assert not leftovers(stack)


# ---- --read-only on the wire ----------------------------------------------------------------

STATE_CHANGING_EVENTS = ("organization.directory.user_", "organization.directory.group_")


def _snapshot(stack: Stack) -> dict[str, Any]:
    emu = stack.emulator
    directory = emu.state.directory(emu.directory_id)
    with emu.state.lock:
        users = sorted((u.id, u.email, u.active, tuple(u.groups)) for u in directory.users.values())
        groups = sorted((g.id, g.display_name, tuple(g.members)) for g in directory.groups.values())
    return {
        "app_users": [u.to_json() for u in stack.app.store.list_users(limit=1_000_000)],
        "app_groups": stack.app.store.groups(),
        "directory_users": users,
        "directory_groups": groups,
        "events": len(emu.events),
    }


def test_read_only_sends_no_state_changing_request(stack: Stack, tmp_path: Path) -> None:
    ca = process_ca()
    app, emu = stack.app, stack.emulator
    cert = ca.issue("127.0.0.1", "localhost")
    emulator_base = emu.env_url
    with (
        RecordingProxy(app.base_url, cert.server_context(), stack.ca_path) as app_proxy,
        RecordingProxy(emulator_base, cert.server_context(), stack.ca_path) as scim_proxy,
    ):

        def via(url: str, proxy: RecordingProxy, base: str) -> str:
            return proxy.url(url.removeprefix(base))

        portal = stack.raw_config()["admin_portal"]
        portal["app_link_endpoint"]["url"] = via(app.portal_link_url, app_proxy, app.base_url)
        config = write_config(
            stack,
            tmp_path / "readiness.yaml",
            webhook={
                "url": via(app.webhook_url, app_proxy, app.base_url),
                "health_url": via(app.health_url, app_proxy, app.base_url),
            },
            probe={
                "kind": "http",
                "http": {
                    **{k: via(v, app_proxy, app.base_url) for k, v in app.probe.items()},
                    "headers": {"Authorization": "Bearer ${SCIM_READINESS_PROBE_TOKEN}"},
                },
            },
            scim_idp={
                "url": via(emu.scim_url(), scim_proxy, emulator_base),
                "token": "${SCIM_READINESS_SCIM_TOKEN}",
            },
            admin_portal=portal,
        )
        before = _snapshot(stack)
        done = run_cli(
            "run", "-c", str(config), "--ca-bundle", stack.ca_path, "--read-only",
            "--json", str(tmp_path / "r.json"), "--format", "plain",
        )  # fmt: skip
        after = _snapshot(stack)
    assert "Traceback" not in done.stderr, done.stderr
    statuses = _statuses(tmp_path / "r.json")
    for check in ("user-lifecycle", "group-roles", "bad-data"):
        assert statuses[check][0] == "SKIP", statuses
    # webhook-signature runs its read-only mode: forged deliveries judged, nothing changed.
    assert statuses["webhook-signature"][0] == "PASS", statuses
    assert done.returncode == 4, done.stdout  # a read-only run is not READY
    # The proxy saw the read-only checks' traffic (so the assertions below mean something).
    assert any(m == "GET" and "/probe/" in p for m, p, _ in app_proxy.requests), statuses
    assert any(m == "POST" for m, _, _ in app_proxy.requests), app_proxy.requests
    for method, path, body in app_proxy.requests:
        if method == "POST" and path.startswith("/webhooks/"):
            event_type = str(json.loads(body).get("type", ""))
            assert not event_type.startswith(STATE_CHANGING_EVENTS), (path, event_type)
        else:
            assert method in ("GET", "HEAD", "OPTIONS") or path.startswith("/api/admin-portal"), (
                method,
                path,
            )
    assert all(m in ("GET", "HEAD") for m, _, _ in scim_proxy.requests), scim_proxy.requests
    assert after == before
    assert not (tmp_path / "ledger.jsonl").exists()


def test_no_option_turns_tls_verification_off() -> None:
    for command in ("run", "cleanup", "events"):
        done = run_cli(command, "--help")
        text = done.stdout.lower()
        assert done.returncode == 0, done.stderr
        for word in ("insecure", "no-verify", "skip-verify", "verify-ssl", "--no-tls"):
            assert word not in text, (command, word)


# ---- the stricter of expect and the environment URL -----------------------------------------

LOOPBACK_SPELLINGS = (
    "127.1",
    "0x7f.1",
    "2130706433",
    "0177.0.0.1",
    "127.0.0.1.",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "localhost.",
    "LOCALHOST",
)


def test_every_loopback_spelling_classifies_as_local() -> None:
    import socket

    from scim_readiness.environment_url import UrlClass, classify_environment_url

    for host in LOOPBACK_SPELLINGS:
        verdict = classify_environment_url(f"https://{host}:8443")
        assert verdict.url_class is UrlClass.LOCAL, (host, verdict)
    # The IPv4 spellings really are loopback to this machine's resolver, and the verdict
    # names the address they reach.
    for host in ("127.1", "0x7f.1", "2130706433", "0177.0.0.1"):
        assert socket.inet_aton(host) == socket.inet_aton("127.0.0.1"), host
        assert "127.0.0.1" in classify_environment_url(f"https://{host}").reason
    assert classify_environment_url("https://10.1").url_class is UrlClass.PRIVATE
    assert classify_environment_url("https://acme.example").url_class is UrlClass.PRODUCTION


def test_a_production_environment_url_overrides_expect_development(
    stack: Stack, tmp_path: Path
) -> None:
    # The URL is never contacted: the mutating check only talks to the app's webhook.
    config = write_config(
        stack,
        tmp_path / "readiness.yaml",
        scalekit={"expect": "development", "environment_url": "https://auth.acme.example"},
        checks=NO_CONSENT,
    )
    done = run_cli(
        "run", "-c", str(config), "--ca-bundle", stack.ca_path, "--only", "user-lifecycle",
        "--json", str(tmp_path / "r.json"), "--format", "plain",
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    status, title = _statuses(tmp_path / "r.json")["user-lifecycle"]
    assert status == "SKIP", (status, title)
    assert "production" in title and "auth.acme.example" in title, title
    assert "stricter than expect: development" in title, title
    assert not (tmp_path / "ledger.jsonl").exists()
    assert not leftovers(stack)


# ---- nothing signed over plain http:// to production -----------------------------------------


class _PlainHttpWebhook:
    """A plain-HTTP webhook on loopback that acknowledges everything and records headers."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen: list[dict[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server hook
                self.rfile.read(int(self.headers.get("content-length") or 0))
                seen.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            do_GET = do_POST  # noqa: N815

        self.seen = seen
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhooks/scalekit"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> _PlainHttpWebhook:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_nothing_signed_goes_over_plain_http_to_production_even_with_yes(
    stack: Stack, tmp_path: Path
) -> None:
    signing = ("webhook-signature", "user-lifecycle", "bad-data", "group-roles")
    with _PlainHttpWebhook() as webhook:
        config = write_config(
            stack,
            tmp_path / "readiness.yaml",
            scalekit=PRODUCTION,
            webhook={"url": webhook.url, "health_url": None},
            checks=NO_CONSENT,
        )
        only = [a for check in (*signing, "webhook-endpoint") for a in ("--only", check)]
        done = run_cli(
            "run", "-c", str(config), "--ca-bundle", stack.ca_path, *only, "--yes",
            "--json", str(tmp_path / "r.json"), "--format", "plain",
        )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    findings = {c["id"]: c["findings"] for c in report["checks"]}
    for check in signing:
        # group-roles also compares role assignments (no delivery needed): that part may pass.
        (refused,) = [f for f in findings[check] if f["status"] == "SKIP"]
        title = refused["title"]
        assert "http://" in title and "production" in title, (check, title)
        assert "https://" in refused["fix"], refused
    assert {c["id"]: c["status"] for c in report["checks"]}["webhook-endpoint"] == "FAIL"
    signed = [h for h in webhook.seen if "webhook-signature" in h or "svix-signature" in h]
    assert not signed, signed
    assert done.returncode != 0  # four items not evaluated and one FAIL: never READY
