"""A probe that breaks on demand: a real HTTPS server on loopback in front of the reference
app's probe (and access-check) routes. It passes every request through, except those whose
URL names ``marker`` (one test user's lookups, or the access check): once the app has
answered ``found_before_failing`` of them with 200, every later one answers HTTP 503 (or, with
``trips``, every one after the first answer for which ``trips(body)`` is true); with
``rewrite``, the answers that pass are rewritten by it. The preflight's known user and the
checks' other reads are left alone, so a round trip meets a probe that fails at a chosen step,
or an app that shows a change late."""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import httpx

from scim_readiness.config import Config
from scim_readiness.devstack.emulator import process_ca


class FaultyProbe:
    def __init__(
        self,
        upstream: str,
        ca_path: str,
        marker: str,
        found_before_failing: int,
        trips: Callable[[bytes], bool] | None = None,
        rewrite: Callable[[bytes], bytes] | None = None,
    ):
        self.upstream = upstream.rstrip("/")
        self.rewrite = rewrite
        self.trips = trips
        self.tripped = False
        self.marker = marker.lower()
        self.found_before_failing = found_before_failing
        self.found = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(verify=ssl.create_default_context(cafile=ca_path))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        context = process_ca().issue("127.0.0.1", "localhost").server_context()
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def _answer(self, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
        ours = self.marker in unquote(target).lower()
        with self._lock:
            broken = self.tripped if self.trips else self.found >= self.found_before_failing
            if ours and broken:
                self.failed += 1
                return 503, b'{"error": "probe unavailable"}'
        response = self._client.get(self.upstream + target, headers=headers)
        body = response.content
        if ours and response.status_code == 200:
            with self._lock:
                self.found += 1
                self.tripped = self.tripped or bool(self.trips and self.trips(body))
                body = self.rewrite(body) if self.rewrite is not None else body
        return response.status_code, body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
                # The probe's bearer token, or the access probe's session cookie or token.
                wanted = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "cookie")
                }
                status, body = probe._answer(self.path, wanted)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def config(self, config: Config, *, secret_in_url: str) -> Config:
        """``config`` with its probe pointed here; ``secret_in_url`` is added to each URL
        as a query parameter, so a test can see it never reaches a finding."""
        probe = config.probe
        assert probe is not None and probe.http is not None
        http = probe.http
        moved: dict[str, str | None] = {}
        for what in ("user_by_email", "user_by_id", "list_users"):
            template: str | None = getattr(http, what)
            if template is not None:
                template = template.replace(self.upstream, self.base_url)
                joiner = "&" if "?" in template else "?"
                template = f"{template}{joiner}key={secret_in_url}"
            moved[what] = template
        http = http.model_copy(update=moved)
        probe = probe.model_copy(update={"http": http})
        return config.model_copy(update={"probe": probe})

    def access_config(self, config: Config) -> Config:
        """``config`` with its access probe's ``check`` pointed here."""
        probe = config.probe
        assert probe is not None and probe.access is not None
        check = probe.access.check
        assert isinstance(check, str)
        access = probe.access.model_copy(
            update={"check": check.replace(self.upstream, self.base_url)}
        )
        return config.model_copy(update={"probe": probe.model_copy(update={"access": access})})

    def __enter__(self) -> FaultyProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


@contextlib.contextmanager
def faulty_probe(
    upstream: str,
    ca_path: str,
    *,
    marker: str,
    found_before_failing: int = 0,
    trips: Callable[[bytes], bool] | None = None,
    rewrite: Callable[[bytes], bytes] | None = None,
) -> Iterator[FaultyProbe]:
    with FaultyProbe(upstream, ca_path, marker, found_before_failing, trips, rewrite) as probe:
        yield probe
