"""Reading other people's HTTP answers: a size cap on bodies and one plain description of
what went wrong, shared by every place that calls an app, a probe or an endpoint over HTTP.

httpx is imported inside the functions, so importing this module costs nothing at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

#: The most a webhook answer or a portal-link endpoint's answer may hold.
MAX_ANSWER_BYTES = 1024 * 1024
#: The most one probe answer (a list page can be large) may hold.
MAX_PROBE_ANSWER_BYTES = 8 * 1024 * 1024
#: The most a SCIM endpoint's answer (one resource, or one list page) may hold.
MAX_SCIM_ANSWER_BYTES = 4 * 1024 * 1024

CUT_SHORT = "the connection was closed or reset before a complete answer"
_SPACES = re.compile(r"\s+")


class AnswerTooLarge(Exception):
    """An answer's body is larger than the cap: it was not read to its end."""

    def __init__(self, cap: int, host: str | None = None) -> None:
        self.cap = cap
        self.host = host
        where = f" from {host}" if host else ""
        super().__init__(f"answer{where} larger than {cap:,} bytes (not read further)")


def _host(exc: BaseException) -> str | None:
    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when it has none
        return None
    try:
        netloc = request.url.netloc
    except AttributeError:
        return None
    return netloc.decode("ascii", "replace") if isinstance(netloc, bytes) else str(netloc)


def cut_short(exc: BaseException) -> bool:
    """Whether the connection ended before the answer did (closed, reset, incomplete)."""
    import httpx

    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        return True
    seen: list[BaseException] = []
    item: BaseException | None = exc
    while item is not None and not any(item is s for s in seen):
        seen.append(item)
        if isinstance(item, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return True
        item = item.__cause__ or item.__context__
    return False


def describe_http_error(exc: BaseException) -> str:
    """A one-line reason for a failed request, without a traceback."""
    if isinstance(exc, AnswerTooLarge):
        return str(exc)
    host = _host(exc)
    if cut_short(exc):
        return CUT_SHORT + (f" (from {host})" if host else "")
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return f"{type(exc).__name__}: {_SPACES.sub(' ', text)}"[:300]


def _host_of(response: httpx.Response) -> str | None:
    try:
        return response.request.url.netloc.decode("ascii", "replace")
    except RuntimeError:
        return None


async def read_capped(response: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
    """The (decoded) body of a streamed response, or AnswerTooLarge past ``cap`` bytes; with
    ``truncate``, its first ``cap`` bytes instead (for answers whose body is only quoted)."""
    declared = response.headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > cap:
        raise AnswerTooLarge(cap, _host_of(response))
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > cap:
            if truncate:
                return bytes(body[:cap])
            raise AnswerTooLarge(cap, _host_of(response))
    return bytes(body)


# Headers that describe the wire form of a body already decoded and read.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def request_capped(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    cap: int,
    truncate: bool = False,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """``client.request`` that streams the answer and stops reading past ``cap`` bytes.

    Returns a fully read response (``.json()``, ``.text`` work as usual); raises
    AnswerTooLarge (unless ``truncate``: then the body is cut at ``cap``), or httpx's own
    errors for network trouble.
    """
    import httpx

    request = client.build_request(method, url, headers=headers, **kwargs)
    response = await client.send(request, stream=True)
    try:
        body = await read_capped(response, cap, truncate=truncate)
    finally:
        await response.aclose()
    loaded = httpx.Response(
        response.status_code,
        headers=[(k, v) for k, v in response.headers.multi_items() if k not in _WIRE_HEADERS],
        content=body,
        request=response.request,
        extensions=response.extensions,
    )
    loaded.history = response.history
    return loaded
