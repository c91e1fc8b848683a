"""Group commit for a worker's results.

A job that records its result (and settles itself) in the database waits for its turn
at the write lock; on SQLite there is one such lock for everyone, the server's pushes
included. Results submitted while a write is under way are written together in the
next one, so a busy worker takes the lock once for many jobs, and an idle one writes
at once (no waiting to fill a batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from anyio import to_thread

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Callable[[Sequence[T]], list[R]], *, most: int = 64) -> None:
        """``write`` stores a batch in one transaction (in a thread) and returns one
        result per item, in order."""
        self._write = write
        self._most = most
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writing = False
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Store ``item`` with whatever else is waiting; its result, or the batch's
        error."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if not self._writing:
            self._writing = True
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._most]
                del self._waiting[: self._most]
                try:
                    results = await to_thread.run_sync(self._write, [item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._writing = False
