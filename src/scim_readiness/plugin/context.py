"""What a check receives: config, its own settings, and every client it may use.

Checks get their clients from here (never construct them), so tests hand them real servers on
loopback and the runner controls timeouts, TLS trust and secret redaction in one place.
Heavy clients (the Scalekit SDK) are built lazily on first use and shared by the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from scim_readiness.config import CheckSettings, Config
from scim_readiness.plugin.contract import CheckInfo, Clock, FindingRecorder, Sharing, SystemClock
from scim_readiness.plugin.identities import TestIdentities
from scim_readiness.plugin.ledger import Ledger
from scim_readiness.plugin.options import CheckOptions

if TYPE_CHECKING:
    import httpx

    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.clients.probe import Probe
    from scim_readiness.clients.scalekit import ScalekitGateway


class SharedClients:
    """Clients shared by all checks of one run (one Scalekit connection, not eight)."""

    def __init__(
        self,
        config: Config,
        tls: TlsSettings,
        scalekit_factory: Callable[[], Awaitable[ScalekitGateway]] | None = None,
    ) -> None:
        self.config = config
        self.tls = tls
        self._scalekit_factory = scalekit_factory
        self._scalekit: ScalekitGateway | None = None
        self._scalekit_error: BaseException | None = None
        self._lock = asyncio.Lock()

    async def scalekit(self) -> ScalekitGateway:
        async with self._lock:
            if self._scalekit is not None:
                return self._scalekit
            if self._scalekit_error is not None:
                raise self._scalekit_error
            try:
                if self._scalekit_factory is not None:
                    self._scalekit = await self._scalekit_factory()
                else:
                    from scim_readiness.clients.scalekit import connect

                    self._scalekit = await connect(self.config.scalekit, self.tls)
            except BaseException as exc:
                self._scalekit_error = exc
                raise
            return self._scalekit

    async def aclose(self) -> None:
        if self._scalekit is not None:
            await self._scalekit.aclose()


@dataclass
class CheckContext:
    info: CheckInfo
    config: Config
    settings: CheckSettings
    run_id: str
    # Set by the runner: this check must not change data (--read-only, or production without
    # consent). A check with ``read_only=REDUCED`` runs its reduced mode when it is True.
    read_only: bool
    findings: FindingRecorder
    ledger: Ledger
    identities: TestIdentities
    shared: SharedClients
    probe: Probe | None = None
    clock: Clock = field(default_factory=SystemClock)
    # Set by the runner for a SHARED check: holds the app alone (see app_alone).
    alone: Callable[[], AbstractAsyncContextManager[None]] | None = None

    @property
    def tls(self) -> TlsSettings:
        return self.shared.tls

    @cached_property
    def options(self) -> CheckOptions:
        """The check's options parsed into its model (``CheckInfo.options``), defaults filled
        in; read them typed with ``MyOptions.of(ctx)``. A value that does not fit is a
        ConfigError naming the key (the config loader has normally caught it already)."""
        model = self.info.options
        if model is None:
            # Declares none: its options reach it unchecked, through option().
            return CheckOptions()
        return model.parse(self.settings.options, key=f"checks.{self.info.id}.options")

    def option(self, name: str, default: Any = None) -> Any:
        """One option by name: the parsed value when the check declares an options model,
        otherwise ``checks.<id>.options.<name>`` as configured (or ``default``)."""
        if self.info.options is not None:
            return getattr(self.options, name)
        return self.settings.options.get(name, default)

    def http(self, *, timeout_s: float = 10.0, follow_redirects: bool = False) -> httpx.AsyncClient:
        """An HTTP client that trusts the system store plus ``--ca-bundle``, with bounded
        connect/read/write timeouts. The caller closes it (``async with``)."""
        from scim_readiness.clients.http import make_async_client

        return make_async_client(self.tls, timeout_s=timeout_s, follow_redirects=follow_redirects)

    async def scalekit(self) -> ScalekitGateway:
        """The run's Scalekit client (connects on first use; errors are ScalekitError)."""
        return await self.shared.scalekit()

    def app_alone(self) -> AbstractAsyncContextManager[None]:
        """``async with ctx.app_alone():`` -- the part of a ``sharing="shared"`` check that
        needs the app quiet (it times the app under load, or floods it). On entry the check
        waits until no other shared check of the run is inside its turn (each has finished,
        its cleanup included, or waits for the app alone itself); while it holds the app no
        shared check starts. The wait is part of the check's run, so its timeout bounds it.
        Keep the part short: the shared checks not yet finished wait for it.

        An exclusive check has the app alone already, and a check run outside the runner
        (a test) has nobody to share with: both get a context that does nothing. A check
        that takes no turn (``sharing="free"``) holds the app only when it declares
        ``holds_app`` (a burst that floods it); undeclared: ValueError."""
        if self.alone is not None:
            return self.alone()
        if self.info.sharing_mode is Sharing.FREE and not self.info.holds_app:
            raise ValueError(
                f"check {self.info.id} takes no turn (sharing free), so it cannot hold the app "
                "alone: declare holds_app=True (or sharing shared)"
            )
        return contextlib.nullcontext()


def build_context(
    info: CheckInfo,
    config: Config,
    *,
    run_id: str,
    ledger: Ledger,
    shared: SharedClients,
    probe: Probe | None = None,
    read_only: bool = False,
    settings: CheckSettings | None = None,
    identities: TestIdentities | None = None,
    findings: FindingRecorder | None = None,
    clock: Clock | None = None,
    alone: Callable[[], AbstractAsyncContextManager[None]] | None = None,
) -> CheckContext:
    """The one way to make a :class:`CheckContext` (the runner, the sweep, tests, benches).

    What is left out is derived as the runner derives it: the check's settings from the
    config, the run's test identities from ``test_identities`` in the config, a fresh recorder
    carrying the check's docs link.
    """
    names = config.test_identities
    return CheckContext(
        info=info,
        config=config,
        settings=settings if settings is not None else config.checks.for_check(info.id),
        run_id=run_id,
        read_only=read_only,
        findings=findings if findings is not None else FindingRecorder(info.docs_url),
        ledger=ledger,
        identities=identities
        if identities is not None
        else TestIdentities(
            run_id=run_id, email_domain=names.email_domain, name_prefix=names.name_prefix
        ),
        shared=shared,
        probe=probe,
        clock=clock if clock is not None else SystemClock(),
        alone=alone,
    )
