"""A lean HTTP/1.1 client on asyncio streams, for senders whose own cost must stay out of
the figures: the burst part of ``webhook-endpoint`` and the emulator's webhook delivery.

Only what those need: POST a prepared request on a persistent connection and read the status
and body (Content-Length, chunked, or until close, at most MAX_BODY_BYTES), skipping 1xx
interim answers. The caller bounds each whole request in wall-clock time (``asyncio.timeout``
around ``request``): the reads here have no deadline of their own. httpx costs
over half a millisecond of CPU per request and rechecks every pooled connection on each
one; this costs tens of microseconds. Anything else talks HTTP through httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

#: Answers larger than this are not read; the connection is dropped instead.
MAX_BODY_BYTES = 1 << 20


class HttpError(Exception):
    """The answer could not be read as HTTP/1.1 (message says why)."""


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

    @classmethod
    async def connect(cls, target: Target, context: ssl.SSLContext | None) -> Connection:
        import ssl

        use_tls = target.scheme == "https"
        reader, writer = await asyncio.open_connection(
            target.host,
            target.port,
            ssl=(context or ssl.create_default_context()) if use_tls else None,
            server_hostname=target.host if use_tls else None,
            limit=64 * 1024,
        )
        return cls(reader, writer)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        self.writer.write(data)
        await self.writer.drain()
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
            return status, b""
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            return status, await self._chunked()
        length_text = headers.get(b"content-length")
        if length_text is None:
            self.open = False  # the body runs until the server closes
            return status, await self._until_close()
        try:
            length = int(length_text)
        except ValueError as exc:
            self.open = False
            raise HttpError(f"bad content-length {length_text[:20]!r}") from exc
        if length > MAX_BODY_BYTES:
            self.open = False
            return status, (await reader.read(8192))
        try:
            return status, await reader.readexactly(length)
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
