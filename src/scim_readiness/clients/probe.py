"""The probe: the app's read-only view of its own users, so checks can see what events did.

Two kinds, one typed answer (:class:`AppUser`):

* **http**: URL templates (``{email}``, ``{directory_user_id}``, ``{cursor}``) answered with
  JSON; 404 means "no such user"; headers (tokens) come from the config as secrets.
* **command**: an argv template run without a shell (``{email}`` etc. substituted per
  argument) that prints JSON on stdout; ``null`` or empty output means "no such user"; a
  non-zero exit status is an error.

A list answer is ``{"users": [...], "next_cursor": "..." | null}`` (both paths configurable).
Every call is bounded in time; errors are :class:`~scim_readiness.errors.ProbeError` with a
message that never contains a probe token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from scim_readiness.clients.answers import (
    MAX_PROBE_ANSWER_BYTES,
    NOT_FINISHED,
    AnswerTooLarge,
    HostileAnswer,
    decode_json,
    describe_http_error,
    request_capped,
    shown_endpoint,
)
from scim_readiness.config import CommandProbe, HttpProbe, HttpProbeFields, ProbeSection
from scim_readiness.errors import ConfigError, ProbeError
from scim_readiness.redact import Redactor

if TYPE_CHECKING:
    import httpx

    from scim_readiness.clients.http import TlsSettings

# A command's stdout beyond this is refused rather than held in memory.
MAX_OUTPUT_BYTES = 32 * 1024 * 1024
# A cursor loop longer than this is the app paging in circles, not a big directory.
MAX_PAGES = 100_000
# Cursors are opaque tokens of tens of characters; one far longer cannot go into a URL (or an
# argv) and is a broken or hostile answer, not a page to ask for.
MAX_CURSOR_CHARS = 4096
_MISSING = object()


@dataclass(frozen=True)
class AppUser:
    """One user as the app sees it."""

    id: str
    directory_user_id: str | None
    email: str
    name: str | None
    active: bool
    roles: tuple[str, ...] = ()
    tenant: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


class Probe(Protocol):
    async def user_by_email(self, email: str) -> AppUser | None: ...

    async def user_by_id(self, directory_user_id: str) -> AppUser | None: ...

    def list_users(self) -> AsyncIterator[AppUser]:
        """Every user, page by page; memory stays bounded by one page."""
        ...

    async def aclose(self) -> None: ...


def lookup(document: Any, path: str) -> Any:
    """Follow a dotted path (``a.b.0.c``) through JSON; missing → ``_MISSING``."""
    node = document
    if path in ("", "."):
        return node
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif (
            isinstance(node, list)
            and part.lstrip("-").isdigit()
            and -len(node) <= int(part) < len(node)
        ):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _as_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "1", "active", "enabled"):
            return True
        if lowered in ("false", "no", "0", "inactive", "disabled", "deactivated"):
            return False
    raise ProbeError(f"probe answer has {value!r} at {path!r}, expected true or false")


def _as_roles(value: Any, path: str) -> tuple[str, ...]:
    if value is _MISSING or value is None:
        return ()
    if isinstance(value, str):
        return tuple(r.strip() for r in value.split(",") if r.strip())
    if isinstance(value, list):
        roles = []
        for item in value:
            if isinstance(item, str):
                roles.append(item)
            elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
                roles.append(item["name"])
            else:
                raise ProbeError(f"probe answer has a role {item!r} at {path!r}, expected a name")
        return tuple(roles)
    raise ProbeError(f"probe answer has {value!r} at {path!r}, expected a list of role names")


def _optional_str(value: Any) -> str | None:
    if value is _MISSING or value is None:
        return None
    return str(value)


_FIELD_NAMES: tuple[str, ...] = (
    "id",
    "directory_user_id",
    "email",
    "name",
    "active",
    "roles",
    "tenant",
    "attributes",
)
_ALL_MISSING = (_MISSING,) * len(_FIELD_NAMES)


class _UserShape:
    """Where each fact of a user lives (the configured paths), worked out once per list: when
    every path is one key (the usual case), a user's eight values are eight dict reads in C,
    which matters when a list has 100,000 users."""

    __slots__ = ("fields", "keys", "paths")

    def __init__(self, fields: HttpProbeFields) -> None:
        self.fields = fields
        self.paths: tuple[str, ...] = tuple(getattr(fields, name) for name in _FIELD_NAMES)
        simple = all(path not in ("", ".") and "." not in path for path in self.paths)
        self.keys = self.paths if simple else None

    def values(self, document: Any) -> tuple[Any, ...]:
        if self.keys is not None and type(document) is dict:
            return tuple(map(document.get, self.keys, _ALL_MISSING))
        return tuple(lookup(document, path) for path in self.paths)

    def user(self, document: Any) -> AppUser:
        fields = self.fields
        if not isinstance(document, Mapping):
            raise ProbeError(
                f"probe answer for a user is {type(document).__name__}, expected an object"
            )
        user_id, directory_user_id, email, name, active, roles, tenant, attributes = self.values(
            document
        )
        if not isinstance(email, str) or not email:
            raise ProbeError(f"probe answer lacks an email at {fields.email!r}")
        if user_id is _MISSING or user_id is None:
            raise ProbeError(f"probe answer lacks the app's user id at {fields.id!r}")
        if active is _MISSING:
            raise ProbeError(f"probe answer lacks the active flag at {fields.active!r}")
        return AppUser(
            id=str(user_id),
            directory_user_id=_optional_str(directory_user_id),
            email=email,
            name=_optional_str(name),
            active=active if active is True or active is False else _as_bool(active, fields.active),
            roles=_as_roles(roles, fields.roles),
            tenant=_optional_str(tenant),
            attributes=dict(attributes) if isinstance(attributes, Mapping) else {},
        )


def to_app_user(document: Any, fields: HttpProbeFields) -> AppUser:
    """Map one user's JSON to :class:`AppUser` using the configured paths."""
    return _UserShape(fields).user(document)


def _page(document: Any, items_path: str, cursor_path: str) -> tuple[list[Any], str | None]:
    items = lookup(document, items_path)
    if not isinstance(items, list):
        raise ProbeError(f"probe list answer has no list of users at {items_path!r}")
    cursor = lookup(document, cursor_path)
    if cursor is _MISSING or cursor is None or cursor == "":
        return items, None
    return items, str(cursor)


class _UserReads:
    """What both probe kinds share: the three reads, built on one raw read (``_read``) that
    each kind makes its own way and that answers None for "no such user"."""

    _config: HttpProbe | CommandProbe
    #: What to say when the list read answers "nothing" instead of a page.
    _nothing_listed: str

    async def _read(self, what: str, **values: str) -> Any:
        raise NotImplementedError

    def _source(self, what: str) -> str:
        """Where the ``what`` read comes from, as a message may name it."""
        raise NotImplementedError

    async def user_by_email(self, email: str) -> AppUser | None:
        document = await self._read("user_by_email", email=email)
        return None if document is None else to_app_user(document, self._config.fields)

    async def user_by_id(self, directory_user_id: str) -> AppUser | None:
        document = await self._read("user_by_id", directory_user_id=directory_user_id)
        return None if document is None else to_app_user(document, self._config.fields)

    async def list_users(self) -> AsyncIterator[AppUser]:
        cursor: str | None = ""
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            document = await self._read("list_users", cursor=cursor or "")
            if document is None:
                raise ProbeError(self._nothing_listed)
            items, cursor = _page(document, self._config.items_path, self._config.next_cursor_path)
            if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
                raise ProbeError(
                    f"probe list_users answer from {self._source('list_users')}: "
                    f"{self._config.next_cursor_path} is {len(cursor):,} characters long "
                    f"(at most {MAX_CURSOR_CHARS:,} are accepted)"
                )
            shape = _UserShape(self._config.fields)
            for item in items:
                yield shape.user(item)
            if cursor is None:
                return
            if cursor in seen:
                raise ProbeError(f"probe list_users returned the cursor {cursor[:60]!r} twice")
            seen.add(cursor)
        raise ProbeError(f"probe list_users did not end after {MAX_PAGES} pages")


class HttpAppProbe(_UserReads):
    """Reads users through the app's HTTP probe endpoints."""

    _nothing_listed = "probe list_users answered 404"

    def __init__(self, config: HttpProbe, tls: TlsSettings) -> None:
        from scim_readiness.clients.http import make_async_client

        self._config = config
        self._headers = {k: v.get_secret_value() for k, v in config.headers.items()}
        self._redact = Redactor(self._headers.values())
        self._client: httpx.AsyncClient = make_async_client(tls, timeout_s=config.timeout_s)

    async def _read(self, what: str, **values: str) -> Any:
        import httpx

        template: str | None = getattr(self._config, what)
        if template is None:
            raise ProbeError(f"the probe has no URL for {what} (probe.http.{what} is not set)")
        url = template
        for name, value in values.items():
            url = url.replace("{" + name + "}", quote(value, safe=""))
        shown = self._redact.text(url)
        try:
            response = await request_capped(
                self._client,
                "GET",
                url,
                cap=MAX_PROBE_ANSWER_BYTES,
                headers=self._headers,
                deadline_s=self._config.timeout_s,
            )
        except httpx.TimeoutException:
            raise ProbeError(
                f"probe {what} at {shown} {NOT_FINISHED} {self._config.timeout_s:g} s"
            ) from None
        except (httpx.HTTPError, AnswerTooLarge) as exc:
            reason = self._redact.text(describe_http_error(exc))
            raise ProbeError(f"probe {what} at {shown} failed: {reason}") from None
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise ProbeError(f"probe {what} at {shown} answered HTTP {response.status_code}")
        try:
            return decode_json(response.content)
        except HostileAnswer as exc:
            raise ProbeError(f"probe {what} answer from {shown}: {exc}") from None
        except ValueError:
            raise ProbeError(f"probe {what} at {shown} did not answer with JSON") from None

    def _source(self, what: str) -> str:
        return self._redact.text(shown_endpoint(getattr(self._config, what) or ""))

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read_capped(
    stream: asyncio.StreamReader, cap: int, *, keep_tail: bool = False
) -> bytes | None:
    """Read a pipe to its end holding at most ``cap`` bytes: ``None`` when the output was
    larger (or, with ``keep_tail``, only its last ``cap`` bytes)."""
    data = bytearray()
    too_large = False
    while chunk := await stream.read(64 * 1024):
        if too_large:
            continue  # drain, so the child is not blocked on a full pipe
        data += chunk
        if len(data) > cap:
            if keep_tail:
                del data[:-cap]
            else:
                too_large = True
                data.clear()
    return None if too_large else bytes(data)


class CommandAppProbe(_UserReads):
    """Reads users by running a command (no shell) that prints JSON."""

    _nothing_listed = "probe command list_users printed nothing"

    def __init__(self, config: CommandProbe) -> None:
        self._config = config

    async def _read(self, what: str, **values: str) -> Any:
        template: Sequence[str] | None = getattr(self._config, what)
        if not template:
            raise ProbeError(
                f"the probe has no command for {what} (probe.command.{what} is not set)"
            )
        argv = []
        for arg in template:
            for name, value in values.items():
                arg = arg.replace("{" + name + "}", value)
            argv.append(arg)
        program = argv[0]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise ProbeError(f"probe command {program!r} could not start: {exc.strerror}") from None
        assert process.stdout is not None and process.stderr is not None  # noqa: S101 - PIPE above
        try:
            async with asyncio.timeout(self._config.timeout_s):
                stdout, stderr = await asyncio.gather(
                    _read_capped(process.stdout, MAX_OUTPUT_BYTES),
                    _read_capped(process.stderr, 64 * 1024, keep_tail=True),
                )
                await process.wait()
        except TimeoutError:
            raise ProbeError(
                f"probe command {program!r} ({what}) did not finish within "
                f"{self._config.timeout_s:g} s and was killed"
            ) from None
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if stdout is None:
            raise ProbeError(
                f"probe command {program!r} printed more than {MAX_OUTPUT_BYTES} bytes"
            )
        stderr = stderr or b""
        if process.returncode != 0:
            lines = stderr.decode("utf-8", "replace").strip().splitlines()
            last = f": {lines[-1][:200]}" if lines else ""
            raise ProbeError(
                f"probe command {program!r} ({what}) exited with status {process.returncode}{last}"
            )
        text = stdout.decode("utf-8", "replace").strip()
        if not text:
            return None
        try:
            return decode_json(text)
        except HostileAnswer as exc:
            raise ProbeError(f"probe command {program!r} ({what}) printed {exc}") from None
        except ValueError:
            raise ProbeError(f"probe command {program!r} ({what}) did not print JSON") from None

    def _source(self, what: str) -> str:
        template: Sequence[str] | None = getattr(self._config, what)
        return f"command {template[0]!r}" if template else "command"

    async def aclose(self) -> None:
        return None


def build_probe(section: ProbeSection, tls: TlsSettings) -> Probe:
    """The configured probe; raises ConfigError when the section is incomplete."""
    if section.kind == "http":
        if section.http is None:
            raise ConfigError("probe.kind is 'http' but there is no probe.http section")
        return HttpAppProbe(section.http, tls)
    if section.command is None:
        raise ConfigError("probe.kind is 'command' but there is no probe.command section")
    return CommandAppProbe(section.command)
