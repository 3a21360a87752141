"""A TCP proxy on loopback that delays every chunk by D in each direction, and counts.

It stands for the network between the checker and a remote app or Scalekit: the checker is
pointed at the proxy's ports (one listening port per *route*, so each kind of traffic is
counted apart), and the proxy forwards to the real server on 127.0.0.1. Bytes pass through
untouched, so TLS is end to end and certificates stay valid (the host is still 127.0.0.1).

Each chunk read from one side is written to the other side D seconds after it was read, in
order; several chunks can be in flight at once, so the delay is latency, not a bandwidth cap.
With ``connect_rtt`` the first client bytes are held one extra round trip (2 D), as if the
TCP handshake had crossed the same network (connect() on loopback returns at once).

What it counts, per connection:

* an *exchange*: a burst of client-to-server data followed by a burst of server-to-client
  data (one round trip of a request/response protocol);
* whether that client burst carried TLS application data (record type 23): a burst of only
  handshake records is a TLS handshake round trip; TLS 1.3 sends its client Finished with the
  first request, so a TLS 1.3 connection shows one handshake exchange, TLS 1.2 two;
* the ALPN protocols the ClientHello offered (``h2`` is gRPC here), to split a port that
  serves both HTTP/1.1 and gRPC.

Only loopback: it listens on 127.0.0.1 and connects to 127.0.0.1. Bounded: every connection
stops at EOF, after ``MAX_CHUNKS`` chunks, or when the proxy is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

LOOPBACK = "127.0.0.1"
MAX_CHUNKS = 1_000_000  # per direction of one connection: a runaway stops here
READ_SIZE = 65536
MAX_BURSTS_KEPT = 12
TLS_HANDSHAKE, TLS_CCS, TLS_APPDATA = 22, 20, 23


class RecordScanner:
    """Finds the TLS record types that start in a stream of chunks (records span chunks)."""

    def __init__(self) -> None:
        self.header = b""
        self.skip = 0
        self.tls = True

    def feed(self, data: bytes) -> set[int]:
        found: set[int] = set()
        index, size = 0, len(data)
        while index < size and self.tls:  # every pass consumes at least one byte
            if self.skip:
                taken = min(self.skip, size - index)
                self.skip -= taken
                index += taken
                continue
            needed = 5 - len(self.header)
            self.header += data[index : index + needed]
            index += needed
            if len(self.header) < 5:
                break
            kind, length = self.header[0], int.from_bytes(self.header[3:5], "big")
            if kind not in (20, 21, 22, 23) or self.header[1] != 3:
                self.tls = False  # not TLS: every burst then counts as a request
                break
            found.add(kind)
            self.skip, self.header = length, b""
        return found


def client_hello_alpn(data: bytes) -> tuple[str, ...]:
    """The ALPN protocols offered in a ClientHello at the start of ``data`` (() if none)."""
    try:
        if data[0] != TLS_HANDSHAKE or data[5] != 1:
            return ()
        index = 5 + 4 + 2 + 32  # record header, handshake header, version, random
        index += 1 + data[index]  # session id
        index += 2 + int.from_bytes(data[index : index + 2], "big")  # cipher suites
        index += 1 + data[index]  # compression methods
        end = index + 2 + int.from_bytes(data[index : index + 2], "big")
        index += 2
        for _ in range(256):  # bounded: a ClientHello has a few dozen extensions
            if index + 4 > min(end, len(data)):
                break
            kind = int.from_bytes(data[index : index + 2], "big")
            length = int.from_bytes(data[index + 2 : index + 4], "big")
            body = data[index + 4 : index + 4 + length]
            index += 4 + length
            if kind == 16:  # application_layer_protocol_negotiation
                protocols, at = [], 2
                while at < len(body):
                    size = body[at]
                    protocols.append(body[at + 1 : at + 1 + size].decode("ascii", "replace"))
                    at += 1 + size
                return tuple(protocols)
    except IndexError:
        return ()
    return ()


@dataclass
class ConnectionStats:
    route: str
    opened_at: float
    alpn: tuple[str, ...] = ()
    tls: bool = True
    handshake_exchanges: int = 0
    request_exchanges: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    #: the first bursts, for reading a connection's shape: (direction, bytes, record types)
    bursts: list[list[Any]] = field(default_factory=list)
    # the burst in progress: "up" (client to server) or "down"; what the up burst carried
    _direction: str = ""
    _up_types: set[int] = field(default_factory=set)

    def client_data(self, types: set[int]) -> None:
        if self._direction != "up":
            self._direction, self._up_types = "up", set()
            if len(self.bursts) < MAX_BURSTS_KEPT:
                self.bursts.append(["up", 0, []])
        self._up_types |= types
        if self.bursts and self.bursts[-1][0] == "up":
            self.bursts[-1][2] = sorted(set(self.bursts[-1][2]) | types)

    def count(self, size: int) -> None:
        if self.bursts and len(self.bursts) <= MAX_BURSTS_KEPT:
            self.bursts[-1][1] += size

    def server_data(self) -> None:
        if self._direction == "up":
            if self.tls and TLS_APPDATA not in self._up_types:
                self.handshake_exchanges += 1
            else:
                self.request_exchanges += 1
        if self._direction != "down" and len(self.bursts) < MAX_BURSTS_KEPT:
            self.bursts.append(["down", 0, []])
        self._direction = "down"

    @property
    def kind(self) -> str:
        return "gRPC (h2)" if "h2" in self.alpn else "HTTP/1.1"


class DelayProxy:
    """Routes on 127.0.0.1, each forwarding to one loopback port, run on a thread of its own.

    Its own event loop keeps the delays exact while the checker's loop is busy.
    """

    def __init__(self, delay_s: float, *, connect_rtt: bool = False) -> None:
        self.delay_s = delay_s
        self.connect_rtt = connect_rtt
        self.connections: list[ConnectionStats] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="delay-proxy", daemon=True
        )
        self._thread.start()

    def add_route(self, route: str, target_port: int) -> int:
        """Listen on a new loopback port for ``route``; returns that port."""

        async def listen() -> int:
            server = await asyncio.start_server(
                lambda r, w: self._accept(route, target_port, r, w), LOOPBACK, 0
            )
            self._servers.append(server)
            return int(server.sockets[0].getsockname()[1])

        return asyncio.run_coroutine_threadsafe(listen(), self._loop).result(timeout=10)

    def snapshot(self) -> list[ConnectionStats]:
        with self._lock:
            return [
                ConnectionStats(
                    c.route,
                    c.opened_at,
                    c.alpn,
                    c.tls,
                    c.handshake_exchanges,
                    c.request_exchanges,
                    c.bytes_up,
                    c.bytes_down,
                    [list(b) for b in c.bursts],
                )
                for c in self.connections
            ]

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=2)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    # -- the loop's side -----------------------------------------------------------------------

    async def _accept(
        self,
        route: str,
        target_port: int,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101
        self._tasks.add(task)
        stats = ConnectionStats(route, time.monotonic())
        with self._lock:
            self.connections.append(stats)
        try:
            server_reader, server_writer = await asyncio.wait_for(
                asyncio.open_connection(LOOPBACK, target_port), 10
            )
        except (OSError, TimeoutError):
            client_writer.close()
            self._tasks.discard(task)
            return
        # Without connect_rtt nothing is held; with it, nothing reaches the server before
        # the TCP handshake would have completed and the first bytes crossed (3 D).
        hold_until = stats.opened_at + (3 * self.delay_s if self.connect_rtt else 0.0)
        try:
            await asyncio.gather(
                self._pipe(client_reader, server_writer, stats, up=True, hold_until=hold_until),
                self._pipe(server_reader, client_writer, stats, up=False, hold_until=0.0),
            )
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for writer in (client_writer, server_writer):
                writer.close()
            self._tasks.discard(task)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stats: ConnectionStats,
        *,
        up: bool,
        hold_until: float,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        scanner = RecordScanner()

        async def forward() -> None:
            for _ in range(MAX_CHUNKS + 1):
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError):
                        if writer.can_write_eof():
                            writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(forward())
        try:
            for chunk_number in range(MAX_CHUNKS):
                data = await reader.read(READ_SIZE)
                now = time.monotonic()
                with self._lock:
                    if data and up:
                        if chunk_number == 0:
                            stats.alpn = client_hello_alpn(data)
                        stats.client_data(scanner.feed(data))
                        stats.tls = stats.tls and scanner.tls
                        stats.bytes_up += len(data)
                        stats.count(len(data))
                    elif data:
                        stats.server_data()
                        stats.bytes_down += len(data)
                        stats.count(len(data))
                queue.put_nowait((max(now + self.delay_s, hold_until), data))
                if not data:
                    break
            else:
                queue.put_nowait((0.0, b""))
            await sender
        finally:
            sender.cancel()


def tally(connections: list[ConnectionStats]) -> dict[str, dict[str, int]]:
    """Per route (and protocol): connections, handshake and request exchanges, bytes."""
    out: dict[str, dict[str, int]] = {}
    for conn in connections:
        key = f"{conn.route} [{conn.kind}]"
        row = out.setdefault(
            key,
            {"connections": 0, "handshake_exchanges": 0, "request_exchanges": 0, "bytes": 0},
        )
        row["connections"] += 1
        row["handshake_exchanges"] += conn.handshake_exchanges
        row["request_exchanges"] += conn.request_exchanges
        row["bytes"] += conn.bytes_up + conn.bytes_down
    return dict(sorted(out.items()))
