"""Calls that arrive together run as one: group commit for new jobs, one query for many
reads by id. Under 64 concurrent requests this turns one transaction (or round trip) per
request into one per few dozen; each caller is answered once its batch is done.

The batch waits one pass of the event loop, so that pass's requests join it; while it
runs (off the loop, through AsyncStore, for a write or a PostgreSQL read) the next batch
gathers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """`await batcher(item)` -> `(await run(items))[i]`, with `run` called for all items
    pending when it starts, one batch at a time (so batches run in order)."""

    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R]]], name: str) -> None:
        self._run = run
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        """The item's result; or what `run` raised, for every item of its batch."""
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if self._drain is None:
            self._drain = asyncio.create_task(self._run_all(), name=self._name)
        return await fut  # a caller cancelled (client gone) cancels only its own future

    async def _run_all(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # the rest of this loop pass's requests join
                batch, self._pending = self._pending, []
                try:
                    results = await self._run([item for item, _ in batch])
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
