"""Small, real, misbehaving servers on loopback for the fault matrix.

* :class:`FaultyHttpServer` speaks just enough HTTP/1.1 (over TLS or not) to fail in one
  chosen way: never answer, answer headers and stall the body, reset mid-response, 503, a
  non-JSON page, a redirect to itself, a 50 MiB body; or answer in a hostile way: a body
  dripping a byte at a time, an endless chunked body, JSON nested 20,000 deep, a list page
  whose cursor is a megabyte long, a redirect elsewhere (to plain http) and nothing else, and
  an answer that reflects every header and the body of the request.
* :class:`GrpcFaultFront` sits in front of the emulator's TLS port: it reads the TLS
  ClientHello without decrypting it, passes HTTP/1.1 connections (the SDK's token exchange)
  through untouched, and breaks every HTTP/2 connection (gRPC): closed at once (the client
  sees UNAVAILABLE) or held open with no answer (a hanging call).
* :func:`closed_port` and :data:`UNRESOLVABLE_HOST` give connection refused and DNS failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable
from pathlib import Path

# RFC 2606: names under .invalid never resolve.
UNRESOLVABLE_HOST = "scim-readiness-fault.invalid"
HUGE_BODY_BYTES = 50 * 1024 * 1024
HTTP_FAULTS = (
    "hang",
    "headers-then-stall",
    "reset",
    "http-503",
    "non-json",
    "redirect-loop",
    "huge-body",
    "drip",
    "endless-chunked",
    "deep-json",
    "huge-cursor",
    "redirect-only",
    "reflect",
)
_MAX_HEAD = 64 * 1024
DRIP_INTERVAL_S = 0.5
DEEP_JSON_LEVELS = 20_000
HUGE_CURSOR_CHARS = 1_000_000


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def self_signed_context(directory: Path, host: str = "127.0.0.1") -> ssl.SSLContext:
    """A server context whose certificate signed itself (no CA anyone trusts)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "self-signed.pem", directory / "self-signed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    return context


class _LoopThread:
    """An asyncio server in a daemon thread; ``stop`` ends every connection."""

    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None

    async def _serve(self, ssl_context: ssl.SSLContext | None) -> None:
        self._stopping = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self.handle(reader, writer)
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
                pass
            finally:
                tasks.discard(task)
                with contextlib.suppress(Exception):
                    writer.transport.abort()

        server = await asyncio.start_server(
            on_connect,
            "127.0.0.1",
            0,
            ssl=ssl_context,
            ssl_handshake_timeout=10 if ssl_context else None,
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopping.wait()
            server.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Awaitable[None]:
        raise NotImplementedError

    def _run(self, ssl_context: ssl.SSLContext | None) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve(ssl_context))
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    def start(self, ssl_context: ssl.SSLContext | None) -> None:
        self._thread = threading.Thread(target=self._run, args=(ssl_context,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"faulty server did not start: {self._error!r}")

    def stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(10)


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes, bytes]:
    """The request target, head and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > _MAX_HEAD:
        raise OSError("head too large")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = min(int(value.strip()), 8 * 1024 * 1024)
    body = await reader.readexactly(length) if length else b""
    parts = lines[0].split(" ")
    return (parts[1] if len(parts) > 1 else "/"), head, body


class FaultyHttpServer(_LoopThread):
    """Answers every request with the same fault (see ``HTTP_FAULTS``)."""

    def __init__(self, fault: str, ssl_context: ssl.SSLContext | None = None) -> None:
        if fault not in HTTP_FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        super().__init__()
        self.fault = fault
        self.scheme = "https" if ssl_context is not None else "http"
        self._ssl = ssl_context

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> FaultyHttpServer:
        self.start(self._ssl)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target, head, body = await _read_request(reader)
        fault = self.fault
        if fault in ("drip", "endless-chunked"):
            await self._stream_forever(reader, writer)
            return
        if fault == "hang":
            await asyncio.Event().wait()
        if fault == "headers-then-stall":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b'content-length: 4096\r\n\r\n{"users": ['
            )
            await writer.drain()
            await asyncio.Event().wait()
        if fault == "reset":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b'content-length: 4096\r\n\r\n{"users": [{"id": '
            )
            await writer.drain()
            raw = writer.get_extra_info("socket")
            if raw is not None:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if fault == "http-503":
            body = b'{"error": "service unavailable"}'
            writer.write(_response("503 Service Unavailable", "application/json", body))
        elif fault == "non-json":
            body = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
            writer.write(_response("200 OK", "application/json", body))
        elif fault == "redirect-loop":
            writer.write(
                b"HTTP/1.1 302 Found\r\nlocation: "
                + target.encode("latin-1")
                + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
        elif fault == "huge-body":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {HUGE_BODY_BYTES}\r\nconnection: close\r\n\r\n".encode()
            )
            chunk = b" " * (1024 * 1024)
            for _ in range(HUGE_BODY_BYTES // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        elif fault == "deep-json":
            deep = b"[" * DEEP_JSON_LEVELS + b"]" * DEEP_JSON_LEVELS
            writer.write(_response("200 OK", "application/json", deep))
        elif fault == "huge-cursor":
            page = b'{"users": [], "next_cursor": "' + b"c" * HUGE_CURSOR_CHARS + b'"}'
            writer.write(_response("200 OK", "application/json", page))
        elif fault == "redirect-only":
            # Elsewhere, and to plain http: a sender that followed it would leave TLS.
            writer.write(
                b"HTTP/1.1 308 Permanent Redirect\r\nlocation: http://127.0.0.1:"
                + str(closed_port()).encode()
                + b"/moved\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
        elif fault == "reflect":
            writer.write(_reflection(head, body))
        await writer.drain()
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 10)

    async def _stream_forever(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A 200 whose body never ends: a byte every DRIP_INTERVAL_S (``drip``), or 64 KiB
        chunks as fast as the client reads them (``endless-chunked``), until it hangs up."""
        if self.fault == "drip":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b'content-length: 4096\r\n\r\n{"users": ['
            )
            while _still_open(reader, writer):
                await writer.drain()
                await asyncio.sleep(DRIP_INTERVAL_S)
                writer.write(b" ")
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b'transfer-encoding: chunked\r\n\r\n3\r\n{"a\r\n'
        )
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"a" * (64 * 1024))
        while _still_open(reader, writer):
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)  # drain need not yield; the hang-up is seen only if it does


def _still_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Whether the client is still there. Over TLS, ``drain`` does not fail once it hangs up,
    and every write after that is logged: the loops that never end by themselves ask here."""
    return not (writer.is_closing() or reader.at_eof() or reader.exception() is not None)


def _reflection(head: bytes, body: bytes) -> bytes:
    """An answer that hands back all it was sent: each request header as an ``x-echo-``
    header, and the head and body in a JSON body."""
    import json

    lines = head.decode("latin-1").split("\r\n")[1:]
    echoed = [
        f"x-echo-{name.strip().lower()}: {value.strip()}"
        for name, _, value in (line.partition(":") for line in lines if line)
    ]
    content = json.dumps(
        {"request": head.decode("latin-1"), "body": body.decode("utf-8", "replace")}
    ).encode()
    out = ["HTTP/1.1 200 OK", "content-type: application/json", *echoed]
    out += [f"content-length: {len(content)}", "connection: close"]
    return "\r\n".join(out).encode("latin-1", "replace") + b"\r\n\r\n" + content


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


GRPC_FAULTS = ("grpc-unavailable", "grpc-hang")


class GrpcFaultFront(_LoopThread):
    """A TCP front for the emulator: HTTP/1.1 passes, HTTP/2 (gRPC) is broken."""

    def __init__(self, fault: str, upstream_port: int) -> None:
        if fault not in GRPC_FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        super().__init__()
        self.fault = fault
        self.upstream_port = upstream_port
        self.broken = 0

    def __enter__(self) -> GrpcFaultFront:
        self.start(None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = await reader.read(16384)
        # The ALPN extension lists "h2" as a length-prefixed string; HTTP/1.1 clients
        # (requests, httpx here) offer only "http/1.1".
        if b"\x02h2" in hello:
            self.broken += 1
            if self.fault == "grpc-hang":
                await asyncio.Event().wait()
            return  # closed before the handshake finishes: UNAVAILABLE
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(hello)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof()


class RecordingProxy(_LoopThread):
    """A TLS reverse proxy that records every request (method, path, body) it forwards to
    ``upstream`` (an https base URL), so a test can assert what went over the wire."""

    def __init__(self, upstream: str, server_context: ssl.SSLContext, ca_path: str) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.requests: list[tuple[str, str, bytes]] = []
        self._ssl = server_context
        self._ca_path = ca_path

    def url(self, path: str = "") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> RecordingProxy:
        self.start(self._ssl)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import httpx

        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: list[tuple[str, str]] = []
        length = 0
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip(), value.strip()
            if name.lower() == "content-length":
                length = int(value)
            if name.lower() not in ("host", "connection", "content-length", "keep-alive"):
                headers.append((name, value))
        body = await reader.readexactly(length) if length else b""
        self.requests.append((method, target, body))
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=self._ca_path)) as c:
            answer = await c.request(
                method, self.upstream + target, headers=headers, content=body, timeout=30
            )
        out = [f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}".encode()]
        for name, value in answer.headers.items():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                out.append(f"{name}: {value}".encode("latin-1", "replace"))
        out.append(f"content-length: {len(answer.content)}".encode())
        out.append(b"connection: close")
        writer.write(b"\r\n".join(out) + b"\r\n\r\n" + answer.content)
        await writer.drain()
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 10)
