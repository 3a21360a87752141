"""uvicorn's server, made to stop promptly when it runs inside a test or the demo."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn


class PromptServer(uvicorn.Server):
    """Idle keep-alive connections are dropped at shutdown instead of closed politely.

    A polite TLS close waits for the client's close_notify, which a client that is still
    open (a test's HTTP client, the checker's pool) never sends; the server would then sit
    out its whole grace period. In-flight requests still get the grace period.
    """

    def _abort(self, *, idle_only: bool) -> None:
        for connection in list(self.server_state.connections):
            cycle: Any = getattr(connection, "cycle", None)
            if idle_only and cycle is not None and not cycle.response_complete:
                continue
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._abort(idle_only=True)
        await super().shutdown(sockets)
        self._abort(idle_only=False)
