"""The run's Scalekit client: the official SDK, bounded in time, with plain-word errors.

Every SDK call runs in a daemon worker thread (the SDK is synchronous and may block for
10-30 s on a dead server) and is bounded twice: by the SDK's own ``call_timeout_s`` and by
``asyncio.wait_for`` here, both set from ``scalekit.timeout_s``. Answers come back as small
frozen views, so checks never touch protobuf messages.

The SDK's ``list_directory_users`` / ``list_directory_groups`` fail on any non-empty page
(its hand-written response class never initialises ``users``/``groups``); paging here calls
the generated stub through ``core_client.grpc_exec`` instead, which keeps the SDK's auth,
retry and metadata handling. ``sdk_list_users_defect_present()`` tells when that can go.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import queue
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from scim_readiness.clients.trust import exception_chain
from scim_readiness.errors import ScalekitAuthError, ScalekitError

if TYPE_CHECKING:
    from scim_readiness.clients.http import CaBundles, TlsSettings
    from scim_readiness.config import ScalekitSection

T = TypeVar("T")

EXCHANGE_PATH = "/oauth/token"
# A token answer is a few hundred bytes; anything near this is not a token endpoint.
MAX_TOKEN_ANSWER_BYTES = 64 * 1024
MAX_PAGE_SIZE = 30  # the API's cap (proto validation); larger pages are INVALID_ARGUMENT


class ScalekitNotFoundError(ScalekitError):
    """The environment answered, but the organisation/directory asked for does not exist."""


class ScalekitRequestError(ScalekitError):
    """The environment rejected a request as invalid (INVALID_ARGUMENT and the like)."""


# -- views ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrganizationView:
    id: str
    display_name: str
    external_id: str
    features: Mapping[str, bool]
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SecretView:
    id: str
    suffix: str
    status: str  # ACTIVE / INACTIVE
    create_time: dt.datetime | None
    expire_time: dt.datetime | None
    last_used_time: dt.datetime | None


@dataclass(frozen=True, slots=True)
class RoleAssignmentView:
    group_id: str
    role_name: str
    role_id: str


@dataclass(frozen=True, slots=True)
class DirectoryStats:
    total_users: int
    total_groups: int
    user_updated_at: dt.datetime | None
    group_updated_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class DirectoryView:
    id: str
    organization_id: str
    name: str
    directory_type: str  # SCIM / LDAP / POLL
    provider: str  # OKTA, MICROSOFT_AD, …
    enabled: bool
    status: str
    endpoint: str  # the SCIM base URL the IdP calls
    secrets: tuple[SecretView, ...]
    role_assignments: tuple[RoleAssignmentView, ...]
    attribute_mappings: Mapping[str, str]
    stats: DirectoryStats
    last_synced_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class MembershipView:
    """A group a directory user belongs to, as the Directory API lists it."""

    id: str
    display_name: str


@dataclass(frozen=True, slots=True)
class DirectoryUserView:
    id: str
    email: str
    preferred_username: str
    given_name: str
    family_name: str
    active: bool | None  # None when the API did not say
    groups: tuple[MembershipView, ...]
    roles: tuple[str, ...] | None  # None when the API did not say
    updated_at: dt.datetime | None
    detail: Mapping[str, Any]  # user_detail as a plain dict


@dataclass(frozen=True, slots=True)
class GroupView:
    id: str
    display_name: str
    total_users: int
    updated_at: dt.datetime | None
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RoleView:
    id: str
    name: str
    display_name: str
    description: str


@dataclass(frozen=True, slots=True)
class PortalLinkView:
    id: str
    location: str
    expire_time: dt.datetime | None

    def __repr__(self) -> str:  # the location is a bearer secret
        return (
            f"PortalLinkView(id={self.id!r}, location=<redacted>, expire_time={self.expire_time!r})"
        )


# -- conversions ----------------------------------------------------------------------------


def _time(message: Any, name: str) -> dt.datetime | None:
    if not message.HasField(name):
        return None
    value = getattr(message, name)
    if value.seconds == 0 and value.nanos == 0:
        return None
    return dt.datetime.fromtimestamp(value.seconds + value.nanos / 1e9, dt.UTC)


def _value(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return {key: _value(item) for key, item in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    if kind == "null_value" or kind is None:
        return None
    return getattr(value, kind)


def _struct(message: Any, name: str) -> dict[str, Any]:
    # A direct walk: json_format.MessageToDict costs several times more per user, which
    # shows when paging 100,000 of them.
    if not message.HasField(name):
        return {}
    return {key: _value(item) for key, item in getattr(message, name).fields.items()}


def _org_view(org: Any) -> OrganizationView:
    return OrganizationView(
        id=org.id,
        display_name=org.display_name,
        external_id=org.external_id,
        features={f.name: bool(f.enabled) for f in org.settings.features},
        metadata=dict(org.metadata),
    )


def _directory_view(d: Any) -> DirectoryView:
    from scalekit.v1.directories import directories_pb2 as dpb

    return DirectoryView(
        id=d.id,
        organization_id=d.organization_id,
        name=d.name,
        directory_type=dpb.DirectoryType.Name(d.directory_type),
        provider=dpb.DirectoryProvider.Name(d.directory_provider),
        enabled=bool(d.enabled),
        status=d.status,
        endpoint=d.directory_endpoint,
        secrets=tuple(
            SecretView(
                id=s.id,
                suffix=s.secret_suffix,
                status=dpb.SecretStatus.Name(s.status),
                create_time=_time(s, "create_time"),
                expire_time=_time(s, "expire_time"),
                last_used_time=_time(s, "last_used_time"),
            )
            for s in d.secrets
        ),
        role_assignments=tuple(
            RoleAssignmentView(a.group_id, a.role_name, a.role_id)
            for a in d.role_assignments.assignments
        ),
        attribute_mappings={a.key: a.map_to for a in d.attribute_mappings.attributes},
        stats=DirectoryStats(
            total_users=d.stats.total_users or d.total_users,
            total_groups=d.stats.total_groups or d.total_groups,
            user_updated_at=_time(d.stats, "user_updated_at"),
            group_updated_at=_time(d.stats, "group_updated_at"),
        ),
        last_synced_at=_time(d, "last_synced_at"),
    )


def _user_view(u: Any) -> DirectoryUserView:
    detail = _struct(u, "user_detail")
    active = detail.get("active")
    raw_roles = detail.get("roles")
    roles: tuple[str, ...] | None = None
    if isinstance(raw_roles, list):
        roles = tuple(
            str(r.get("role_name", "")) if isinstance(r, dict) else str(r) for r in raw_roles
        )
    return DirectoryUserView(
        id=u.id,
        email=u.email,
        preferred_username=u.preferred_username,
        given_name=u.given_name,
        family_name=u.family_name,
        active=active if isinstance(active, bool) else None,
        groups=tuple(MembershipView(g.id, g.display_name) for g in u.groups),
        roles=roles,
        updated_at=_time(u, "updated_at"),
        detail=detail,
    )


def _group_view(g: Any) -> GroupView:
    return GroupView(
        id=g.id,
        display_name=g.display_name,
        total_users=g.total_users,
        updated_at=_time(g, "updated_at"),
        detail=_struct(g, "group_detail"),
    )


# -- trust ----------------------------------------------------------------------------------


# Combined bundles written by this process, by content: grpc reads its roots file once per
# process, so one content keeps one path for the process's life.
_BUNDLES: dict[bytes, Path] = {}


def _private_dir() -> Path:
    """A directory only this process's user can enter (mkdtemp makes it 0700), removed when
    the process exits: a shared, predictable name in the temp directory could be planted or
    swapped by another user of the host before the tool trusts what it holds."""
    import atexit
    import shutil

    directory = Path(tempfile.mkdtemp(prefix="scim-readiness-trust-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def trust_bundle(ca_bundle: CaBundles) -> str | None:
    """A CA file with the public roots (certifi) plus every file of ``ca_bundle`` (one path
    or several); None without one.

    Written once per process and content, 0600 inside a private 0700 directory of its own,
    and removed at exit.
    """
    from scim_readiness.clients.http import ca_files

    files = ca_files(ca_bundle)
    if not files:
        return None
    import certifi

    extras = []
    for file in files:
        try:
            extra = Path(file).read_bytes()
        except OSError as exc:
            raise ScalekitError(
                f"cannot read the CA bundle {file}: {exc.strerror}",
                hint="--ca-bundle must name a PEM file",
            ) from exc
        if b"-----BEGIN CERTIFICATE-----" not in extra:
            raise ScalekitError(f"the CA bundle {file} holds no PEM certificate")
        extras.append(extra.rstrip(b"\n") + b"\n")
    combined = b"".join([Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n", *extras])
    path = _BUNDLES.get(combined)
    if path is None or not path.exists():
        digest = hashlib.sha256(combined).hexdigest()[:16]
        path = _private_dir() / f"trust-{digest}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(combined)
        _BUNDLES[combined] = path
    return str(path)


def apply_trust(bundle: str | None) -> None:
    """Make requests and grpc in this process trust ``bundle`` (grpc reads it once, at its
    first TLS handshake) and keep loopback off any proxy from the environment."""
    if bundle is not None:
        os.environ["REQUESTS_CA_BUNDLE"] = bundle
        os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = bundle
    # grpc logs each refused handshake at INFO on stderr, in its own format, around the
    # report; the error that reaches the user already says it plainly. Read at grpc's start.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    # A proxy from the environment must not capture loopback traffic.
    for name in ("NO_PROXY", "no_proxy"):
        present = [p.strip() for p in os.environ.get(name, "").split(",") if p.strip()]
        for host in ("localhost", "127.0.0.1", "::1"):
            if host not in present:
                present.append(host)
        os.environ[name] = ",".join(present)


# -- errors ---------------------------------------------------------------------------------


def plain_cause(exc: BaseException) -> str:
    """Why a connection failed, in words a release engineer can act on."""
    chain = exception_chain(exc)
    for item in chain:
        if isinstance(item, ssl.SSLError):
            return f"the TLS handshake failed ({item.reason or item})"
        if isinstance(item, ConnectionRefusedError):
            return "the connection was refused (nothing is listening on that port)"
        if isinstance(item, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(item, TimeoutError | socket.timeout):
            return "the connection timed out"
        if isinstance(item, ConnectionResetError):
            return "the connection was reset"
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _server_reason(exc: Any) -> str:
    details = getattr(exc, "_err_details", None)
    if isinstance(details, str) and details.strip():
        try:
            body = json.loads(details)
        except ValueError:
            return details.strip()[:200]
        if isinstance(body, dict):
            for key in ("error_description", "message", "error"):
                if body.get(key):
                    return str(body[key])[:200]
        return details.strip()[:200]
    message = getattr(exc, "_message", None)
    if message:
        return str(message)[:200]
    return ""


# -- the gateway ----------------------------------------------------------------------------


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _outcome(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    try:
        return fn(), None
    except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
        return None, exc


def _hand_over(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], outcome: tuple[Any, Any]
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop may be gone by now
        loop.call_soon_threadsafe(_settle, future, *outcome)


async def _in_thread(fn: Callable[[], T], timeout_s: float, name: str) -> T:
    """Run ``fn`` in a fresh daemon thread (a hung SDK call must not keep the process alive)
    and wait at most ``timeout_s`` for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    threading.Thread(
        target=lambda: _hand_over(loop, future, _outcome(fn)),
        name=f"scalekit-{name}",
        daemon=True,
    ).start()
    return await asyncio.wait_for(future, timeout_s)


class _Threads:
    """Daemon threads for the SDK's blocking calls.

    An idle thread is reused (paging 100,000 users is 3,334 calls; a new thread each costs
    seconds), a busy or hung one never delays another call: that call gets a new thread.
    Daemon threads, because a hung call must not keep the process from exiting.
    """

    def __init__(self, keep: int = 4) -> None:
        self._idle: list[queue.SimpleQueue[tuple[Any, ...] | None]] = []
        self._lock = threading.Lock()
        self._keep = keep
        self._closed = False

    def _release(self, inbox: queue.SimpleQueue[tuple[Any, ...] | None]) -> bool:
        with self._lock:
            if self._closed or len(self._idle) >= self._keep:
                return False
            self._idle.append(inbox)
            return True

    def _serve(self, inbox: queue.SimpleQueue[tuple[Any, ...] | None]) -> None:
        while (job := inbox.get()) is not None:
            fn, loop, future = job
            outcome = _outcome(fn)
            # Back in the pool before the caller wakes, so its next call reuses this thread.
            keep = self._release(inbox)
            _hand_over(loop, future, outcome)
            if not keep:
                return

    async def run(self, fn: Callable[[], T], timeout_s: float) -> T:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(
                target=self._serve, args=(inbox,), name="scalekit-sdk", daemon=True
            ).start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        inbox.put((fn, loop, future))
        return await asyncio.wait_for(future, timeout_s)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for inbox in idle:
            inbox.put(None)


class ScalekitGateway:
    """One authenticated SDK client; every method is async and bounded by ``timeout_s``."""

    def __init__(
        self, client: Any, *, host: str, timeout_s: float, token_latency_s: float, secret: str = ""
    ) -> None:
        self._client = client
        self.host = host
        self.timeout_s = timeout_s
        self.token_latency_s = token_latency_s
        self._secret = secret
        self._closed = False
        self._threads = _Threads()

    def __repr__(self) -> str:
        return f"ScalekitGateway(host={self.host!r})"

    @property
    def sdk_client(self) -> Any:
        """The underlying ``ScalekitClient`` (for calls this gateway does not wrap)."""
        return self._client

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        if self._closed:
            raise ScalekitError("the Scalekit client is closed")
        try:
            return await self._threads.run(fn, self.timeout_s)
        except TimeoutError:
            raise ScalekitError(
                f"no answer from {self.host} within {self.timeout_s:g} s ({what})",
                hint="check the environment URL and the network path; raise scalekit.timeout_s "
                "only if the environment is known to be slow",
            ) from None
        except Exception as exc:  # noqa: BLE001 - translated into the tool's error tree
            raise _translate(exc, self.host, what, self.timeout_s, self._secret) from None

    async def get_organization(self, organization_id: str) -> OrganizationView:
        response, _ = await self._call(
            f"get organization {organization_id}",
            lambda: self._client.organization.get_organization(organization_id),
        )
        return _org_view(response.organization)

    async def get_organization_by_external_id(self, external_id: str) -> OrganizationView:
        response, _ = await self._call(
            f"get organization by external id {external_id}",
            lambda: self._client.organization.get_organization_by_external_id(external_id),
        )
        return _org_view(response.organization)

    async def list_directories(self, organization_id: str) -> list[DirectoryView]:
        response, _ = await self._call(
            f"list directories of {organization_id}",
            lambda: self._client.directory.list_directories(organization_id),
        )
        return [_directory_view(d) for d in response.directories]

    async def get_directory(self, organization_id: str, directory_id: str) -> DirectoryView:
        response, _ = await self._call(
            f"get directory {directory_id}",
            lambda: self._client.directory.get_directory(organization_id, directory_id),
        )
        return _directory_view(response.directory)

    async def _pages(
        self,
        what: str,
        method: str,
        request_type: str,
        items: str,
        convert: Callable[[Any], T],
        **fields: Any,
    ) -> AsyncIterator[list[T]]:
        from scalekit.v1.directories import directories_pb2 as dpb

        stub = getattr(self._client.directory.directory_service, method)
        request_cls = getattr(dpb, request_type)
        core = self._client.core_client

        def fetch(token: str) -> tuple[list[T], str]:
            # Not the SDK's list_directory_users/groups: they fail on any non-empty page
            # (see the module docstring). Views are built here, off the event loop.
            request = request_cls(page_token=token, include_detail=True, **fields)
            response, _ = core.grpc_exec(stub.with_call, request)
            return [convert(item) for item in getattr(response, items)], response.next_page_token

        token = ""
        seen: set[str] = set()
        while True:
            page, token = await self._call(what, functools.partial(fetch, token))
            yield page
            if not token:
                return
            if token in seen:
                raise ScalekitError(f"{self.host} returned the same page token twice ({what})")
            seen.add(token)

    async def iter_directory_users(
        self, organization_id: str, directory_id: str, page_size: int = MAX_PAGE_SIZE
    ) -> AsyncIterator[list[DirectoryUserView]]:
        """Every user of a directory, one page (≤ 30) at a time."""
        _check_page_size(page_size)
        async for page in self._pages(
            f"list users of directory {directory_id}",
            "ListDirectoryUsers",
            "ListDirectoryUsersRequest",
            "users",
            _user_view,
            organization_id=organization_id,
            directory_id=directory_id,
            page_size=page_size,
        ):
            yield page

    async def iter_directory_groups(
        self, organization_id: str, directory_id: str, page_size: int = MAX_PAGE_SIZE
    ) -> AsyncIterator[list[GroupView]]:
        """Every group of a directory, one page (≤ 30) at a time."""
        _check_page_size(page_size)
        async for page in self._pages(
            f"list groups of directory {directory_id}",
            "ListDirectoryGroups",
            "ListDirectoryGroupsRequest",
            "groups",
            _group_view,
            organization_id=organization_id,
            directory_id=directory_id,
            page_size=page_size,
        ):
            yield page

    async def list_roles(self) -> list[RoleView]:
        response, _ = await self._call("list roles", lambda: self._client.roles.list_roles())
        return [RoleView(r.id, r.name, r.display_name, r.description) for r in response.roles]

    async def generate_portal_link(
        self, organization_id: str, features: tuple[str, ...] = ("dir_sync",)
    ) -> PortalLinkView:
        from scalekit.v1.organizations.organizations_pb2 import Feature

        try:
            values = [Feature.Value(name) for name in features]
        except ValueError as exc:
            raise ScalekitError(f"unknown portal feature in {features!r}: {exc}") from None
        link = await self._call(
            f"generate a portal link for {organization_id}",
            lambda: self._client.organization.generate_portal_link(organization_id, values),
        )
        return PortalLinkView(link.id, link.location, _time(link, "expire_time"))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._threads.close()
        channel = getattr(self._client.core_client, "grpc_secure_channel", None)
        if channel is not None:
            with contextlib.suppress(Exception):
                channel.close()


def _check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (the API's cap)")


def _translate(
    exc: BaseException, host: str, what: str, timeout_s: float, secret: str
) -> ScalekitError:
    from scalekit.common import exceptions as sk

    def scrub(text: str) -> str:
        return text.replace(secret, "<redacted>") if secret else text

    from scim_readiness.clients.trust import certificate_problem

    if (refused := certificate_problem(exc)) is not None:
        # Over gRPC this arrives as UNAVAILABLE "failed to connect to all addresses".
        return ScalekitError(refused.sentence(f"{host} ({what})"))
    if isinstance(exc, sk.ScalekitUnauthorizedException):
        reason = scrub(_server_reason(exc)) or "unauthorized"
        return ScalekitAuthError(
            f"{host} refused the client credentials ({what}): {reason}",
            hint="check that SCALEKIT_CLIENT_ID and SCALEKIT_CLIENT_SECRET belong to this "
            "environment (credentials of one environment do not work in another)",
        )
    if isinstance(exc, sk.ScalekitNotFoundException):
        return ScalekitNotFoundError(f"{host}: not found ({what}): {scrub(_server_reason(exc))}")
    if isinstance(exc, sk.ScalekitGatewayTimeoutException):
        return ScalekitError(f"no answer from {host} within {timeout_s:g} s ({what})")
    if isinstance(exc, sk.ScalekitServiceUnavailableException):
        return ScalekitError(
            f"{host} is unavailable ({what}): {scrub(_server_reason(exc)) or 'no connection'}"
        )
    if isinstance(exc, sk.ScalekitBadRequestException):
        return ScalekitRequestError(
            f"{host} rejected the request ({what}): {scrub(_server_reason(exc))}"
        )
    if isinstance(exc, sk.ScalekitServerException):
        reason = scrub(_server_reason(exc)) or type(exc).__name__
        return ScalekitError(f"{host} answered with an error ({what}): {reason}")
    if isinstance(exc, sk.ScalekitException):
        return ScalekitError(f"could not reach {host} ({what}): {scrub(plain_cause(exc))}")
    return ScalekitError(f"talking to {host} failed ({what}): {scrub(plain_cause(exc))}")


async def _exchange_first(
    url: str, host: str, client_id: str, secret: str, tls: TlsSettings, timeout_s: float
) -> None:
    """Make the client-credentials exchange the SDK is about to make, with a cap on the
    answer's size: the SDK reads whatever the token endpoint sends, whole.

    Raises ScalekitError for what can be named plainly here (no answer, unreachable, an
    oversized answer, a success that is not a token); a refusal or a redirect is left to the
    SDK's own exchange, whose errors are translated with the rest.
    """
    import httpx

    from scim_readiness.clients.answers import CUT_SHORT, AnswerTooLarge, cut_short, request_capped
    from scim_readiness.clients.http import make_async_client

    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    try:
        async with asyncio.timeout(timeout_s), make_async_client(tls, timeout_s=timeout_s) as h:
            response = await request_capped(
                h, "POST", f"{url}{EXCHANGE_PATH}", cap=MAX_TOKEN_ANSWER_BYTES, data=form
            )
    except (TimeoutError, httpx.TimeoutException):
        raise ScalekitError(
            f"no complete answer from {host} within {timeout_s:g} s "
            f"(token exchange at {EXCHANGE_PATH})",
            hint="check the environment URL and that the host is reachable from here",
        ) from None
    except AnswerTooLarge:
        raise ScalekitError(
            f"the token endpoint at {host} sent an answer larger than "
            f"{MAX_TOKEN_ANSWER_BYTES:,} bytes (token exchange); a token answer is a few "
            "hundred bytes",
            hint="check that scalekit.environment_url names the Scalekit environment",
        ) from None
    except httpx.HTTPError as exc:
        # A TLS read cut short is no handshake failure, though ssl says "operation did not
        # complete": the answer started and then the connection ended.
        from scim_readiness.clients.trust import certificate_problem

        if (refused := certificate_problem(exc)) is not None:
            raise ScalekitError(refused.sentence(f"{host} (token exchange)")) from None
        reason = CUT_SHORT if cut_short(exc) else plain_cause(exc).replace(secret, "<redacted>")
        raise ScalekitError(f"could not reach {host} (token exchange): {reason}") from None
    from scim_readiness.clients.answers import HostileAnswer, decode_json, shown_endpoint

    if response.is_redirect:
        # The SDK would follow it and post the client secret again, wherever it points
        # (plain http included); a Scalekit environment answers the exchange itself.
        where = shown_endpoint(response.headers.get("location", ""))
        raise ScalekitError(
            f"the token endpoint at {host} redirects (HTTP {response.status_code} to {where}) "
            "instead of answering the token exchange; the client secret was not sent there",
            hint="set scalekit.environment_url to the environment's own URL (the redirect's "
            "target, if it is the environment)",
        )
    if not response.is_success:
        return  # a refusal: the SDK's own exchange meets it and its error says why

    try:
        document = decode_json(response.content)
    except HostileAnswer as exc:
        raise ScalekitError(
            f"the token endpoint at {host} sent an answer the checker refuses to read: {exc}",
            hint="check that scalekit.environment_url names the Scalekit environment",
        ) from None
    except ValueError:
        from scim_readiness.clients.answers import excerpt

        raise ScalekitError(
            f"the token endpoint at {host} answered HTTP {response.status_code} with a body "
            f"that is not JSON ({excerpt(response.content, [secret]) or 'empty'})",
            hint="check that scalekit.environment_url names the Scalekit environment itself, "
            "not a page or a proxy in front of it",
        ) from None
    if not isinstance(document, dict) or not document.get("access_token"):
        raise ScalekitError(
            f"the token endpoint at {host} answered HTTP {response.status_code} without an "
            "access_token",
            hint="check that scalekit.environment_url names the Scalekit environment",
        )


async def connect(section: ScalekitSection, tls: TlsSettings) -> ScalekitGateway:
    """Authenticate with the environment (client-credentials exchange) and open the channel.

    Raises ScalekitAuthError when the credentials are refused, ScalekitError when the
    environment cannot be reached or does not answer within ``section.timeout_s``.
    """
    missing = [
        name
        for name, value in (
            ("environment_url", section.environment_url),
            ("client_id", section.client_id),
            ("client_secret", section.client_secret),
        )
        if not value
    ]
    if missing:
        raise ScalekitError(
            f"scalekit.{', scalekit.'.join(missing)} not set",
            hint="set SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID and SCALEKIT_CLIENT_SECRET "
            "and reference them from the config",
        )
    assert section.environment_url and section.client_id and section.client_secret  # noqa: S101
    url = section.environment_url.rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.hostname:
        raise ScalekitError(
            f"the environment URL {url} is not an https:// URL",
            hint="Scalekit environments are https://<name>.scalekit.com (or .dev)",
        )
    host = parsed.netloc
    apply_trust(trust_bundle(tls.ca_files))
    secret = section.client_secret.get_secret_value()
    timeout_s = section.timeout_s
    client_id = section.client_id

    await _exchange_first(url, host, client_id, secret, tls, timeout_s)

    def build() -> Any:
        from scalekit import ScalekitClient

        return ScalekitClient(url, client_id, secret, call_timeout_s=timeout_s)

    started = time.perf_counter()
    try:
        client = await _in_thread(build, timeout_s, "connect")
    except TimeoutError:
        raise ScalekitError(
            f"no answer from {host} within {timeout_s:g} s (token exchange at /oauth/token)",
            hint="check the environment URL and that the host is reachable from here",
        ) from None
    except Exception as exc:  # noqa: BLE001
        raise _translate(exc, host, "token exchange", timeout_s, secret) from None
    return ScalekitGateway(
        client,
        host=host,
        timeout_s=timeout_s,
        token_latency_s=time.perf_counter() - started,
        secret=secret,
    )


def sdk_list_users_defect_present(client: Any, organization_id: str, directory_id: str) -> bool:
    """True while the SDK's own ``list_directory_users`` still fails on a non-empty page
    (the reason ``iter_directory_users`` goes through ``grpc_exec``). Blocking; for tests."""
    try:
        response, _ = client.directory.list_directory_users(
            organization_id, directory_id, page_size=1
        )
    except AttributeError:
        return True
    return not getattr(response, "users", None)
