"""Calls that arrive together run as one: group commit for new jobs, one query for many
reads by id. Under 64 concurrent requests this turns one transaction (or round trip) per
request into one per few dozen; each caller is answered once its batch is done.

Threaded (PostgreSQL): a batch runs in the batcher's worker thread while the event loop
reads more requests, which form the next batch. Inline (SQLite, in-process and ~2 ms a
batch): the batch runs on the loop, after the loop's current pass, whose requests join
it; a thread measured slower there (~10 ms a batch, waiting for the GIL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """`await batcher(item)` -> `run(items)[i]`, with `run` called for all items pending
    when it starts, one batch at a time (so batches run in order)."""

    def __init__(
        self, run: Callable[[list[T]], Sequence[R]], name: str, threaded: bool = True
    ) -> None:
        self._run = run
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._drain: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=name) if threaded else None

    async def __call__(self, item: T) -> R:
        """The item's result; or what `run` raised, for every item of its batch."""
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if self._drain is None:
            self._drain = asyncio.create_task(self._run_all(), name=self._name)
        return await fut  # a caller cancelled (client gone) cancels only its own future

    async def _run_all(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                if self._thread is None:
                    await asyncio.sleep(0)  # the rest of this loop pass's requests join
                batch, self._pending = self._pending, []
                items = [item for item, _ in batch]
                try:
                    if self._thread is None:
                        results = self._run(items)
                    else:
                        results = await loop.run_in_executor(self._thread, self._run, items)
                except Exception as exc:  # every caller of the batch hears it
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                else:
                    for (_, fut), result in zip(batch, results, strict=True):
                        if not fut.done():
                            fut.set_result(result)
        finally:
            self._drain = None

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
