"""Every user of a large directory, page after page, at the speed the API allows.

The `data-model` check reads whole directories (100,000 users is ordinary), so paging is its
critical path: 30 users per call, each call waiting for the one before (the page token). The
project's gateway hands each call to a worker thread and back and turns every user into a
view with its whole detail converted to a dict, which costs about as much again as the calls
themselves. Here one worker thread pages through the SDK's generated stub
(``core_client.grpc_exec``, the same path the gateway uses, keeping the SDK's auth, retries
and per-call deadline) and reads ahead a few pages, so the next call is on the wire while the
event loop picks the few fields it needs straight from the protobuf messages
(:func:`lean_user`). Measured on loopback, the directory side of a reconciliation then takes
as long as the SDK paging alone.

Errors end the stream as :class:`~scim_readiness.errors.ScalekitError`; a worker that stops
answering is abandoned (daemon thread) after ``page_timeout_s``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

from scalekit.v1.directories import directories_pb2 as dpb

from scim_readiness.api import ScalekitAuthError, ScalekitError
from scim_readiness.clients.scalekit import plain_cause

MAX_PAGE_SIZE = 30  # the API's cap


class LeanUser(NamedTuple):
    id: str
    email: str
    active: bool | None  # None: the directory does not say
    roles: tuple[str, ...] | None  # None: the directory does not say
    groups: tuple[tuple[str, str], ...]  # (group id, display name)


def _value(value: Any) -> Any:
    """A protobuf ``Value`` as a plain scalar (lists and structs stay messages)."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "number_value":
        return value.number_value
    if kind == "list_value":
        return value.list_value
    if kind == "struct_value":
        return value.struct_value
    return None


def lean_user(message: Any) -> LeanUser:
    """The fields reconciliation needs, read from a ``DirectoryUser`` message directly.

    Each map read makes a wrapper object, so every field is read once (``get``, which adds
    nothing to the map) and its kind tested on the spot: this runs 100,000 times a check.
    """
    fields = message.user_detail.fields  # empty when the user carries no detail
    value = fields.get("active")
    active = (
        value.bool_value if value is not None and value.WhichOneof("kind") == "bool_value" else None
    )
    roles: tuple[str, ...] | None = None
    value = fields.get("roles")
    if value is not None and value.WhichOneof("kind") == "list_value":
        names = []
        for item in value.list_value.values:
            kind = item.WhichOneof("kind")
            if kind == "string_value":
                names.append(item.string_value)
            elif kind == "struct_value":
                name = item.struct_value.fields.get("role_name")
                if name is not None and name.WhichOneof("kind") == "string_value":
                    names.append(name.string_value)
        roles = tuple(names)
    email = message.email
    if not email:
        value = fields.get("email")
        email = str(_value(value) or "") if value is not None else ""
    groups = message.groups
    return LeanUser(
        message.id,
        email,
        active,
        roles,
        tuple((group.id, group.display_name) for group in groups) if groups else (),
    )


_TOP_LEVEL = frozenset({"id", "email", "preferred_username", "given_name", "family_name"})


def has_attribute(message: Any, name: str) -> bool:
    """Whether the user carries a non-empty ``name`` (dotted paths allowed): a top-level field,
    or in the detail, its ``custom_attributes`` or its ``raw_attributes``."""
    if name in _TOP_LEVEL and getattr(message, name):
        return True
    if not message.HasField("user_detail"):
        return False
    detail = message.user_detail
    for prefix in ((), ("custom_attributes",), ("raw_attributes",)):
        if _struct_path(detail, (*prefix, *name.split("."))) not in (None, "", 0.0):
            return True
    return False


def _struct_path(struct: Any, path: tuple[str, ...]) -> Any:
    node: Any = struct
    for part in path:
        if node is None or not hasattr(node, "fields") or part not in node.fields:
            return None
        node = _value(node.fields[part])
    if node is not None and hasattr(node, "values"):
        return node if len(node.values) else None
    if node is not None and hasattr(node, "fields"):
        return node if len(node.fields) else None
    return node


_Item = tuple[list[Any] | None, BaseException | None]  # (a page, or None at the end; an error)


class _PageWorker:
    """A daemon thread that pages through the directory, at most ``read_ahead`` pages ahead
    of the consumer, and hands each page to the event loop's ``queue``.

    Pages travel through ``handed``; the loop is woken only when no wake-up is pending, so a
    busy consumer takes several pages per wake-up instead of one wake-up per page.
    """

    def __init__(
        self,
        fetch: Callable[[str], tuple[list[Any], str]],
        *,
        read_ahead: int,
        host: str,
        directory_id: str,
    ) -> None:
        self._fetch = fetch  # page token -> (users, next page token)
        self._host = host
        self._directory_id = directory_id
        self._loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._space = threading.Semaphore(read_ahead)
        self._stop = threading.Event()
        self._handed: collections.deque[_Item] = collections.deque()
        self._lock = threading.Lock()
        self._wake_pending = False

    def start(self) -> None:
        name = "scim-readiness-directory-pages"
        threading.Thread(target=self._work, name=name, daemon=True).start()

    def taken(self) -> None:
        """The consumer took a page: the worker may read one more ahead."""
        self._space.release()

    def stop(self) -> None:
        self._stop.set()

    def _take_handed(self) -> None:
        with self._lock:
            self._wake_pending = False
            items = list(self._handed)
            self._handed.clear()
        for item in items:
            self.queue.put_nowait(item)

    def _post(self, item: _Item) -> None:
        with self._lock:
            self._handed.append(item)
            if self._wake_pending:
                return
            self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop may be gone already
            self._loop.call_soon_threadsafe(self._take_handed)

    def _work(self) -> None:
        token = ""
        seen: set[str] = set()
        try:
            while not self._stop.is_set():
                while not self._space.acquire(timeout=0.5):
                    if self._stop.is_set():
                        return
                users, token = self._fetch(token)
                self._post((users, None))
                if not token:
                    self._post((None, None))
                    return
                if token in seen:
                    raise ScalekitError(
                        f"{self._host} returned the same page token twice (list users of "
                        f"directory {self._directory_id})"
                    )
                seen.add(token)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._post((None, exc))


async def iter_user_pages(
    gateway: Any,
    organization_id: str,
    directory_id: str,
    *,
    page_size: int = MAX_PAGE_SIZE,
    read_ahead: int = 4,
    page_timeout_s: float | None = None,
) -> AsyncIterator[list[Any]]:
    """Pages of ``DirectoryUser`` protobuf messages (read them with :func:`lean_user`)."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (the API's cap)")

    client = gateway.sdk_client
    host = getattr(gateway, "host", "Scalekit")
    # The SDK bounds each attempt by its call timeout and retries twice on UNAVAILABLE.
    timeout = page_timeout_s or 3 * float(getattr(gateway, "timeout_s", 10.0)) + 2
    stub = client.directory.directory_service.ListDirectoryUsers
    core = client.core_client

    def fetch(token: str) -> tuple[list[Any], str]:
        request = dpb.ListDirectoryUsersRequest(
            organization_id=organization_id,
            directory_id=directory_id,
            page_size=page_size,
            page_token=token,
            include_detail=True,
        )
        response, _ = core.grpc_exec(stub.with_call, request)
        return list(response.users), response.next_page_token

    worker = _PageWorker(fetch, read_ahead=read_ahead, host=host, directory_id=directory_id)
    worker.start()
    try:
        while True:
            page, error = await _next_page(worker.queue, timeout, host, directory_id)
            worker.taken()
            if error is not None:
                raise _as_scalekit_error(error, host, directory_id)
            if page is None:
                return
            yield page
    finally:
        worker.stop()


async def _next_page(
    queue: asyncio.Queue[_Item], timeout: float, host: str, directory_id: str
) -> _Item:
    if not queue.empty():  # read ahead already: no timer, no task for this page
        return queue.get_nowait()
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except TimeoutError:
        raise ScalekitError(
            f"no answer from {host} within {timeout:g} s (list users of directory {directory_id})",
            hint="raise scalekit.timeout_s only if the environment is known to be slow",
        ) from None


def _as_scalekit_error(error: BaseException, host: str, directory_id: str) -> ScalekitError:
    if isinstance(error, ScalekitError):
        return error
    what = f"list users of directory {directory_id}"
    name = type(error).__name__
    if "Unauthorized" in name:
        return ScalekitAuthError(f"{host} refused the client credentials ({what})")
    return ScalekitError(f"listing users from {host} failed ({what}): {name}: {plain_cause(error)}")
