"""uvicorn's server, made to stop at once when the emulator, the reference app or a test
is done with it.

Stock uvicorn notices a stop request on its next 0.1 s tick, then pauses 0.1 s for
connections to wind down and polls every 0.1 s until they have: 0.1 to 0.3 s per server,
which the demo paid on every run. Here a stop request wakes the server's loop at once,
idle keep-alive connections are dropped instead of closed politely (a polite TLS close
waits for a close_notify that an idle pooled client never sends), and requests still in
flight get the configured grace period, watched every few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import uvicorn

_TICK_S = 0.1  # uvicorn's own tick: the Date header is refreshed every tenth one
_DRAIN_POLL_S = 0.005
_DEFAULT_GRACE_S = 5.0  # when the config sets no graceful-shutdown limit: still bounded
_CLOSE_WAIT_S = 1.0


class PromptServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def request_exit(self) -> None:
        """Ask the server to stop; callable from any thread, takes effect at once."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already closed
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        # uvicorn's loop, but the wait between ticks ends early on request_exit().
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _TICK_S)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        self._abort(idle_only=True)
        for connection in list(self.server_state.connections):
            connection.shutdown()  # ends after the response in flight
        grace = self.config.timeout_graceful_shutdown
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (_DEFAULT_GRACE_S if grace is None else grace)
        while (
            (self.server_state.connections or self.server_state.tasks)
            and not self.force_exit
            and loop.time() < deadline
        ):
            await asyncio.sleep(_DRAIN_POLL_S)
        for task in list(self.server_state.tasks):
            task.cancel()
        self._abort(idle_only=False)
        for server in self.servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), _CLOSE_WAIT_S)
        if not self.force_exit:
            await self.lifespan.shutdown()

    def _abort(self, *, idle_only: bool) -> None:
        for connection in list(self.server_state.connections):
            cycle: Any = getattr(connection, "cycle", None)
            if idle_only and cycle is not None and not cycle.response_complete:
                continue
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
