"""Every user of a large directory, page after page, at the speed the API allows.

The `data-model` check reads whole directories (100,000 users is ordinary), so paging is its
critical path: 30 users per call, each call waiting for the one before (the page token). The
project's gateway runs each call in a fresh thread and turns every user into a view with its
whole detail converted to a dict, which costs about as much again as the calls themselves.
Here one worker thread pages through the SDK's generated stub (``core_client.grpc_exec``,
the same path the gateway uses, keeping the SDK's auth, retries and per-call deadline) and
reads ahead a few pages, while the event loop picks the few fields it needs straight from the
protobuf messages (:func:`lean_user`).

Errors end the stream as :class:`~scim_readiness.errors.ScalekitError`; a worker that stops
answering is abandoned (daemon thread) after ``page_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from scim_readiness.errors import ScalekitError

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
    """The fields reconciliation needs, read from a ``DirectoryUser`` message directly."""
    fields = message.user_detail.fields if message.HasField("user_detail") else {}
    active: bool | None = None
    if "active" in fields:
        raw = _value(fields["active"])
        active = raw if isinstance(raw, bool) else None
    roles: tuple[str, ...] | None = None
    if "roles" in fields:
        listed = _value(fields["roles"])
        if listed is not None and hasattr(listed, "values"):
            names = []
            for item in listed.values:
                entry = _value(item)
                if isinstance(entry, str):
                    names.append(entry)
                elif entry is not None and hasattr(entry, "fields") and "role_name" in entry.fields:
                    name = _value(entry.fields["role_name"])
                    if isinstance(name, str):
                        names.append(name)
            roles = tuple(names)
    email = message.email or (_value(fields["email"]) if "email" in fields else "") or ""
    return LeanUser(
        message.id,
        str(email),
        active,
        roles,
        tuple((group.id, group.display_name) for group in message.groups),
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
    from scalekit.v1.directories import directories_pb2 as dpb

    client = gateway.sdk_client
    host = getattr(gateway, "host", "Scalekit")
    # The SDK bounds each attempt by its call timeout and retries twice on UNAVAILABLE.
    timeout = page_timeout_s or 3 * float(getattr(gateway, "timeout_s", 10.0)) + 2
    stub = client.directory.directory_service.ListDirectoryUsers
    core = client.core_client
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[list[Any] | None, BaseException | None]] = asyncio.Queue()
    space = threading.Semaphore(read_ahead)
    stop = threading.Event()

    def post(item: tuple[list[Any] | None, BaseException | None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop may be gone already
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        token = ""
        seen: set[str] = set()
        try:
            while not stop.is_set():
                while not space.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                request = dpb.ListDirectoryUsersRequest(
                    organization_id=organization_id,
                    directory_id=directory_id,
                    page_size=page_size,
                    page_token=token,
                    include_detail=True,
                )
                response, _ = core.grpc_exec(stub.with_call, request)
                post((list(response.users), None))
                token = response.next_page_token
                if not token:
                    post((None, None))
                    return
                if token in seen:
                    raise ScalekitError(
                        f"{host} returned the same page token twice (list users of "
                        f"directory {directory_id})"
                    )
                seen.add(token)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            post((None, exc))

    worker = threading.Thread(target=work, name="scim-readiness-directory-pages", daemon=True)
    worker.start()
    try:
        while True:
            try:
                page, error = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                raise ScalekitError(
                    f"no answer from {host} within {timeout:g} s (list users of directory "
                    f"{directory_id})",
                    hint="raise scalekit.timeout_s only if the environment is known to be slow",
                ) from None
            space.release()
            if error is not None:
                raise _as_scalekit_error(error, host, directory_id)
            if page is None:
                return
            yield page
    finally:
        stop.set()


def _as_scalekit_error(error: BaseException, host: str, directory_id: str) -> ScalekitError:
    if isinstance(error, ScalekitError):
        return error
    from scim_readiness.clients.scalekit import plain_cause

    what = f"list users of directory {directory_id}"
    name = type(error).__name__
    if "Unauthorized" in name:
        from scim_readiness.errors import ScalekitAuthError

        return ScalekitAuthError(f"{host} refused the client credentials ({what})")
    return ScalekitError(f"listing users from {host} failed ({what}): {name}: {plain_cause(error)}")
