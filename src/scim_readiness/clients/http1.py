"""A lean HTTP/1.1 client on asyncio streams, for senders whose own cost must stay out of
the figures (the burst part of ``webhook-endpoint``, the emulator's webhook delivery) and for
the webhook checks' deliveries, which must know whether a request was written.

Only what those need: POST a prepared request on a persistent connection and read the status,
headers and body (Content-Length, chunked, or until close, at most MAX_BODY_BYTES), skipping
1xx interim answers. The caller bounds each whole request in wall-clock time
(``asyncio.timeout`` around ``request``): the reads here have no deadline of their own. httpx
costs over half a millisecond of CPU per request and rechecks every pooled connection on each
one; this costs tens of microseconds.

:class:`Pool` keeps connections alive between requests and sends a request again on a new
connection only when it provably never left: the kept connection had been closed by the
server before anything was written (:class:`NotSent`). A request that was written is never
sent twice, whatever became of it: a webhook delivery is not idempotent for every app, and a
duplicate the checker made up would be judged as the app's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

#: Answers larger than this are not read; the connection is dropped instead.
MAX_BODY_BYTES = 1 << 20
#: A kept-alive connection idle longer than this is not reused. Servers close idle ones after
#: a few seconds (Node and uvicorn 5 s, gunicorn 2 s); reusing one the server is closing at
#: that moment would lose a request that was already written.
MAX_IDLE_S = 1.0


class HttpError(Exception):
    """The answer could not be read as HTTP/1.1 (message says why)."""


class NotSent(HttpError):
    """Nothing of the request was written: the server had closed the connection before it.
    Sending it again, on a new connection, cannot make the app see it twice."""


class ConnectFailed(HttpError):
    """No connection (refused, unresolvable, TLS handshake failed): nothing was sent. The
    OSError is the cause."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer: the status, the headers (names lower-cased; a repeated header keeps
    its last value) and the body, cut at MAX_BODY_BYTES."""

    status: int
    headers: Mapping[bytes, bytes]
    body: bytes


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    host_header: str

    @classmethod
    def of(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ValueError(f"invalid port in {url!r}") from None
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        host_header = parts.netloc.rpartition("@")[2]
        return cls(parts.scheme, parts.hostname, port, path, host_header)


class Connection:
    """One persistent HTTP/1.1 connection; request() sends one POST and reads the answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.open = True
        # Requests answered on it, and since when it has waited for the next one.
        self.served = 0
        self.idle_since = time.monotonic()

    @classmethod
    async def connect(cls, target: Target, context: ssl.SSLContext | None) -> Connection:
        """A new connection (TCP, then the TLS handshake for https). Whatever fails or is
        cancelled on the way (a silent server timed out mid-handshake) leaves no socket open."""
        import ssl

        reader, writer = await asyncio.open_connection(target.host, target.port, limit=64 * 1024)
        if target.scheme == "https":
            try:
                await writer.start_tls(
                    context or ssl.create_default_context(), server_hostname=target.host
                )
            except BaseException:
                writer.transport.abort()
                raise
        return cls(reader, writer)

    def closed_by_peer(self) -> bool:
        """Whether the server has closed (or is closing) the connection, as far as its
        bytes have arrived: a request written now would be lost."""
        return self.reader.at_eof() or self.writer.transport.is_closing()

    def reusable(self) -> bool:
        """Whether another request may go on this connection: kept open by both sides, not
        idle long enough for the server to be closing it, and nothing arrived since the last
        answer (on an idle HTTP/1.1 connection that can only be the server closing it: a FIN
        or a TLS close_notify the event loop has not read yet)."""
        if not self.open or self.closed_by_peer():
            return False
        if time.monotonic() - self.idle_since >= MAX_IDLE_S:
            return False
        return not _readable(self.writer)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        answer = await self.exchange(data)
        return answer.status, answer.body

    async def exchange(self, data: bytes) -> Answer:
        """Write ``data`` (a whole request) and read the answer. :class:`NotSent` when the
        server had closed the connection before anything was written."""
        if self.closed_by_peer():
            self.open = False
            raise NotSent("the server had closed the connection")
        self.writer.write(data)
        try:
            await self.writer.drain()
        except OSError as exc:
            # Reset while the body was still going out: an app may answer (413) and close
            # before reading it all, and that answer is the one to report.
            self.open = False
            try:
                return await self._answer()
            except (HttpError, OSError):
                raise exc from None
        answer = await self._answer()
        self.served += 1
        self.idle_since = time.monotonic()
        return answer

    async def _answer(self) -> Answer:
        reader = self.reader
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                self.open = False
                raise HttpError("the connection closed before an answer") from exc
            except asyncio.LimitOverrunError as exc:
                self.open = False
                raise HttpError("answer headers longer than 64 KiB") from exc
            lines = head[:-4].split(b"\r\n")
            status_line = lines[0].split(b" ", 2)
            if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
                self.open = False
                raise HttpError(f"not an HTTP/1.x answer: {lines[0][:60]!r}")
            try:
                status = int(status_line[1])
            except ValueError as exc:
                self.open = False
                raise HttpError(f"bad status line: {lines[0][:60]!r}") from exc
            if status >= 200 or status == 101:
                break  # 1xx interim answers (100 Continue) are skipped
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"connection", b"").lower() == b"close" or status_line[0] == b"HTTP/1.0":
            self.open = False
        if status in (204, 304) or 100 <= status < 200:
            return Answer(status, headers, b"")
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            return Answer(status, headers, await self._chunked())
        length_text = headers.get(b"content-length")
        if length_text is None:
            self.open = False  # the body runs until the server closes
            return Answer(status, headers, await self._until_close())
        try:
            length = int(length_text)
        except ValueError as exc:
            self.open = False
            raise HttpError(f"bad content-length {length_text[:20]!r}") from exc
        if length > MAX_BODY_BYTES:
            self.open = False
            return Answer(status, headers, await reader.read(8192))
        try:
            return Answer(status, headers, await reader.readexactly(length))
        except asyncio.IncompleteReadError as exc:
            self.open = False
            raise HttpError("the connection closed in the middle of the answer") from exc

    async def _until_close(self) -> bytes:
        """The body of an answer without a length: up to MAX_BODY_BYTES, then dropped."""
        body = bytearray()
        while len(body) < MAX_BODY_BYTES and (
            data := await self.reader.read(MAX_BODY_BYTES - len(body))
        ):
            body += data
        return bytes(body)

    async def _chunked(self) -> bytes:
        """A chunked body: kept up to MAX_BODY_BYTES; past that the connection is dropped, so
        an endless body costs neither memory nor the rest of the caller's deadline."""
        body = bytearray()
        reader = self.reader
        try:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    return bytes(body)
                if len(body) + size > MAX_BODY_BYTES:
                    self.open = False
                    return bytes(body)
                body += (await reader.readexactly(size + 2))[:-2]
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            self.open = False
            raise HttpError("a malformed chunked answer") from exc

    def close(self) -> None:
        # Abort rather than close: every answer has been read, and a polite TLS close would
        # wait for the peer's close_notify, which a busy (or broken) endpoint may never send.
        self.open = False
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


def _readable(writer: asyncio.StreamWriter) -> bool:
    """Whether the connection's socket has bytes (or an end of stream) waiting, looked at
    without reading them."""
    import select

    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    try:
        ready, _, _ = select.select([sock.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True  # a socket that cannot be polled is not one to send on
    return bool(ready)


class Pool:
    """Connections to one origin (scheme, host, port), each carrying one request at a time;
    as many open as requests in flight. With ``keep_alive`` a connection whose answer was a
    2xx that left it open serves the next request (:meth:`Connection.reusable`); otherwise
    every request has a connection of its own, handshake included, as independent senders
    would.

    A request that meets a kept connection the server had closed is sent on a new one: it
    was never written (:class:`NotSent`). Any other failure is the caller's to report; the
    connection it happened on is dropped, as is one whose request was cut short by the
    caller's deadline.
    """

    def __init__(
        self, target: Target, context: ssl.SSLContext | None, *, keep_alive: bool = True
    ) -> None:
        self.target = target
        self.context = context
        self.keep_alive = keep_alive
        self._idle: list[Connection] = []
        self.connections = 0  # opened so far

    async def exchange(self, data: bytes) -> Answer:
        """Send ``data`` (a whole request) and read the answer. Raises ConnectFailed when no
        connection could be made (nothing was sent), HttpError or OSError after writing."""
        kept = await self._kept()
        if kept is not None:
            try:
                return await self._on(kept, data)
            except NotSent:
                pass  # closed by the server while idle: nothing left, so a new one takes it
        try:
            fresh = await Connection.connect(self.target, self.context)
        except OSError as exc:
            raise ConnectFailed(str(exc)) from exc
        self.connections += 1
        return await self._on(fresh, data)

    async def _kept(self) -> Connection | None:
        if not self._idle:
            return None
        # One turn of the loop first, so a close the server sent has been seen.
        await asyncio.sleep(0)
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable():
                return connection
            connection.close()
        return None

    async def _on(self, connection: Connection, data: bytes) -> Answer:
        answered = False
        try:
            answer = await connection.exchange(data)
            answered = True
            return answer
        finally:
            # Only after a 2xx: an app may close the connection after a refusal without
            # saying so, maybe a moment after the next request was written, which would then
            # be lost for the client's reasons; a new connection cannot meet that.
            if answered and self.keep_alive and connection.open and 200 <= answer.status < 300:
                self._idle.append(connection)
            else:
                connection.close()

    def close(self) -> None:
        """Drop every kept connection (those in use are dropped by their requests)."""
        while self._idle:
            self._idle.pop().close()
