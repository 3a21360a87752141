"""The probe: the app's read-only view of its own users, so checks can see what events did.

Two kinds, one typed answer (:class:`AppUser`):

* **http**: URL templates (``{email}``, ``{directory_user_id}``, ``{cursor}``) answered with
  JSON; 404 means "no such user"; headers (tokens) come from the config as secrets.
* **command**: an argv template run without a shell (``{email}`` etc. substituted per
  argument) that prints JSON on stdout; ``null`` or empty output means "no such user"; a
  non-zero exit status is an error.

A single-user answer is the user itself, or sits at ``user_path`` (``{"user": {...}}``). A
list answer is ``{"users": [...], "next_cursor": "..." | null}`` (paths configurable), paged
by cursor (``{cursor}``) or by page number (``{page}``, ``next_page: N | null``), or one answer
with every user. A probe with only ``list_users`` still finds users, by scanning the list
(at most ``scan_limit`` users per lookup; what that cost is counted in :class:`ScanCost`).
Every call is bounded in time; errors are :class:`~scim_readiness.errors.ProbeError` with a
message that never contains a probe token.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
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
from scim_readiness.config import (
    CommandProbe,
    HttpProbe,
    HttpProbeFields,
    ProbeSection,
    ProbeShape,
)
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
#: Connections to the app's probe kept alive between look-ups (at most this many at once).
PROBE_CONNECTIONS = 100


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


# Words apps use for an account that cannot sign in, in a status field mapped to `active`.
_INACTIVE_WORDS = frozenset(
    (
        *("false", "no", "0", "inactive", "disabled", "deactivated"),
        *("suspended", "deprovisioned", "deleted", "archived", "blocked", "locked"),
    )
)


def _as_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "1", "active", "enabled"):
            return True
        if lowered in _INACTIVE_WORDS:
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


def _page(document: Any, items_path: str) -> list[Any]:
    items = lookup(document, items_path)
    if not isinstance(items, list):
        raise ProbeError(f"probe list answer has no list of users at {items_path!r}")
    return items


def _next_cursor(document: Any, cursor_path: str) -> str | None:
    cursor = lookup(document, cursor_path)
    if cursor is _MISSING or cursor is None or cursor == "":
        return None
    return str(cursor)


def _next_page(document: Any, page_path: str, current: int, had_items: bool) -> int | None:
    """The page number after ``current``, or None on the last page. An answer that does not
    name a next page at all is followed to ``current + 1`` until a page comes back empty."""
    value = lookup(document, page_path)
    if value is _MISSING:
        return current + 1 if had_items else None
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProbeError(
            f"probe list answer has {str(value)[:60]!r} at {page_path!r}, expected the next "
            "page number or null"
        )
    if value <= current:
        raise ProbeError(
            f"probe list answer on page {current} names page {value} as the next one "
            "(paging in circles)"
        )
    return value


#: What finding users by scanning the list cost (a list-only probe's price, reported in a
#: check's metrics as ``probe_scan``): lookups answered by scanning, users and pages read.
ScanCost = dict[str, int]


def new_scan_cost() -> ScanCost:
    return {"lookups": 0, "users_read": 0, "pages": 0}


def metered(probe: Probe, metrics: dict[str, Any]) -> Probe:
    """A view of ``probe`` that counts what its scans cost into ``metrics["probe_scan"]``; the
    probe itself when it never scans. The view shares the probe's connection."""
    if not isinstance(probe, _UserReads) or not probe.scans:
        return probe
    view = copy.copy(probe)
    view.scan_cost = new_scan_cost()
    view.cost_sink = metrics
    return view


@dataclass(frozen=True, slots=True)
class ProbeAnswers:
    """What a configured probe can answer, and how."""

    by_email: str | None  # "lookup", "scan", or None
    by_id: str | None
    listing: bool
    paging: str  # "cursor", "page" (from N), or "" without list_users
    scan_limit: int

    @property
    def finds_users(self) -> bool:
        return self.by_email is not None or self.by_id is not None


def probe_answers(section: ProbeSection) -> ProbeAnswers:
    """What the probe configured in ``section`` can answer (no network)."""
    sub = section.http if section.kind == "http" else section.command
    if sub is None:
        return ProbeAnswers(None, None, False, "", 0)
    listing = bool(sub.list_users)
    fallback = "scan" if listing else None
    paging = ""
    if sub.list_users:
        template = _list_template(sub)
        mode = sub.paging_mode(template)
        placeholder = "{" + ("page" if mode == "page" else "cursor") + "}"
        if placeholder not in template:
            paging = "none"
        else:
            paging = (
                f"page-number paging from page {sub.first_page}" if mode == "page" else "cursor"
            )
    return ProbeAnswers(
        by_email="lookup" if sub.user_by_email else fallback,
        by_id="lookup" if sub.user_by_id else fallback,
        listing=listing,
        paging=paging,
        scan_limit=sub.scan_limit,
    )


def _list_template(config: HttpProbe | CommandProbe) -> str:
    """The list_users template as one text (an argv joined), to look for placeholders in."""
    template = config.list_users or ""
    return template if isinstance(template, str) else " ".join(template)


class _UserReads:
    """What both probe kinds share: the three reads, built on one raw read (``_read``) that
    each kind makes its own way and that answers None for "no such user"."""

    _config: HttpProbe | CommandProbe
    #: What to say when the list read answers "nothing" instead of a page.
    _nothing_listed: str
    scan_cost: ScanCost
    #: Where the scan cost is reported once a lookup scans (a check's metrics).
    cost_sink: dict[str, Any] | None = None

    async def _read(self, what: str, **values: str) -> Any:
        raise NotImplementedError

    def _source(self, what: str) -> str:
        """Where the ``what`` read comes from, as a message may name it."""
        raise NotImplementedError

    def _single(self, document: Any) -> AppUser | None:
        if document is None:
            return None
        user = lookup(document, self._config.user_path)
        if user is _MISSING or user is None:
            return None
        return to_app_user(user, self._config.fields)

    async def user_by_email(self, email: str) -> AppUser | None:
        if not self._config.user_by_email and self._config.list_users:
            wanted = email.casefold()
            return await self._scan(lambda user: user.email.casefold() == wanted, "email")
        return self._single(await self._read("user_by_email", email=email))

    async def user_by_id(self, directory_user_id: str) -> AppUser | None:
        if not self._config.user_by_id and self._config.list_users:
            return await self._scan(
                lambda user: user.directory_user_id == directory_user_id, "directory user id"
            )
        return self._single(await self._read("user_by_id", directory_user_id=directory_user_id))

    async def _scan(self, matches: Callable[[AppUser], bool], what: str) -> AppUser | None:
        """Find a user by reading the list, at most ``scan_limit`` users."""
        limit = self._config.scan_limit
        cost = self.scan_cost
        cost["lookups"] += 1
        if self.cost_sink is not None:
            self.cost_sink.setdefault("probe_scan", cost)
        read = 0
        async for user in self._users(cost):
            if read >= limit:
                raise ProbeError(
                    f"probe list_users has more than {limit:,} users, so a lookup by {what} "
                    "by scanning it stopped without an answer",
                    hint=f"set probe.{self._kind}.user_by_{'email' if what == 'email' else 'id'}"
                    f", or raise probe.{self._kind}.scan_limit",
                )
            read += 1
            cost["users_read"] += 1
            if matches(user):
                return user
        return None

    @property
    def scans(self) -> bool:
        """True when some lookup is answered by scanning the list."""
        config = self._config
        return bool(config.list_users) and not (config.user_by_email and config.user_by_id)

    @property
    def _kind(self) -> str:
        return "http" if isinstance(self._config, HttpProbe) else "command"

    def list_users(self) -> AsyncIterator[AppUser]:
        return self._users(None)

    async def first_page(self) -> list[AppUser]:
        """The users on the list's first page (one read)."""
        config = self._config
        document = await self._read("list_users", cursor="", page=str(config.first_page))
        if document is None:
            raise ProbeError(self._nothing_listed)
        shape = _UserShape(config.fields)
        return [shape.user(item) for item in _page(document, config.items_path)]

    async def _users(self, cost: ScanCost | None) -> AsyncIterator[AppUser]:
        config = self._config
        template = _list_template(config)
        if config.paging_mode(template) == "page":
            pages = self._pages_by_number(config, "{page}" in template)
        else:
            pages = self._pages_by_cursor(config, "{cursor}" in template)
        shape = _UserShape(config.fields)
        async for items in pages:
            if cost is not None:
                cost["pages"] += 1
            for item in items:
                yield shape.user(item)

    async def _pages_by_cursor(self, config: ProbeShape, follows: bool) -> AsyncIterator[list[Any]]:
        cursor: str | None = ""
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            document = await self._read("list_users", cursor=cursor or "")
            if document is None:
                raise ProbeError(self._nothing_listed)
            yield _page(document, config.items_path)
            if not follows:
                return  # one answer holds every user
            cursor = _next_cursor(document, config.next_cursor_path)
            if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
                raise ProbeError(
                    f"probe list_users answer from {self._source('list_users')}: "
                    f"{config.next_cursor_path} is {len(cursor):,} characters long "
                    f"(at most {MAX_CURSOR_CHARS:,} are accepted)"
                )
            if cursor is None:
                return
            if cursor in seen:
                raise ProbeError(f"probe list_users returned the cursor {cursor[:60]!r} twice")
            seen.add(cursor)
        raise ProbeError(f"probe list_users did not end after {MAX_PAGES} pages")

    async def _pages_by_number(
        self, config: ProbeShape, numbered: bool
    ) -> AsyncIterator[list[Any]]:
        page: int | None = config.first_page
        for _ in range(MAX_PAGES):
            assert page is not None  # noqa: S101 - the loop returns when there is none
            document = await self._read("list_users", page=str(page))
            if document is None:
                raise ProbeError(self._nothing_listed)
            items = _page(document, config.items_path)
            yield items
            page = (
                _next_page(document, config.next_page_path, page, bool(items)) if numbered else None
            )
            if page is None:
                return
        raise ProbeError(f"probe list_users did not end after {MAX_PAGES} pages")


class HttpAppProbe(_UserReads):
    """Reads users through the app's HTTP probe endpoints."""

    _nothing_listed = "probe list_users answered 404"

    def __init__(self, config: HttpProbe, tls: TlsSettings) -> None:
        from scim_readiness.clients.http import make_async_client

        self._config = config
        self.scan_cost = new_scan_cost()
        self._headers = {k: v.get_secret_value() for k, v in config.headers.items()}
        self._redact = Redactor(self._headers.values())
        # Checks look up many users at once (delivery-semantics polls 100 burst users per
        # round): every connection of a round is kept for the next, or each round would pay
        # a TLS handshake on the connections past httpx's default of 20.
        self._client: httpx.AsyncClient = make_async_client(
            tls, timeout_s=config.timeout_s, keep_alive=PROBE_CONNECTIONS
        )

    async def _read(self, what: str, **values: str) -> Any:

        template: str | None = getattr(self._config, what)
        if template is None:
            raise ProbeError(f"the probe has no URL for {what} (probe.http.{what} is not set)")
        url = template
        for name, value in values.items():
            url = url.replace("{" + name + "}", quote(value, safe=""))
        shown = self._redact.text(url)
        response = await capped_probe_request(
            self._client,
            "GET",
            url,
            headers=self._headers,
            timeout_s=self._config.timeout_s,
            redact=self._redact,
            label=f"probe {what} at {shown}",
        )
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
        self.scan_cost = new_scan_cost()

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


def describe_answers(section: ProbeSection) -> list[str]:
    """What the configured probe can and cannot answer, as lines for ``config validate``."""
    answers = probe_answers(section)
    scan = f"by scanning list_users (at most {answers.scan_limit:,} users read per lookup)"
    ways = {"lookup": "yes", "scan": scan, None: "no"}
    lines = [
        f"finds a user by email: {ways[answers.by_email]}",
        f"finds a user by directory user id: {ways[answers.by_id]}",
    ]
    if answers.listing:
        paging = {"cursor": "cursor paging", "none": "one answer, no paging"}
        lines.append(f"lists every user: yes ({paging.get(answers.paging, answers.paging)})")
    else:
        lines.append(
            "lists every user: no (data-model cannot compare directory and app, and bad-data "
            "cannot count duplicate records)"
        )
    if not answers.finds_users:
        lines.append("cannot find single users: the round-trip checks will SKIP their app side")
    elif "scan" in (answers.by_email, answers.by_id):
        lines.append(
            "every lookup by scanning reads the list from its first page; a check's report "
            "counts what that cost (metrics.probe_scan)"
        )
    return lines


@dataclass(frozen=True, slots=True)
class TemplateTry:
    """One configured template called once: what it answered, mapped as checks will see it."""

    what: str  # list_users, user_by_email, user_by_id
    asked: str  # what was asked for (the page, the email, the id)
    users: tuple[AppUser, ...] = ()
    error: str = ""
    note: str = ""


async def try_templates(
    probe: Probe, *, email: str | None, directory_user_id: str | None
) -> list[TemplateTry]:
    """Call each configured template once (the list's first page only) and map the answers.

    Without ``email``/``directory_user_id`` the lookups ask for the first listed user; with
    nothing listed either they ask for an address no app holds, so "no such user" proves the
    template and the 404 handling work."""
    if not isinstance(probe, _UserReads):
        raise ProbeError("this probe cannot be tried template by template")
    config = probe._config
    tries: list[TemplateTry] = []
    first: AppUser | None = None
    if config.list_users:
        paged = config.paging_mode(_list_template(config)) == "page"
        asked = f"page {config.first_page}" if paged else "the first page"
        try:
            users = await probe.first_page()
            first = users[0] if users else None
            tries.append(
                TemplateTry("list_users", asked, tuple(users[:3]), note=f"{len(users)} users on it")
            )
        except ProbeError as exc:
            tries.append(TemplateTry("list_users", asked, error=exc.message))
    unknown = "nobody@scim-readiness.example.invalid"
    wanted_email = email or (first.email if first else unknown)
    wanted_id = directory_user_id or (first.directory_user_id if first else None) or "diruser_none"
    for what, value, call in (
        ("user_by_email", wanted_email, probe.user_by_email),
        ("user_by_id", wanted_id, probe.user_by_id),
    ):
        if not getattr(config, what):
            note = "not configured" + (
                ": answered by scanning list_users" if config.list_users else ""
            )
            tries.append(TemplateTry(what, value, note=note))
            continue
        try:
            found = await call(value)
        except ProbeError as exc:
            tries.append(TemplateTry(what, value, error=exc.message))
            continue
        note = "" if found is not None else "no such user"
        tries.append(TemplateTry(what, value, (found,) if found else (), note=note))
    return tries


async def capped_probe_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout_s: float,
    redact: Redactor,
    label: str,
) -> httpx.Response:
    """One request of a probe to the app, its answer capped and the whole request bounded by
    ``timeout_s``; a failure is a :class:`ProbeError` naming ``label`` (already redacted)."""
    import httpx

    try:
        return await request_capped(
            client,
            method,
            url,
            cap=MAX_PROBE_ANSWER_BYTES,
            headers=dict(headers),
            deadline_s=timeout_s,
        )
    except httpx.TimeoutException:
        raise ProbeError(f"{label} {NOT_FINISHED} {timeout_s:g} s") from None
    except (httpx.HTTPError, AnswerTooLarge) as exc:
        raise ProbeError(f"{label} failed: {redact.text(describe_http_error(exc))}") from None
