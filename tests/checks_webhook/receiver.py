"""A small, real HTTPS receiver on 127.0.0.1 for endpoint properties the reference app does
not vary: certificates, TLS versions, redirects, a plain-HTTP twin.

Each request is answered by a ``Responder`` (method, path, headers, body) -> (status, headers,
body); requests are recorded so tests can see exactly what went over the wire.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Responder = Callable[[str, str, Mapping[str, str], bytes], tuple[int, dict[str, str], bytes]]


def ok(
    method: str, path: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    return 200, {"content-type": "application/json"}, b'{"ok":true}'


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    port: int
    received: list[Received] = field(default_factory=list)


@contextmanager
def serve(
    responder: Responder = ok,
    *,
    tls: ssl.SSLContext | None = None,
    path: str = "/webhooks/scalekit",
    delay_s: float = 0.0,
) -> Iterator[Receiver]:
    state: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.append(Received(self.command, self.path, headers, body))
            if delay_s:
                time.sleep(delay_s)
            status, extra, payload = responder(self.command, self.path, headers, body)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = _answer  # noqa: N815
        do_GET = _answer  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    scheme = "https" if tls is not None else "http"
    receiver = Receiver(f"{scheme}://127.0.0.1:{port}{path}", port, state)
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
