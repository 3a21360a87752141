"""``send_event`` on the wire: a recording HTTPS receiver on loopback sees exactly the delivery
each mutation describes, and the reference app answers each as a correct receiver should."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from scim_readiness.clients.http import TlsSettings
from scim_readiness.devstack.sampleapp import AppSettings, serve_app
from scim_readiness.devstack.tls_ca import LocalCA, ServerCert
from scim_readiness.errors import TargetError, UsageError
from scim_readiness.events import encode_body
from scim_readiness.webhooks.send import MUTATIONS, SendResult, send_event

SECRET = "whsec_c2NpbS1yZWFkaW5lc3MtdGVzdC12ZWN0b3Ita2V5ISE="
NOW = 1_795_856_460


@dataclass
class Recorder:
    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def last(self) -> tuple[dict[str, str], bytes]:
        return self.requests[-1]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("send-ca"))


@pytest.fixture(scope="module")
def cert(ca: LocalCA) -> ServerCert:
    return ca.issue("127.0.0.1")


@pytest.fixture(scope="module")
def tls(ca: LocalCA) -> TlsSettings:
    return TlsSettings(ca_bundle=str(ca.ca_path))


@pytest.fixture
def recorder(cert: ServerCert) -> Iterator[Recorder]:
    seen: list[tuple[dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's naming
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
            answer = b'{"received": true}'
            self.send_response(202)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = cert.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Recorder(f"https://127.0.0.1:{server.server_address[1]}/hook", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def send(url: str, tls: TlsSettings, mutate: str | None, **options: Any) -> SendResult:
    return asyncio.run(
        send_event("user_created", url, SECRET, mutate=mutate, tls=tls, timeout_s=10, **options)
    )


def hmac_ok(headers: dict[str, str], body: bytes, family: str = "webhook") -> bool:
    """Our own Standard Webhooks check without a clock: is any v1 signature right?"""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers[f'{family}-id']}.{headers[f'{family}-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(part == f"v1,{expected}" for part in headers[f"{family}-signature"].split(" "))


def sdk_verify(headers: dict[str, str], body: bytes) -> bool:
    from scalekit import ScalekitClient

    client = ScalekitClient.__new__(ScalekitClient)
    try:
        return bool(client.verify_webhook_payload(SECRET, headers, body))
    except Exception:
        return False


def test_unmutated_delivery_is_realistic_and_verifies(recorder: Recorder, tls: TlsSettings) -> None:
    result = send(recorder.url, tls, None)
    headers, body = recorder.last
    assert result.status == 202
    assert result.body_excerpt == '{"received": true}'
    assert result.latency_s > 0
    event = json.loads(body)
    assert body == encode_body(event)  # compact, as delivered by Scalekit
    assert event["type"] == "organization.directory.user_created"
    assert event["id"] == result.event_id == headers["webhook-id"] == headers["svix-id"]
    assert event["data"]["email"].endswith("@scim-readiness.example.invalid")
    assert sdk_verify(headers, body)
    assert headers["webhook-signature"] == headers["svix-signature"]
    assert result.as_expected


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_each_mutation_on_the_wire(recorder: Recorder, tls: TlsSettings, mutation: str) -> None:
    result = send(recorder.url, tls, mutation, clock=lambda: NOW)
    headers, body = recorder.last
    ts = str(NOW)
    if mutation == "unsigned":
        assert not {h for h in headers if h.endswith(("-signature", "-timestamp"))}
        return
    if mutation == "svix-only":
        assert "webhook-signature" not in headers and hmac_ok(headers, body, "svix")
        assert headers["svix-timestamp"] == ts
        return
    assert "webhook-signature" in headers
    if mutation == "webhook-only":
        assert "svix-signature" not in headers and hmac_ok(headers, body)
    elif mutation == "wrong-secret":
        assert headers["webhook-signature"].startswith("v1,") and not hmac_ok(headers, body)
    elif mutation == "tampered":
        assert not hmac_ok(headers, body)
        assert json.loads(body)["data"]["email"] == "attacker@scim-readiness.example.invalid"
    elif mutation == "stale":
        assert headers["webhook-timestamp"] == str(NOW - 600) and hmac_ok(headers, body)
    elif mutation == "future":
        assert headers["webhook-timestamp"] == str(NOW + 600) and hmac_ok(headers, body)
    elif mutation == "malformed":
        assert headers["webhook-signature"] == "v1,!!not-base64!!"
    elif mutation == "rotated":
        first, second = headers["webhook-signature"].split(" ")
        assert hmac_ok(headers, body)
        assert not hmac_ok({**headers, "webhook-signature": first}, body)
        assert hmac_ok({**headers, "webhook-signature": second}, body)
    elif mutation == "reformatted":
        assert body != encode_body(json.loads(body)) and b"\n  " in body
        assert hmac_ok(headers, body)
    else:
        pytest.fail(f"no wire expectation for {mutation}")
    # The result never carries a usable signature.
    assert set(result.headers_sent.values()) & {headers["webhook-signature"]} == set()
    assert result.headers_sent["webhook-signature"] == "v1,<redacted>"


def test_fresh_signed_mutations_verify_with_the_sdk(recorder: Recorder, tls: TlsSettings) -> None:
    for mutation in ("webhook-only", "rotated", "reformatted"):
        send(recorder.url, tls, mutation)
        assert sdk_verify(*recorder.last), mutation
    for mutation in ("unsigned", "wrong-secret", "tampered", "stale", "future", "malformed"):
        send(recorder.url, tls, mutation)
        assert not sdk_verify(*recorder.last), mutation


def test_reference_app_answers_every_mutation_correctly(cert: ServerCert, tls: TlsSettings) -> None:
    settings = AppSettings(webhook_secret=SECRET)
    with serve_app(settings, cert) as app:
        results = {m: send(app.webhook_url, tls, m) for m in [None, *MUTATIONS]}
    statuses = {m: r.status for m, r in results.items()}
    assert all(r.as_expected for r in results.values()), statuses
    assert statuses["unsigned"] == statuses["tampered"] == statuses["stale"] == 401
    assert statuses["svix-only"] == 401  # the SDK reads webhook-* headers
    # A receiver that skips verification is caught by the same deliveries.
    with serve_app(
        AppSettings(webhook_secret=SECRET, flaws=frozenset({"no-signature-check"})), cert
    ) as app:
        careless = {m: send(app.webhook_url, tls, m) for m in ("unsigned", "tampered", "stale")}
    assert not any(r.as_expected for r in careless.values())


def test_result_json_never_contains_the_secret(recorder: Recorder, tls: TlsSettings) -> None:
    for mutation in [None, *MUTATIONS]:
        text = json.dumps(send(recorder.url, tls, mutation).to_json())
        assert SECRET not in text and SECRET.removeprefix("whsec_") not in text
        assert "v1,<redacted>" in text or mutation == "unsigned"


def test_bad_input_is_a_usage_error(recorder: Recorder, tls: TlsSettings) -> None:
    with pytest.raises(UsageError, match="user_created"):
        asyncio.run(send_event("user_exploded", recorder.url, SECRET, tls=tls))
    with pytest.raises(UsageError, match="rotated"):
        asyncio.run(send_event("user_created", recorder.url, SECRET, mutate="nope", tls=tls))
    with pytest.raises(UsageError, match="URL"):
        asyncio.run(send_event("user_created", "ftp://x", SECRET, tls=tls))
    with pytest.raises(UsageError, match="secret") as info:
        asyncio.run(send_event("user_created", recorder.url, "whsec_", tls=tls))
    assert recorder.requests == []
    assert "whsec_" not in str(info.value).replace("whsec_ secret", "")


def test_unreachable_and_slow_endpoints_are_target_errors(
    cert: ServerCert, tls: TlsSettings, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    with pytest.raises(TargetError, match="could not deliver"):
        asyncio.run(send_event("user_created", f"https://127.0.0.1:{free}/", SECRET, tls=tls))
    slow = AppSettings(webhook_secret=SECRET, flaws=frozenset({"slow-ack"}), slow_ack_s=60.0)
    with serve_app(slow, cert) as app, pytest.raises(TargetError, match="did not finish answering"):
        asyncio.run(send_event("user_created", app.webhook_url, SECRET, tls=tls, timeout_s=0.5))
    # Our own CA is needed: without it the delivery fails on TLS, never unverified.
    with serve_app(AppSettings(webhook_secret=SECRET), cert) as app:
        with pytest.raises(TargetError, match="could not deliver"):
            asyncio.run(send_event("user_created", app.webhook_url, SECRET))


@pytest.mark.parametrize(
    "event_type",
    [
        "directory_enabled",
        "directory_disabled",
        "user_updated",
        "user_deleted",
        "group_created",
        "group_updated",
        "group_deleted",
    ],
)
def test_every_type_sends_its_shape(recorder: Recorder, tls: TlsSettings, event_type: str) -> None:
    asyncio.run(send_event(event_type, recorder.url, SECRET, tls=tls))
    headers, body = recorder.last
    event = json.loads(body)
    assert event["type"].endswith(event_type)
    assert event["object"] in {"Directory", "DirectoryUser", "DirectoryGroup"}
    assert sdk_verify(headers, body)
    assert Webhook(SECRET).verify(body, headers)["id"] == event["id"]
