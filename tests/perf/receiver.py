"""A minimal asyncio HTTP/1.1 webhook receiver on 127.0.0.1 (plain or TLS), in its own thread.

It verifies every Standard Webhooks signature it receives (with the ``standardwebhooks``
library, independently of the code under test), records what it saw, and can be made slow,
failing, chunked or connection-closing, so the burst sender is tested against real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# status for the n-th request (0-based)
StatusFor = Callable[[int], int]


@dataclass
class Receiver:
    url: str
    port: int
    secret: str
    delay_s: float = 0.0
    status_for: StatusFor = lambda n: 204
    chunked: bool = False
    close_each: bool = False
    echo_headers: bool = False
    ids: list[str] = field(default_factory=list)
    bad_signatures: int = 0
    svix_mismatch: int = 0
    connections: int = 0
    open_now: int = 0
    peak_open: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)


@contextlib.contextmanager
def serve(
    secret: str,
    *,
    tls: ssl.SSLContext | None = None,
    path: str = "/webhooks/scalekit",
    **behaviour: object,
) -> Iterator[Receiver]:
    verifier = Webhook(secret)
    ready = threading.Event()
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
    box: list[Receiver] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rec = box[0]
        rec.connections += 1
        rec.open_now += 1
        rec.peak_open = max(rec.peak_open, rec.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers: dict[str, str] = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                rec.in_flight += 1
                rec.peak_in_flight = max(rec.peak_in_flight, rec.in_flight)
                with rec._lock:
                    n = len(rec.ids)
                    rec.ids.append(headers.get("webhook-id", ""))
                try:
                    verifier.verify(body, headers)
                except WebhookVerificationError:
                    rec.bad_signatures += 1
                if any(
                    headers.get(f"svix-{part}") != headers.get(f"webhook-{part}")
                    for part in ("id", "timestamp", "signature")
                ):
                    rec.svix_mismatch += 1
                if rec.delay_s:
                    await asyncio.sleep(rec.delay_s)
                rec.in_flight -= 1
                status = rec.status_for(n)
                payload = (
                    json.dumps({"echo": headers.get("webhook-signature", "")}).encode()
                    if rec.echo_headers
                    else b'{"ok":true}'
                )
                lines = [f"HTTP/1.1 {status} X", "content-type: application/json"]
                if rec.close_each:
                    lines.append("connection: close")
                if status == 204:
                    lines.append("content-length: 0")
                    payload = b""
                elif rec.chunked:
                    lines.append("transfer-encoding: chunked")
                    half = len(payload) // 2
                    payload = (
                        b"".join(
                            b"%x\r\n%s\r\n" % (len(part), part)
                            for part in (payload[:half], payload[half:])
                        )
                        + b"0\r\n\r\n"
                    )
                else:
                    lines.append(f"content-length: {len(payload)}")
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
                await writer.drain()
                if rec.close_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            rec.open_now -= 1
            writer.close()

    writers: set[asyncio.StreamWriter] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            await handle(reader, writer)
        finally:
            writers.discard(writer)

    async def main() -> None:
        server = await asyncio.start_server(tracked, "127.0.0.1", 0, ssl=tls)
        port = server.sockets[0].getsockname()[1]
        scheme = "https" if tls is not None else "http"
        box.append(Receiver(f"{scheme}://127.0.0.1:{port}{path}", port, secret, **behaviour))  # type: ignore[arg-type]
        done = asyncio.Event()
        stop.append((asyncio.get_running_loop(), done))
        ready.set()
        await done.wait()
        server.close()
        for writer in list(writers):
            writer.transport.abort()
        for _ in range(50):  # let the handlers see the aborted connections and end
            if not writers:
                break
            await asyncio.sleep(0.01)

    def run() -> None:
        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True, name="perf-receiver")
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the test receiver did not start")
    try:
        yield box[0]
    finally:
        loop, done = stop[0]
        loop.call_soon_threadsafe(done.set)
        thread.join(10)
