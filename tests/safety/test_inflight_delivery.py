"""A delivery cut short by Ctrl-C after it went out may still be applied by the app.

The end-of-run sweep closes a test user as ``never_created`` only when no delivery about it
could have been applied. A delivery whose request was written and whose answer the
interruption stopped us from reading is one the app may apply after the sweep looked (a
threadpool under load): counting it as refused would close the ledger entry and leave an
active test user that no later ``cleanup`` knows of.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scim_readiness.checks import user_lifecycle

from scim_readiness.clients.http import TlsSettings
from scim_readiness.config import CheckSettings, Config
from scim_readiness.events import EventType
from scim_readiness.parts import CheckParts
from scim_readiness.plugin.context import SharedClients, build_context
from scim_readiness.plugin.identities import new_run_id
from scim_readiness.plugin.ledger import Ledger
from scim_readiness.webhooks.test_users import maybe_applied, user_event_data

SECRET = "whsec_" + "QUJD" * 8


class SlowReceiver:
    """Reads each request whole, says so, and never answers (an app busy applying it)."""

    def __init__(self) -> None:
        self.url = ""
        self.received = threading.Event()
        self.stop = asyncio.Event()  # made before the loop runs; only awaited inside it

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines if line)}
        await reader.readexactly(int(headers["content-length"]))
        self.received.set()
        await self.stop.wait()
        writer.close()


@contextmanager
def slow_receiver() -> Iterator[SlowReceiver]:
    state = SlowReceiver()
    ready = threading.Event()
    box: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        box.append(asyncio.get_running_loop())
        server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
        state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/webhooks"
        ready.set()
        async with server:
            await state.stop.wait()
            await asyncio.sleep(0.05)  # the handler closes its connection first

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the receiver did not start"
    try:
        yield state
    finally:
        box[0].call_soon_threadsafe(state.stop.set)
        thread.join(timeout=10)


def test_a_delivery_interrupted_after_it_was_written_counts_as_maybe_applied(
    tmp_path: Path,
) -> None:
    with slow_receiver() as app:
        config = Config.model_validate(
            {
                "scalekit": {"expect": "development", "organization_id": "org_inflight"},
                "webhook": {"url": app.url, "secret": SECRET},
            }
        )
        run_id = new_run_id()
        ctx = build_context(
            user_lifecycle.CHECK,
            config,
            settings=CheckSettings(options={}),
            run_id=run_id,
            ledger=Ledger(tmp_path / "ledger.jsonl", run_id),
            shared=SharedClients(config, TlsSettings()),
        )
        identity = ctx.identities.user("inflight")
        data = user_event_data(identity, "org_inflight")

        async def go() -> None:
            parts = CheckParts(ctx)
            async with parts.senders.sender(app.url, SECRET, parts.event_target(), 30.0) as sender:
                task = asyncio.create_task(
                    sender.send_event("user_created", sender.event(EventType.USER_CREATED, data))
                )
                while not app.received.is_set():
                    await asyncio.sleep(0.005)
                task.cancel()  # what Ctrl-C does to a check waiting for the answer
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                else:
                    raise AssertionError("the delivery was not cut short")

        assert not maybe_applied(identity.directory_user_id)
        asyncio.run(go())
    assert maybe_applied(identity.directory_user_id), (
        "a delivery the app received whole, cut short before its answer, must count as "
        "possibly applied: the sweep would otherwise close its user as never created"
    )
