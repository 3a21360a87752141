"""PromptServer: a stop request ends the server without dropping a response in flight, and
an idle keep-alive client does not hold it for the grace period."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from scim_readiness.devstack.prompt_server import PromptServer

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

GRACE_S = 30  # far longer than any join below: waiting it out would fail the test


def app_with_gate(entered: threading.Event, release: threading.Event) -> Any:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["path"] == "/slow":
            entered.set()
            while not release.is_set():
                await asyncio.sleep(0.005)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    return app


@contextmanager
def running(app: Any) -> Iterator[tuple[PromptServer, threading.Thread, str]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = PromptServer(
        uvicorn.Config(app, lifespan="off", log_level="warning", timeout_graceful_shutdown=GRACE_S)
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        for _ in range(1000):
            if server.started:
                break
            thread.join(0.01)
        assert server.started
        yield server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.force_exit = True
        server.request_exit()
        thread.join(10)
        sock.close()


def test_stop_request_lets_the_response_in_flight_finish() -> None:
    entered, release = threading.Event(), threading.Event()
    answers: list[httpx.Response] = []
    with running(app_with_gate(entered, release)) as (server, thread, url):
        client = threading.Thread(target=lambda: answers.append(httpx.get(f"{url}/slow")))
        client.start()
        assert entered.wait(10)
        server.request_exit()  # from another thread, while /slow is still being answered
        thread.join(0.2)
        assert thread.is_alive(), "the server stopped before its response in flight was sent"
        release.set()
        client.join(10)
        thread.join(10)
        assert not thread.is_alive()
    assert [(a.status_code, a.text) for a in answers] == [(200, "done")]


def test_idle_keep_alive_client_does_not_hold_the_server() -> None:
    with (
        running(app_with_gate(threading.Event(), threading.Event())) as (server, thread, url),
        httpx.Client() as client,
    ):
        assert client.get(f"{url}/").status_code == 200  # the connection stays pooled
        server.request_exit()
        thread.join(10)
        assert not thread.is_alive(), "an idle keep-alive connection held the server"


def test_stop_requested_before_start_ends_the_server_after_start_up() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = PromptServer(uvicorn.Config(app_with_gate(threading.Event(), threading.Event())))
    server.request_exit()
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    thread.join(10)
    sock.close()
    assert not thread.is_alive()
