"""The sender's connections on the wire: deliveries share kept-alive connections, one the app
closed is replaced without the delivery failing, a written delivery is never sent twice, and
independent deliveries go out side by side. Real receivers on loopback, counted by the receiver.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from scim_readiness.checks import webhook_signature

from scim_readiness.clients.http1 import Connection, Target
from scim_readiness.events import EventType, directory_data
from scim_readiness.parts import CheckParts
from scim_readiness.webhooks.sender import Outcome

from .conftest import MakeContext

REFUSED = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n"
OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'


@dataclass
class Receiver:
    """Answers each request by the next word of ``plan`` (then ``ok``): ``ok`` keeps the
    connection, ``then-close`` answers and closes without saying so, ``drop`` reads the
    request and closes without answering, ``refuse`` answers 401 and keeps the connection."""

    plan: list[str] = field(default_factory=list)
    url: str = ""
    ids: list[str] = field(default_factory=list)
    connections: int = 0
    in_flight: int = 0
    peak: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")[1:]
                headers = dict(line.split(": ", 1) for line in lines if line)
                await reader.readexactly(int(headers["content-length"]))
                self.ids.append(headers["webhook-id"])
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                await asyncio.sleep(0.02)  # long enough for deliveries in flight to overlap
                self.in_flight -= 1
                word = self.plan.pop(0) if self.plan else "ok"
                if word != "drop":
                    writer.write(REFUSED if word == "refuse" else OK)
                    await writer.drain()
                if word not in ("ok", "refuse"):
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@contextmanager
def receiver(plan: list[str] | None = None) -> Iterator[Receiver]:
    state = Receiver(plan=list(plan or []))
    ready = threading.Event()
    loop_box: list[asyncio.AbstractEventLoop] = []
    stop_box: list[asyncio.Event] = []

    async def main() -> None:
        loop_box.append(asyncio.get_running_loop())
        stop_box.append(asyncio.Event())
        server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
        state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/webhooks"
        ready.set()
        async with server:
            await stop_box[0].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the receiver did not start"
    try:
        yield state
    finally:
        loop_box[0].call_soon_threadsafe(stop_box[0].set)
        thread.join(timeout=10)


def deliver(
    make_context: MakeContext, url: str, count: int, *, fresh: bool = False, gap_s: float = 0.0
) -> list[Outcome]:
    ctx = make_context(webhook_signature, url=url)

    async def go() -> list[Outcome]:
        parts = CheckParts(ctx)
        async with parts.senders.sender(
            url, "whsec_" + "QUJD" * 8, parts.event_target(), 5.0, fresh_connections=fresh
        ) as sender:
            data = directory_data(id="dir_test", organization_id="org_test")
            outcomes: list[Outcome] = []
            for n in range(count):
                event = sender.event(EventType.DIRECTORY_ENABLED, data)
                outcomes.append(await sender.send_event(f"n{n}", event))
                await asyncio.sleep(gap_s)
            return outcomes

    return asyncio.run(go())


def test_sequential_deliveries_share_one_kept_alive_connection(make_context: MakeContext) -> None:
    with receiver() as app:
        outcomes = deliver(make_context, app.url, 5)
    assert [o.status for o in outcomes] == [200] * 5
    assert app.connections == 1
    assert len(set(app.ids)) == 5


def test_fresh_connections_open_one_connection_per_delivery(make_context: MakeContext) -> None:
    with receiver() as app:
        outcomes = deliver(make_context, app.url, 3, fresh=True)
    assert [o.status for o in outcomes] == [200] * 3
    assert app.connections == 3


def test_a_connection_the_app_closed_is_replaced_and_no_delivery_fails(
    make_context: MakeContext,
) -> None:
    """An app that closes a connection after answering, without ``connection: close`` (as
    some do after a refusal, and every server does to an idle one): the next delivery finds
    it closed before writing anything, goes out on a new one, and every delivery reaches the
    app exactly once. (The gap lets the close arrive first, as it does when a server closes
    at once; one that closes later than the next request leaves; that delivery's loss is
    reported, not retried: see the next test.)"""
    with receiver(["then-close", "ok", "then-close", "ok"]) as app:
        outcomes = deliver(make_context, app.url, 4, gap_s=0.05)
    assert [o.status for o in outcomes] == [200] * 4, [o.summary() for o in outcomes]
    assert len(app.ids) == len(set(app.ids)) == 4
    assert app.connections == 3


def test_after_a_refusal_the_next_delivery_takes_a_new_connection(
    make_context: MakeContext,
) -> None:
    """An app may close a connection after refusing a delivery, without saying so and after
    the next request is on its way: so a connection that carried a refusal is not reused."""
    with receiver(["ok", "refuse", "ok", "ok"]) as app:
        outcomes = deliver(make_context, app.url, 4)
    assert [o.status for o in outcomes] == [200, 401, 200, 200]
    assert app.connections == 2


def test_a_written_delivery_is_never_sent_twice(make_context: MakeContext) -> None:
    """The app reads a delivery on a kept connection and closes without answering: that is
    the app's answer (none), reported as such; the delivery is not sent again."""
    with receiver(["ok", "drop"]) as app:
        outcomes = deliver(make_context, app.url, 2)
    first, second = outcomes
    assert first.accepted
    assert second.status is None and not second.never_sent
    assert "closed" in (second.error or "")
    assert second.event_id is not None and app.ids.count(second.event_id) == 1


def test_independent_deliveries_go_out_side_by_side(make_context: MakeContext) -> None:
    with receiver() as app:
        ctx = make_context(webhook_signature, url=app.url)

        async def go() -> list[Outcome]:
            parts = CheckParts(ctx)
            unopened = parts.senders.sender(
                app.url, "whsec_" + "QUJD" * 8, parts.event_target(), 5.0
            )
            async with unopened as s:
                data = directory_data(id="dir_test", organization_id="org_test")
                batch = [(f"n{n}", s.event(EventType.DIRECTORY_ENABLED, data)) for n in range(6)]
                outcomes = await s.send_events(batch, concurrency=3)
                assert [o.label for o in outcomes] == [label for label, _ in batch]
                assert [o.event_id for o in outcomes] == [e["id"] for _, e in batch]
                return outcomes

        outcomes = asyncio.run(go())
    assert all(o.accepted for o in outcomes)
    assert app.peak == 3  # never more in flight than asked, and that many at once
    assert app.connections == 3


def test_a_tls_handshake_cut_short_leaves_no_socket_open() -> None:
    """A server that accepts TCP and never answers the ClientHello: the caller's deadline
    ends the handshake, and the socket is closed then, not left to the garbage collector."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]

    async def attempt() -> None:
        try:
            async with asyncio.timeout(0.2):
                await Connection.connect(Target.of(f"https://127.0.0.1:{port}/"), None)
        except TimeoutError:
            pass
        for _ in range(3):  # let the aborted transport run its callbacks
            await asyncio.sleep(0)

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            asyncio.run(attempt())
            gc.collect()
    finally:
        silent.close()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
