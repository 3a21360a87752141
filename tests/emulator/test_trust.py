"""Trust: several --ca-bundle files in one store, and a refused certificate named with its fix.

Every path that connects is tried against real servers on 127.0.0.1 whose CA the client
does not trust: the checker's own HTTPS (webhook preflight, probe, events send), the token
exchange, the Scalekit SDK over gRPC, and the emulator's own deliveries. The CLI runs in a
child process so that its trust (grpc reads its roots once per process) is its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from scim_readiness.clients.http import TlsSettings, ssl_context
from scim_readiness.devstack.emulator import Emulator, start_emulator
from scim_readiness.devstack.tls_ca import LocalCA, ServerCert

SECRET = "whsec_c2NpbS1yZWFkaW5lc3MtZW11bGF0b3ItdGVzdHMhIQ=="
TRUST_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
FIX = "--ca-bundle PATH"


@contextmanager
def https_app(cert: ServerCert) -> Iterator[str]:
    """A small app on 127.0.0.1 over HTTPS: 200 to any POST (a webhook), a user to any GET
    (a probe). Yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", "0")))
            self._answer(b"{}")

        def do_GET(self) -> None:  # noqa: N802
            user = {"id": "u1", "email": "ada@example.com", "active": True}
            self._answer(json.dumps(user).encode())

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = cert.server_context()
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def app_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    """The app's own private CA: trusted by nothing unless named."""
    return LocalCA(tmp_path_factory.mktemp("app-ca"), name="Acme internal CA")


@pytest.fixture(scope="module")
def app_url(app_ca: LocalCA) -> Iterator[str]:
    with https_app(app_ca.issue("127.0.0.1", "localhost")) as url:
        yield url


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TRUST_VARS}
    # The child's grpc trusts only its built-in roots unless told otherwise.
    env.pop("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", None)
    env.update(
        NO_COLOR="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        HOME=str(tmp_path),
        SCALEKIT_CLIENT_SECRET="",
        SCALEKIT_WEBHOOK_SECRET=SECRET,
    )
    env.pop("SCIM_READINESS_DEBUG", None)
    env.update(extra)
    return env


def _cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "scim_readiness", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    return done.returncode, output


def _config(tmp_path: Path, emu: Emulator, webhook_url: str) -> Path:
    path = tmp_path / "readiness.yaml"
    path.write_text(
        f"""
scalekit:
  environment_url: {emu.env_url}
  client_id: {emu.client_id}
  client_secret: ${{SCALEKIT_CLIENT_SECRET}}
  expect: development
  organization_id: {emu.organization_id}
  directory_id: {emu.directory_id}
  timeout_s: 10
webhook:
  url: {webhook_url}/webhooks/scalekit
  secret: ${{SCALEKIT_WEBHOOK_SECRET}}
  allowed_hosts: [127.0.0.1, localhost]
ledger_path: {tmp_path / "ledger.jsonl"}
""",
        encoding="utf-8",
    )
    return path


def _bundle(tmp_path: Path, ca: LocalCA) -> Path:
    """The system's CAs plus ``ca``, as `emulate` prints it for SSL_CERT_FILE."""
    from scim_readiness.devstack.emulator.state_dir import write_trust_bundle

    directory = tmp_path / "bundle"
    directory.mkdir(exist_ok=True)
    return write_trust_bundle(ca, directory)


def test_run_names_the_untrusted_endpoints_and_the_fix(
    tmp_path: Path, app_url: str, app_ca: LocalCA
) -> None:
    with start_emulator() as emu:
        config = _config(tmp_path, emu, app_url)
        env = _env(tmp_path, SCALEKIT_CLIENT_SECRET=emu.client_secret)
        only = ("--only", "environment", "--only", "webhook-endpoint")
        code, out = _cli("run", "-c", str(config), "--format", "plain", *only, env=env)
        assert code == 3, out
        assert f"the TLS certificate of localhost:{emu.port} (token exchange) is not trusted" in out
        assert "unable to get local issuer certificate" in out and FIX in out
        webhook = f"the TLS certificate of {app_url.removeprefix('https://')} is not trusted"
        assert webhook in out, out  # the webhook preflight, the project's httpx client

        # Both CAs named, one flag each: nothing refused, no file concatenated by hand.
        code, out = _cli(
            "run",
            "-c",
            str(config),
            "--format",
            "plain",
            *only,
            "--ca-bundle",
            str(emu.ca_path),
            "--ca-bundle",
            str(app_ca.ca_path),
            env=env,
        )
        assert "not trusted" not in out, out
        assert code in (0, 1), out


def test_the_sdk_over_grpc_names_the_fix_when_only_https_trusts_the_emulator(
    tmp_path: Path, app_url: str
) -> None:
    """The user exported SSL_CERT_FILE and REQUESTS_CA_BUNDLE but not grpc's variable: the
    token exchange succeeds, then the SDK's gRPC handshake is refused, which grpc reports
    only as UNAVAILABLE "failed to connect to all addresses"."""
    with start_emulator() as emu:
        config = _config(tmp_path, emu, app_url)
        bundle = str(_bundle(tmp_path, emu.ca))
        env = _env(
            tmp_path,
            SCALEKIT_CLIENT_SECRET=emu.client_secret,
            SSL_CERT_FILE=bundle,
            REQUESTS_CA_BUNDLE=bundle,
        )
        only = ("--only", "environment")
        code, out = _cli("run", "-c", str(config), "--format", "plain", *only, env=env)
        assert code == 3, out
        assert "(token exchange) is not trusted" not in out, out
        assert f"the TLS certificate of localhost:{emu.port} (" in out, out
        assert "is not trusted (unable to get local issuer certificate)" in out, out
        assert FIX in out and "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH" in out
        assert "failed to connect to all addresses" not in out, out
        assert "ssl_transport_security" not in out, out  # no raw grpc log around the report

        # All three trust lines of the emulator's banner: the run trusts it end to end.
        env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = bundle
        code, out = _cli("run", "-c", str(config), "--format", "plain", *only, env=env)
        assert "not trusted" not in out and code in (0, 1), out


def test_events_send_and_probe_test_name_the_fix(
    tmp_path: Path, app_url: str, app_ca: LocalCA
) -> None:
    env = _env(tmp_path)
    endpoint = app_url.removeprefix("https://")
    code, out = _cli(
        "events",
        "send",
        "user_created",
        "--to",
        f"{app_url}/hook",
        "--secret",
        "SCALEKIT_WEBHOOK_SECRET",
        env=env,
    )
    assert code == 3, out
    refused = f"could not deliver to {app_url}/hook: the TLS certificate of {endpoint}"
    assert f"{refused} is not trusted" in out and FIX in out
    code, out = _cli(
        "events",
        "send",
        "user_created",
        "--to",
        f"{app_url}/hook",
        "--secret",
        "SCALEKIT_WEBHOOK_SECRET",
        "--ca-bundle",
        str(app_ca.ca_path),
        env=env,
    )
    assert code == 0, out

    config = tmp_path / "probe.yaml"
    config.write_text(
        f"probe:\n  kind: http\n  http:\n    user_by_email: {app_url}/users?email={{email}}\n",
        encoding="utf-8",
    )
    code, out = _cli("probe", "test", "-c", str(config), "--email", "ada@example.com", env=env)
    assert code == 1, out
    assert f"the TLS certificate of {endpoint} is not trusted" in out and FIX in out
    code, out = _cli(
        "probe",
        "test",
        "-c",
        str(config),
        "--email",
        "ada@example.com",
        "--ca-bundle",
        str(app_ca.ca_path),
        env=env,
    )
    assert code == 0, out


def test_an_expired_certificate_is_not_blamed_on_trust(tmp_path: Path, app_ca: LocalCA) -> None:
    expired = app_ca.issue(
        "127.0.0.1",
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=10),
        valid_for=dt.timedelta(days=5),
    )
    with https_app(expired) as url:
        code, out = _cli(
            "events",
            "send",
            "user_created",
            "--to",
            f"{url}/hook",
            "--secret",
            "SCALEKIT_WEBHOOK_SECRET",
            "--ca-bundle",
            str(app_ca.ca_path),
            env=_env(tmp_path),
        )
    assert code == 3, out
    assert "is not valid (certificate has expired)" in out, out
    assert FIX not in out


def test_a_second_bad_ca_bundle_is_a_usage_error(tmp_path: Path, app_ca: LocalCA) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n", encoding="utf-8")
    code, out = _cli(
        "events",
        "send",
        "user_created",
        "--to",
        "https://127.0.0.1:9/hook",
        "--secret",
        "SCALEKIT_WEBHOOK_SECRET",
        "--ca-bundle",
        str(app_ca.ca_path),
        "--ca-bundle",
        str(junk),
        env=_env(tmp_path),
    )
    assert code == 2, out
    assert f"--ca-bundle {junk}: no PEM certificates in it" in out


def test_several_bundles_make_one_trust_store(tmp_path: Path) -> None:
    """One client, two servers under two unrelated CAs: both verify, and a third CA's server
    is still refused (the store grew by exactly what was named)."""
    from scim_readiness.clients.scalekit import trust_bundle

    first, second, third = (LocalCA(tmp_path / name) for name in ("one", "two", "three"))
    context = ssl_context(TlsSettings(ca_bundle=(str(first.ca_path), str(second.ca_path))))
    with (
        https_app(first.issue("127.0.0.1")) as one,
        https_app(second.issue("127.0.0.1")) as two,
        https_app(third.issue("127.0.0.1")) as three,
        httpx.Client(verify=context, trust_env=False, timeout=10) as client,
    ):
        assert client.get(f"{one}/u").status_code == 200
        assert client.get(f"{two}/u").status_code == 200
        with pytest.raises(httpx.ConnectError) as refused:
            client.get(f"{three}/u")
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)

    # The file handed to requests and grpc holds the public roots and both CAs.
    combined = Path(str(trust_bundle([str(first.ca_path), str(second.ca_path)]))).read_bytes()
    assert first.cert_pem in combined and second.cert_pem in combined
    assert combined.count(b"BEGIN CERTIFICATE") > 10


def test_emulator_deliveries_name_its_own_ca_bundle_option(
    app_url: str, app_ca: LocalCA, tmp_path: Path
) -> None:
    with start_emulator(delivery_delay_scale=0.001, delivery_attempts=1) as emu:
        emu.register_webhook(f"{app_url}/webhooks", SECRET)
        emu.initial_sync()
        assert emu.deliveries.wait_for(lambda ds: bool(ds and ds[0].attempts), timeout=20)
        error = emu.deliveries.all()[0].attempts[0].error or ""
    assert "the TLS certificate of the webhook endpoint is not trusted" in error, error
    assert "start the emulator with --ca-bundle PATH" in error

    other = LocalCA(tmp_path / "other")
    with start_emulator(
        delivery_delay_scale=0.001, webhook_ca=(str(other.ca_path), str(app_ca.ca_path))
    ) as emu:
        emu.register_webhook(f"{app_url}/webhooks", SECRET)
        sent = emu.initial_sync()
        assert sent > 0
        assert emu.deliveries.wait_delivered(sent, timeout=20)


def test_cleanup_names_the_fix(tmp_path: Path, app_url: str, app_ca: LocalCA) -> None:
    """cleanup removes a recorded test user through the channel that made it (a signed
    user_deleted to the webhook): an untrusted webhook is named as such."""
    from scim_readiness.plugin.ledger import LedgerEntry

    run = "srabcdef0123"
    entry = LedgerEntry(
        run,
        "user",
        f"diruser_{run}lifecycle",
        "events",
        "user-lifecycle",
        "created",
        0.0,
        {
            "email": f"zz-scim-readiness+{run}-lifecycle@scim-readiness.example.invalid",
            "organization_id": "org_60219377000000001",
        },
    )
    with start_emulator() as emu:
        config = _config(tmp_path, emu, app_url)
        (tmp_path / "ledger.jsonl").write_text(entry.to_json() + "\n", encoding="utf-8")
        env = _env(tmp_path, SCALEKIT_CLIENT_SECRET=emu.client_secret)
        code, out = _cli("cleanup", "-c", str(config), env=env)
        assert code == 1, out
        endpoint = app_url.removeprefix("https://")
        assert f"the TLS certificate of {endpoint} is not trusted" in out and FIX in out
        code, out = _cli(
            "cleanup",
            "-c",
            str(config),
            "--ca-bundle",
            str(app_ca.ca_path),
            "--ca-bundle",
            str(emu.ca_path),
            env=env,
        )
    assert "not trusted" not in out, out
    assert code == 0, out
