"""The store for async code: `await db.read(store.get, job_id)`. The sync `Store` is the
one implementation; this decides only where each call runs, so that no call stalls the
event loop on a lock or a round trip.

- PostgreSQL: every call in a worker thread (each is a network round trip).
- SQLite: in process, inline: a thread hop costs more than most calls do (measured:
  batches of API submissions took ~2 ms inline, ~10 ms in a thread waiting for the GIL).
  Reads never wait (WAL readers never wait for a writer). A write tried on the loop does
  not wait either: if SQLite's write lock is held elsewhere it fails at once (StoreBusy)
  and runs again in the one writer thread, which waits out the busy timeout off the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from jobgate.store.connections import StoreBusy
from jobgate.store.store import Store

P = ParamSpec("P")
R = TypeVar("R")
READERS = 8  # PostgreSQL: round trips in flight at once (the pool holds 10 connections)


class AsyncStore:
    def __init__(self, store: Store) -> None:
        self.sync = store
        self.is_sqlite = store.is_sqlite
        # SQLite: one writer thread; PostgreSQL: a pool for reads and writes alike.
        threads = 1 if store.is_sqlite else READERS
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="jobgate-store")

    async def read(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        if self.is_sqlite:
            return fn(*args, **kwargs)
        return await self._in_pool(fn, *args, **kwargs)

    async def write(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        if self.is_sqlite:
            try:
                with self.sync.not_waiting():
                    return fn(*args, **kwargs)
            except StoreBusy:
                pass  # held elsewhere: wait for it, off the loop
        return await self._in_pool(fn, *args, **kwargs)

    async def _in_pool(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
