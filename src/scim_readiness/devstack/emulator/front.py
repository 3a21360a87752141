"""One TLS port, two protocols: route each connection on its negotiated ALPN.

``h2`` goes to the gRPC server, everything else to the HTTP app; both listen on internal
loopback ports without TLS. This is how one port answers the SDK's token request (HTTP/1.1,
``requests``) and its gRPC calls (HTTP/2), as the real service does behind its load balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

_CHUNK = 256 * 1024


class AlpnFront:
    def __init__(self, context: ssl.SSLContext, *, h2_port: int, http_port: int) -> None:
        # Server preference order: a client offering both (curl, Go, browsers) gets HTTP/1.1
        # and reaches the HTTP app; gRPC offers only h2 and gets it.
        context.set_alpn_protocols(["http/1.1", "h2"])
        self.context = context
        self.h2_port = h2_port
        self.http_port = http_port
        self.server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(
            self._handle, host, port, ssl=self.context, ssl_handshake_timeout=10
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        _no_delay(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        ssl_object = writer.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        port = self.h2_port if alpn == "h2" else self.http_port
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout=5
            )
        except (OSError, TimeoutError):
            self._writers.discard(writer)
            writer.close()
            return
        _no_delay(up_writer)
        self._writers.add(up_writer)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except asyncio.CancelledError:
            # Shutting down. Ending normally (not "cancelled") keeps asyncio's stream
            # callback on 3.11 from logging the cancellation as an error.
            pass
        finally:
            for each in (writer, up_writer):
                self._writers.discard(each)
                each.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        writers = list(self._writers)
        for writer in writers:
            # abort, not close: a TLS close waits for the peer's close_notify, which an idle
            # pooled client never sends, and the loop must not end with sockets open.
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True), 2
            )
        if self.server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), timeout=2)


def _no_delay(writer: asyncio.StreamWriter) -> None:
    # Answers are written in pieces (an HTTP head, then its body; each a TLS record). With
    # Nagle's algorithm on, a piece waits for the peer's ACK of the one before, which a
    # kept-alive peer delays by about 40 ms. asyncio turns it off only on sockets whose
    # protocol number reads TCP; setting it here does not depend on how a socket was made.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        # Half-close so the other side sees EOF; a TLS stream cannot half-close, so close it.
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
