"""Driving the two sides of a reconciliation concurrently into a :class:`Reconciler`.

The directory's pages and the app's pages arrive as two async streams; each is drained in a
task of its own, so a slow side never holds up the other, and a side that runs far ahead of
the other (in records waiting for a partner) pauses until the other catches up. The pure
join itself lives in :mod:`.reconcile`; this module is what brings asyncio into it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any, Literal, TypeVar

from .reconcile import AppRecord, DirectoryRecord, Progress, Reconciler, ReconcileResult

T = TypeVar("T")
Side = Literal["directory", "app"]


async def prefetched(source: AsyncIterable[T], depth: int = 2) -> AsyncIterator[T]:
    """``source`` read ahead by up to ``depth`` items in a task of its own, so fetching the
    next page overlaps with processing this one. Errors of the source surface here."""
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue(maxsize=depth)

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put((False, item))
        except Exception as exc:  # noqa: BLE001 - handed to the consumer below
            await queue.put((True, exc))
        else:
            await queue.put((True, None))
        finally:
            closer = getattr(source, "aclose", None)
            if closer is not None:
                await closer()

    task = asyncio.create_task(pump())
    try:
        while True:
            last, item = await queue.get()
            if last:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# A stream that runs this far ahead of the other (in records waiting for a partner) pauses
# until the other catches up. When both list users in about the same order (creation order,
# as directories and apps usually do) memory stays near this window instead of growing
# with the directory; when the orders differ, neither side pauses and nothing deadlocks.
DEFAULT_WINDOW = 5_000


class _Pacer:
    """Pauses the side that is more than ``window`` waiting records ahead of the other, until
    the other catches up or ends."""

    def __init__(self, reconciler: Reconciler, window: int) -> None:
        self._reconciler = reconciler
        self._window = window
        self._turn = asyncio.Condition()
        self._finished = {"directory": False, "app": False}
        self._paused = {"directory": False, "app": False}

    def _ahead(self, side: Side) -> bool:
        directory, app = self._reconciler.waiting_directory, self._reconciler.waiting_app
        mine, theirs = (directory, app) if side == "directory" else (app, directory)
        return not self._finished[_other(side)] and mine > self._window and mine > theirs

    async def pace(self, side: Side) -> None:
        if not self._paused[_other(side)] and not self._ahead(side):
            return  # the usual case, once per page: nobody to wake, no reason to wait
        async with self._turn:
            self._turn.notify_all()
            self._paused[side] = True
            try:
                await self._turn.wait_for(lambda: not self._ahead(side))
            finally:
                self._paused[side] = False

    async def done(self, side: Side) -> None:
        self._finished[side] = True
        async with self._turn:
            self._turn.notify_all()


def _other(side: Side) -> Side:
    return "app" if side == "directory" else "directory"


async def reconcile_streams(
    reconciler: Reconciler,
    *,
    directory_pages: AsyncIterable[Sequence[DirectoryRecord]],
    app_pages: AsyncIterable[Sequence[AppRecord]],
    progress: Progress | None = None,
    expected_total: int | None = None,
    window: int = DEFAULT_WINDOW,
) -> ReconcileResult:
    """Drain both streams concurrently into ``reconciler``; the first error cancels both."""
    pacer = _Pacer(reconciler, window)

    async def drain_directory() -> None:
        async for page in directory_pages:
            reconciler.add_directory_users(page)
            if progress is not None:
                progress(reconciler.result.directory_users, expected_total)
            await pacer.pace("directory")
        await pacer.done("directory")

    async def drain_app() -> None:
        async for page in app_pages:
            reconciler.add_app_users(page)
            await pacer.pace("app")
        await pacer.done("app")

    tasks = [asyncio.create_task(drain_directory()), asyncio.create_task(drain_app())]
    try:
        done_tasks, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done_tasks:
            error = task.exception()
            if error is not None:
                raise error  # the original error, not an ExceptionGroup, for the caller
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return reconciler.finish()
