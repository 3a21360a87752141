"""Webhook delivery on the wire: how many deliveries are in flight per endpoint, the order they
arrive in, kept-alive connections, answers that close or stream, TLS trust, and URLs the
emulator cannot deliver to. Everything runs against real receivers on loopback."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scim_readiness.devstack.emulator import Emulator, process_ca, start_emulator
from scim_readiness.devstack.tls_ca import LocalCA

SECRET = "whsec_c2NpbS1yZWFkaW5lc3MtZGVsaXZlcnktdGVzdHMhIQ=="
KEEP_ALIVE = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
CLOSE = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
HTTP10_UNTIL_CLOSE = b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nstored"


@dataclass
class WireReceiver:
    """An HTTP/1.1 receiver on its own event loop thread that records what reaches it.

    With ``hold`` > 0 it answers nothing until ``hold`` requests are in flight at once (then
    ``reached`` is set) and the test opens the gate. ``answers`` are raw answers to send in
    order; a kept-alive 204 once they run out.
    """

    hold: int = 0
    answers: list[bytes] = field(default_factory=list)
    url: str = ""
    ids: list[str] = field(default_factory=list)
    connections: int = 0
    in_flight: int = 0
    peak: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    loop: asyncio.AbstractEventLoop | None = None
    gate: asyncio.Event | None = None

    def open_gate(self) -> None:
        assert self.loop is not None and self.gate is not None
        self.loop.call_soon_threadsafe(self.gate.set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.gate is not None
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(
                    line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if line
                )
                await reader.readexactly(int(headers["content-length"]))
                self.ids.append(headers["webhook-id"])
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                if self.hold and self.in_flight >= self.hold:
                    self.reached.set()
                if self.hold:
                    await asyncio.wait_for(self.gate.wait(), timeout=10)
                self.in_flight -= 1
                answer = self.answers.pop(0) if self.answers else KEEP_ALIVE
                writer.write(answer)
                await writer.drain()
                if answer in (CLOSE, HTTP10_UNTIL_CLOSE):
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@contextmanager
def wire_receiver(
    *, hold: int = 0, answers: list[bytes] | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[WireReceiver]:
    receiver = WireReceiver(hold=hold, answers=list(answers or []))
    ready = threading.Event()
    stop: list[asyncio.Event] = []

    async def main() -> None:
        receiver.loop = asyncio.get_running_loop()
        receiver.gate = asyncio.Event()
        stop.append(asyncio.Event())
        server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0, ssl=tls)
        scheme = "https" if tls else "http"
        receiver.url = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}/hooks?x=1"
        ready.set()
        async with server:
            await stop[0].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the receiver did not start"
    try:
        yield receiver
    finally:
        assert receiver.loop is not None
        receiver.loop.call_soon_threadsafe(receiver.gate.set)  # type: ignore[union-attr]
        receiver.loop.call_soon_threadsafe(stop[0].set)
        thread.join(timeout=10)


def emit(emu: Emulator, count: int) -> list[str]:
    """Toggle the directory ``count`` times; the ids of the events, in order."""
    directory = emu.state.directory(emu.directory_id)
    for index in range(count):
        emu.state.set_directory_enabled(directory, index % 2 == 1)
    return [event["id"] for event in emu.events][-count:]


def test_deliveries_in_flight_reach_the_limit_and_never_exceed_it() -> None:
    with (
        wire_receiver(hold=4) as receiver,
        start_emulator(delivery_delay_scale=0.001, max_in_flight=4) as emu,
    ):
        emu.register_webhook(receiver.url, SECRET)
        ids = emit(emu, 12)
        assert receiver.reached.wait(10), f"never 4 in flight at once (peak {receiver.peak})"
        receiver.open_gate()
        assert emu.deliveries.wait_delivered(12, timeout=10)
        deliveries = emu.deliveries.all()
    assert receiver.peak == 4
    assert receiver.connections == 4  # one kept-alive connection per delivery in flight
    assert sorted(receiver.ids) == sorted(ids)
    assert all(d.status_codes == [204] for d in deliveries)


def test_one_in_flight_delivers_in_the_order_the_events_happened_over_one_connection() -> None:
    with (
        wire_receiver() as receiver,
        start_emulator(delivery_delay_scale=0.001, max_in_flight=1) as emu,
    ):
        emu.register_webhook(receiver.url, SECRET)
        ids = emit(emu, 25)
        assert emu.deliveries.wait_delivered(25, timeout=10)
    assert receiver.ids == ids
    assert receiver.peak == 1
    assert receiver.connections == 1


def test_answers_that_close_the_connection_or_are_chunked_are_read_and_count() -> None:
    answers = [CLOSE, CHUNKED, CHUNKED, HTTP10_UNTIL_CLOSE, KEEP_ALIVE]
    with (
        wire_receiver(answers=answers) as receiver,
        start_emulator(delivery_delay_scale=0.001) as emu,
    ):
        emu.register_webhook(receiver.url, SECRET)
        ids = emit(emu, 5)
        assert emu.deliveries.wait_delivered(5, timeout=10)
        statuses = {d.event_id: d.status_codes for d in emu.deliveries.all()}
    assert [statuses[i] for i in ids] == [[200], [202], [202], [200], [204]]
    assert receiver.ids == ids  # each on its first attempt
    # a new connection after each answer that closed one; chunked answers keep theirs
    assert receiver.connections == 3


def test_https_receiver_trusted_through_the_process_ca_gets_signed_deliveries() -> None:
    cert = process_ca().issue("127.0.0.1")
    with (
        wire_receiver(tls=cert.server_context()) as receiver,
        start_emulator(delivery_delay_scale=0.001) as emu,
    ):
        emu.register_webhook(receiver.url, SECRET)
        ids = emit(emu, 3)
        assert emu.deliveries.wait_delivered(3, timeout=10)
    assert receiver.ids == ids
    assert receiver.connections == 1  # one TLS handshake for all three


def test_https_receiver_with_an_untrusted_certificate_is_not_delivered_to(
    tmp_path: Path,
) -> None:
    stranger = LocalCA(tmp_path / "ca", name="some other CA").issue("127.0.0.1")
    with (
        wire_receiver(tls=stranger.server_context()) as receiver,
        start_emulator(delivery_delay_scale=0.001, delivery_attempts=2) as emu,
    ):
        emu.register_webhook(receiver.url, SECRET)
        emit(emu, 1)
        assert emu.deliveries.wait_idle(timeout=10)
        (delivery,) = emu.deliveries.all()
    assert not delivery.delivered and delivery.finished
    assert [a.status for a in delivery.attempts] == [None, None]
    error = delivery.attempts[0].error or ""
    assert error.startswith("could not connect: ")
    assert "is not trusted (unable to get local issuer certificate)" in error
    assert receiver.ids == []


def test_the_webhook_ca_option_makes_such_a_receiver_trusted(tmp_path: Path) -> None:
    theirs = LocalCA(tmp_path / "ca", name="their CA")
    cert = theirs.issue("127.0.0.1")
    with (
        wire_receiver(tls=cert.server_context()) as receiver,
        start_emulator(delivery_delay_scale=0.001, webhook_ca=theirs.ca_path) as emu,
    ):
        emu.register_webhook(receiver.url, SECRET)
        ids = emit(emu, 1)
        assert emu.deliveries.wait_delivered(1, timeout=10)
    assert receiver.ids == ids


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hooks", "http:///no-host"])
def test_a_url_that_cannot_be_delivered_to_is_said_in_plain_words(url: str) -> None:
    with start_emulator(delivery_delay_scale=0.001, delivery_attempts=2) as emu:
        emu.register_webhook(url, SECRET)
        emit(emu, 1)
        assert emu.deliveries.wait_idle(timeout=10)
        (delivery,) = emu.deliveries.all()
    assert delivery.finished and not delivery.delivered
    assert [a.error for a in delivery.attempts] == [f"not an http(s) URL: {url!r}"] * 2


def test_every_endpoint_gets_every_event_in_the_order_the_events_happened() -> None:
    with (
        wire_receiver() as first,
        wire_receiver() as second,
        start_emulator(delivery_delay_scale=0.001, max_in_flight=1) as emu,
    ):
        emu.register_webhook(first.url, SECRET)
        emu.register_webhook(second.url, SECRET)
        ids = emit(emu, 40)
        assert emu.deliveries.wait_delivered(80, timeout=10)
        deliveries = emu.deliveries.all()
    assert first.ids == second.ids == ids
    assert sorted(d.endpoint for d in deliveries) == sorted([first.url, second.url] * 40)
