"""Start the emulator in a background thread with its own event loop.

Synchronous callers (the CLI, pytest, the bench) get an ``Emulator`` handle; everything the
emulator serves runs on its own thread and a small gRPC worker pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scim_readiness.devstack.emulator.seed import Seed, default_seed
from scim_readiness.errors import ReadinessError

if TYPE_CHECKING:
    from scim_readiness.clients.http import CaBundles
    from scim_readiness.devstack.emulator.delivery import DeliveryLog, Dispatcher
    from scim_readiness.devstack.emulator.grpc_services import Services
    from scim_readiness.devstack.emulator.state import EmulatorState
    from scim_readiness.devstack.emulator.tokens import SigningKey
    from scim_readiness.devstack.tls_ca import LocalCA

START_TIMEOUT_S = 15.0


class EmulatorStartError(ReadinessError):
    """The emulator could not start (port in use, bad seed reference, …)."""


_ca_lock = threading.Lock()
_process_ca: LocalCA | None = None


def process_ca() -> LocalCA:
    """The one local CA of this process.

    grpc reads its trust file once per process, so every emulator (and any other loopback
    server that the SDK must trust) should use certificates from this CA.
    """
    global _process_ca
    with _ca_lock:
        if _process_ca is None:
            from scim_readiness.devstack.tls_ca import LocalCA

            _process_ca = LocalCA(name="scim-readiness emulator CA")
        return _process_ca


def trust_env(ca_path: str | Path) -> None:
    """Make requests and grpc in this process trust ``ca_path`` and keep loopback off proxies.

    Overrides REQUESTS_CA_BUNDLE and GRPC_DEFAULT_SSL_ROOTS_FILE_PATH (grpc reads the latter
    once, at its first TLS handshake, so call this before any).
    """
    from scim_readiness.clients.scalekit import apply_trust

    apply_trust(str(ca_path))


class Emulator:
    """A running emulator. Thread-safe to use from the caller's thread."""

    def __init__(
        self,
        seed: Seed,
        *,
        host: str,
        port: int,
        delivery_delay_scale: float,
        delivery_attempts: int,
        attempt_timeout_s: float,
        max_in_flight: int,
        webhook_ca: CaBundles = None,
        ca: LocalCA | None = None,
        signing_key: SigningKey | None = None,
    ) -> None:
        from scim_readiness.devstack.emulator.state import EmulatorState
        from scim_readiness.devstack.emulator.tokens import process_signing_key

        if signing_key is None:
            # The token key (50-120 ms to make) is made while the servers start, not after.
            threading.Thread(target=process_signing_key, name="emulator-key", daemon=True).start()
        self.webhook_ca = webhook_ca

        self.seed = seed
        self.host = host
        self._requested_port = port
        self._delivery_options = {
            "delay_scale": delivery_delay_scale,
            "attempts": delivery_attempts,
            "attempt_timeout_s": attempt_timeout_s,
            "max_in_flight": max_in_flight,
        }
        self.state: EmulatorState = EmulatorState(seed, signing_key=signing_key)
        self.ca = ca or process_ca()
        self.ca_path: Path = self.ca.ca_path
        self.port = 0
        self.env_url = ""
        self.started_in_s = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._dispatcher: Dispatcher | None = None
        self._services: Services | None = None
        self._shutdown: asyncio.Event | None = None

    # -- facts an app or a check needs ------------------------------------------------------

    @property
    def delivery_attempts(self) -> int:
        return int(self._delivery_options["attempts"])

    def initial_sync(self, directory_id: str | None = None) -> int:
        """Announce the directory as Scalekit's first sync does: ``group_created`` for each
        group, then ``user_created`` for each user, through the normal signed delivery.
        Returns how many events were sent."""
        state = self.state
        with state.lock:
            directory = state.directory(directory_id or self.directory_id)
            groups = list(directory.groups.values())
            users = list(directory.users.values())
            for group in groups:
                state.emit(
                    "organization.directory.group_created",
                    directory.organization_id,
                    state.group_data(directory, group),
                )
            for user in users:
                state.emit(
                    "organization.directory.user_created",
                    directory.organization_id,
                    state.user_data(directory, user),
                )
        return len(groups) + len(users)

    @property
    def client_id(self) -> str:
        return self.state.client_id

    @property
    def client_secret(self) -> str:
        return self.state.client_secret

    @property
    def environment_id(self) -> str:
        return self.state.environment_id

    @property
    def organization_ids(self) -> list[str]:
        return list(self.state.organizations)

    @property
    def organization_id(self) -> str:
        """The first seeded organisation."""
        return next(iter(self.state.organizations))

    @property
    def organization_external_id(self) -> str:
        return self.state.organizations[self.organization_id].external_id

    @property
    def directory_id(self) -> str:
        """The first seeded directory."""
        return next(iter(self.state.directories))

    def scim_url(self, directory_id: str | None = None) -> str:
        directory = self.state.directory(directory_id or self.directory_id)
        return f"{self.env_url}/directory/{directory.id}/scim/v2"

    def scim_token(self, directory_id: str | None = None) -> str:
        return self.state.directory(directory_id or self.directory_id).scim_token

    @property
    def deliveries(self) -> DeliveryLog:
        assert self._dispatcher is not None  # noqa: S101 - set during start
        return self._dispatcher.log

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event emitted so far (delivered or not), oldest first."""
        assert self._dispatcher is not None  # noqa: S101
        with self._dispatcher._lock:
            return list(self._dispatcher.events)

    @property
    def delays(self) -> dict[str, float]:
        """gRPC method name -> seconds to stall before answering (to test hung calls)."""
        assert self._services is not None  # noqa: S101
        return self._services.delays

    def register_webhook(self, url: str, secret: str | None = None) -> str:
        """Deliver every future event to ``url``, signed with ``secret`` (a fresh ``whsec_``
        secret when omitted). Returns the secret."""
        import base64
        import secrets

        assert self._dispatcher is not None  # noqa: S101
        if secret is None:
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self._dispatcher.add_endpoint(url, secret)
        return secret

    def webhook_urls(self) -> list[str]:
        assert self._dispatcher is not None  # noqa: S101
        return [url for url, _ in self._dispatcher.endpoints()]

    def generate_users(self, directory_id: str | None = None, n: int = 1000, **kw: Any) -> int:
        return self.state.generate_users(directory_id or self.directory_id, n, **kw)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Emulator:
        began = time.perf_counter()
        self._thread = threading.Thread(
            target=self._run, name="scim-readiness-emulator", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            self.stop()
            raise EmulatorStartError(f"the emulator did not start within {START_TIMEOUT_S:.0f} s")
        if self._error is not None:
            self.stop()
            error = self._error
            if isinstance(error, OSError):
                raise EmulatorStartError(
                    f"the emulator could not listen on {self.host}:{self._requested_port}: "
                    f"{error.strerror or error}",
                    hint="pick another --port, or 0 for any free port",
                ) from None
            raise EmulatorStartError(f"the emulator could not start: {error}") from error
        self.started_in_s = time.perf_counter() - began
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases stalled gRPC methods
        loop = self._loop
        if loop is not None and self._shutdown is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._shutdown.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            loop.run_until_complete(_drain())
            loop.close()

    def _server_context(self) -> ssl.SSLContext:
        cert = self.ca.issue("localhost", "127.0.0.1")
        context = cert.server_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def _client_context(self) -> ssl.SSLContext:
        # Webhook receivers: the system store plus this process's CA (the reference app and
        # test receivers use it), the checker's own trust policy. The same cached context
        # the checker uses when it trusts this CA: loading the system store twice cost the
        # demo 45 ms.
        from scim_readiness.clients.http import ca_files, trust_context

        return trust_context(self.ca_path, *ca_files(self.webhook_ca))

    async def _main(self) -> None:
        import uvicorn

        from scim_readiness.devstack.emulator.delivery import Dispatcher
        from scim_readiness.devstack.emulator.front import AlpnFront
        from scim_readiness.devstack.emulator.grpc_services import Services, build_grpc_server
        from scim_readiness.devstack.emulator.http_app import build_app
        from scim_readiness.devstack.prompt_server import PromptServer

        loop = asyncio.get_running_loop()
        self._shutdown = asyncio.Event()
        dispatcher = Dispatcher(
            loop,
            environment_id=self.state.environment_id,
            verify=self._client_context(),
            **self._delivery_options,  # type: ignore[arg-type]
        )
        self._dispatcher = dispatcher
        self.state.emit = dispatcher.submit
        for hook in self.seed.webhooks:
            dispatcher.add_endpoint(hook.url, hook.secret)

        services = Services(self.state, self._stopping)
        self._services = services
        grpc_server, grpc_port = build_grpc_server(services)

        # IPPROTO_TCP spelled out: asyncio turns Nagle's algorithm off only on sockets whose
        # protocol number says TCP, and uvicorn writes an answer's head and body apart, so
        # with protocol 0 every answer on a kept-alive connection stalled ~40 ms.
        http_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        http_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        http_sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            build_app(self.state, services),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        http_server = PromptServer(config)
        http_task = loop.create_task(http_server.serve(sockets=[http_sock]))
        front = AlpnFront(
            self._server_context(), h2_port=grpc_port, http_port=http_sock.getsockname()[1]
        )
        try:
            while not http_server.started:
                if http_task.done():
                    http_task.result()
                    raise RuntimeError("the HTTP server stopped during start-up")
                await asyncio.sleep(0.005)
            self.port = await front.start(self.host, self._requested_port)
            self.env_url = f"https://localhost:{self.port}"
            self.state.base_url = self.env_url
            self._ready.set()
            await self._shutdown.wait()
        finally:
            await front.stop()
            http_server.request_exit()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(http_task, timeout=3)
            grpc_server.stop(grace=0)
            await dispatcher.aclose()
            http_sock.close()


async def _drain() -> None:
    """Let closing transports and cancelled tasks finish before the loop goes away."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    await asyncio.sleep(0.01)
    await asyncio.get_running_loop().shutdown_asyncgens()


@contextlib.contextmanager
def start_emulator(
    seed: Seed | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    delivery_delay_scale: float = 1.0,
    delivery_attempts: int = 8,
    attempt_timeout_s: float = 10.0,
    max_in_flight: int = 1,
    webhook_ca: CaBundles = None,
    ca: LocalCA | None = None,
    signing_key: SigningKey | None = None,
) -> Iterator[Emulator]:
    """Run an emulator for the duration of the ``with`` block.

    ``delivery_delay_scale`` multiplies the webhook retry delays (0.001 turns seconds into
    milliseconds for tests). Webhook receivers over HTTPS must present a certificate from
    the system store, from ``process_ca()``, or from ``webhook_ca`` (one PEM file or
    several). The caller must trust ``emulator.ca_path`` (see ``trust_env``). ``ca`` and
    ``signing_key`` replace the process's (``emulate --state-dir`` keeps both across
    restarts).
    """
    emulator = Emulator(
        seed or default_seed(),
        host=host,
        port=port,
        delivery_delay_scale=delivery_delay_scale,
        delivery_attempts=delivery_attempts,
        attempt_timeout_s=attempt_timeout_s,
        max_in_flight=max_in_flight,
        webhook_ca=webhook_ca,
        ca=ca,
        signing_key=signing_key,
    )
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
