"""Run the reference app over HTTPS on loopback in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scim_readiness.devstack.sampleapp.settings import AppSettings

if TYPE_CHECKING:
    from scim_readiness.devstack.sampleapp.store import Store
    from scim_readiness.devstack.tls_ca import ServerCert

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


@dataclass
class RunningApp:
    """A started reference app. URLs use the host it was bound to.

    ``probe`` holds URL templates in the config's probe vocabulary: ``user_by_email``
    (``{email}``), ``user_by_id`` (``{directory_user_id}``) and ``list_users`` (``{cursor}``);
    send ``probe_headers`` with them. ``access`` holds the access probe's ``issue`` (POST,
    probe headers: a session and an API token for a user) and ``check`` (200 or 401 for
    either).
    ``portal_link_url`` wants ``portal_headers``.
    """

    settings: AppSettings
    base_url: str
    webhook_url: str
    health_url: str
    portal_link_url: str
    probe: dict[str, str]
    db_path: Path
    store: Store
    port: int
    http_url: str | None = None
    access: dict[str, str] = field(default_factory=dict)
    _stop: Any = field(default=None, repr=False)

    @property
    def probe_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.probe_token}"}

    @property
    def portal_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.portal_token}"}

    def stop(self) -> None:
        """Shut down (idempotent); in-flight requests get a short grace period."""
        if self._stop is not None:
            stop, self._stop = self._stop, None
            stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Without it, a response's head and body wait on the client's delayed ACK (~40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _redirect_app(https_base: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        target = https_base + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        await send(
            {
                "type": "http.response.start",
                "status": 301,
                "headers": [(b"location", target.encode()), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


@contextlib.contextmanager
def serve_app(
    settings: AppSettings,
    cert: ServerCert,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    http_redirect: bool = False,
    http_redirect_port: int = 0,
) -> Iterator[RunningApp]:
    """Start the app (HTTPS with ``cert``) and stop it on exit.

    Raises RuntimeError (with the reason) when it cannot listen or start within 10 s.

    ``http_redirect`` also serves plain HTTP on ``http_redirect_port`` answering 301 to the
    HTTPS URL (``RunningApp.http_url``), like a production load balancer.
    """
    import uvicorn

    from scim_readiness.devstack.prompt_server import PromptServer
    from scim_readiness.devstack.sampleapp.app import create_app
    from scim_readiness.devstack.sampleapp.portal import PortalLinks
    from scim_readiness.devstack.sampleapp.store import Store

    scratch: Path | None = None
    db_path = settings.db_path
    if db_path is None:
        scratch = Path(tempfile.mkdtemp(prefix="scim-readiness-app-"))
        db_path = scratch / "app.sqlite3"
    unique = not (
        settings.has("create-not-idempotent") or settings.has("racy-duplicate-deliveries")
    )
    store = Store(db_path, unique=unique, case_sensitive_email=settings.has("case-sensitive-email"))
    portal = PortalLinks(settings)
    try:
        sockets = [_bind(host, port)]
    except OSError as exc:
        store.close()
        raise RuntimeError(
            f"the reference app cannot listen on {host}:{port}: {exc.strerror}"
        ) from exc
    actual_port = sockets[0].getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    base_url = f"https://{url_host}:{actual_port}"
    common: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "lifespan": "off",
        "timeout_graceful_shutdown": 1,
        "server_header": False,
    }
    servers = [
        PromptServer(
            uvicorn.Config(
                create_app(settings, store, portal),
                ssl_certfile=str(cert.cert_path),
                ssl_keyfile=str(cert.key_path),
                **common,
            )
        )
    ]
    http_url = None
    if http_redirect:
        try:
            sockets.append(_bind(host, http_redirect_port))
        except OSError as exc:
            sockets[0].close()
            store.close()
            raise RuntimeError(
                f"the reference app cannot listen on {host}:{http_redirect_port}: {exc.strerror}"
            ) from exc
        http_url = f"http://{url_host}:{sockets[1].getsockname()[1]}"
        servers.append(PromptServer(uvicorn.Config(_redirect_app(base_url), **common)))

    failure: list[BaseException] = []

    async def main() -> None:
        await asyncio.gather(
            *(server.serve(sockets=[sock]) for server, sock in zip(servers, sockets, strict=True))
        )

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="scim-readiness-sampleapp", daemon=True)
    thread.start()

    def stop() -> None:
        for server in servers:
            server.request_exit()
        thread.join(STOP_TIMEOUT_S)
        for server in servers:
            server.force_exit = True
        thread.join(STOP_TIMEOUT_S)
        for sock in sockets:
            sock.close()
        portal.close()
        store.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    deadline = time.monotonic() + START_TIMEOUT_S
    while not all(server.started for server in servers):
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            stop()
            reason = repr(failure[0]) if failure else "it did not start in time"
            raise RuntimeError(f"the reference app could not start on {host}: {reason}")
        time.sleep(0.005)

    running = RunningApp(
        settings=settings,
        base_url=base_url,
        webhook_url=f"{base_url}/webhooks/scalekit",
        health_url=f"{base_url}/healthz",
        portal_link_url=f"{base_url}/api/admin-portal-link",
        probe={
            "user_by_email": f"{base_url}/probe/users/by-email?email={{email}}",
            "user_by_id": f"{base_url}/probe/users/{{directory_user_id}}",
            "list_users": f"{base_url}/probe/users?cursor={{cursor}}&limit=500",
        },
        access={
            "issue": f"{base_url}/test-hooks/credentials?directory_user_id={{directory_user_id}}",
            "check": f"{base_url}/api/me",
        },
        db_path=db_path,
        store=store,
        port=actual_port,
        http_url=http_url,
        _stop=stop,
    )
    try:
        yield running
    finally:
        running.stop()
