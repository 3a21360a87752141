"""Reading other people's HTTP answers: one bounded request (a wall-clock deadline over the
whole exchange and a size cap on the body), one safe JSON decoding, and one plain description
of what went wrong, shared by every place that calls an app, a probe or an endpoint over HTTP.

httpx is imported inside the functions, so importing this module costs nothing at start-up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx

#: The most a webhook answer or a portal-link endpoint's answer may hold.
MAX_ANSWER_BYTES = 1024 * 1024
#: The most one probe answer (a list page can be large) may hold.
MAX_PROBE_ANSWER_BYTES = 8 * 1024 * 1024
#: The most a SCIM endpoint's answer (one resource, or one list page) may hold.
MAX_SCIM_ANSWER_BYTES = 4 * 1024 * 1024

#: The deepest nesting accepted in a JSON answer: real answers nest a handful of levels, and
#: thousands would exhaust the recursion of every walker of the result (the parser first).
MAX_JSON_DEPTH = 64
#: A whole-request deadline for a client that was built without any timeout.
DEFAULT_DEADLINE_S = 30.0

CUT_SHORT = "the connection was closed or reset before a complete answer"
#: How a whole-request deadline that ran out is worded (describe_http_error keys on it).
NOT_FINISHED = "did not finish answering within"
_SPACES = re.compile(r"\s+")


class AnswerTooLarge(Exception):
    """An answer's body is larger than the cap: it was not read to its end."""

    def __init__(self, cap: int, host: str | None = None) -> None:
        self.cap = cap
        self.host = host
        where = f" from {host}" if host else ""
        super().__init__(f"answer{where} larger than {cap:,} bytes (not read further)")


class HostileAnswer(ValueError):
    """An answer built to hurt its reader (nested too deep, too large): refused unread."""


def shown_endpoint(url: str) -> str:
    """``url`` as it may appear in a message: no user-info, no query values, and path tokens
    masked, so the endpoint is named without repeating anything secret it carries."""
    from scim_readiness.redact import mask_url_tokens

    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "(an invalid URL)"
    query = "?…" if parts.query else ""
    return mask_url_tokens(f"{parts.scheme}://{netloc}{parts.path}{query}")[:200]


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests arrays and objects deeper than ``limit``, found by counting
    brackets outside strings in one loop (no recursion, whatever the input)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot be deeper than it has openers
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def decode_json(body: bytes | str, *, max_bytes: int | None = None) -> Any:
    """Decode an untrusted JSON answer: HostileAnswer when it is larger than ``max_bytes`` or
    nested deeper than MAX_JSON_DEPTH, ValueError when it is no JSON, else the value.

    Every answer from outside (probe, portal-link endpoint, SCIM endpoint, token endpoint)
    goes through here, so a hostile answer is named as such rather than crashing a walker.
    """
    if max_bytes is not None and len(body) > max_bytes:
        raise HostileAnswer(f"answer larger than {max_bytes:,} bytes")
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("the answer is not UTF-8") from None
    else:
        text = body
    if json_depth_exceeds(text):
        raise HostileAnswer(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(text)


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
    if isinstance(exc, AnswerTooLarge) or NOT_FINISHED in str(exc):
        return str(exc)
    from scim_readiness.clients.trust import certificate_problem

    host = _host(exc)
    if (refused := certificate_problem(exc)) is not None:
        return refused.sentence(host or "the server")
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
    deadline_s: float | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """``client.request`` bounded twice: one wall-clock deadline over the whole exchange
    (connect, send, headers, every byte of the body, redirects followed) and a cap on the body.

    httpx's own timeouts bound each read, so an answer dripping one byte a second would run
    for ever; the deadline (``deadline_s``, by default the client's read timeout) does not.
    Returns a fully read response (``.json()``, ``.text`` work as usual); raises
    AnswerTooLarge (unless ``truncate``: then the body is cut at ``cap``), httpx.ReadTimeout
    naming the endpoint and the deadline, or httpx's own errors for network trouble.
    """
    import asyncio  # kept off the start-up path of `--help` and `checks`

    import httpx

    if deadline_s is None:
        deadline_s = client.timeout.read or DEFAULT_DEADLINE_S
    request = client.build_request(method, url, headers=headers, **kwargs)
    try:
        async with asyncio.timeout(deadline_s):
            response = await client.send(request, stream=True)
            try:
                body = await read_capped(response, cap, truncate=truncate)
            finally:
                await response.aclose()
    except TimeoutError:
        raise httpx.ReadTimeout(
            f"{shown_endpoint(url)} {NOT_FINISHED} {deadline_s:g} s", request=request
        ) from None
    loaded = httpx.Response(
        response.status_code,
        headers=[(k, v) for k, v in response.headers.multi_items() if k not in _WIRE_HEADERS],
        content=body,
        request=response.request,
        extensions=response.extensions,
    )
    loaded.history = response.history
    return loaded


EXCERPT_CHARS = 160
_SPACES = re.compile(r"\s+")


def redact(text: str, secrets: Iterable[str]) -> str:
    """Answers' excerpts, redacted by the product's one redaction (:mod:`scim_readiness.redact`)."""
    from scim_readiness.redact import REDACTED, redact_text

    return redact_text(text, secrets, mask=REDACTED)


def excerpt(body: bytes, secrets: Iterable[str] = (), limit: int = EXCERPT_CHARS) -> str:
    """The start of a response body, on one line, redacted, at most ``limit`` characters."""
    text = body[: limit * 8].decode("utf-8", errors="replace")
    text = redact(_SPACES.sub(" ", text).strip(), secrets)
    return text if len(text) <= limit else text[: limit - 1] + "…"
