"""Group commit for new jobs: submissions that arrive together share one transaction.

While one batch commits in a worker thread (the event loop keeps reading requests), the
next batch gathers; each submitter is answered only once its job is committed. Under 64
concurrent POSTs this turns ~one commit per job into one per few dozen jobs.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from jobgate.spec import JobRecord
from jobgate.store.store import Store

_Item = tuple[JobRecord, str, "asyncio.Future[None]"]


class GroupInserter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: list[_Item] = []
        self._drain: asyncio.Task[None] | None = None
        # One thread: batches commit in order, and a store write never waits on another.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="jobgate-insert")

    async def insert(self, record: JobRecord, message: str) -> None:
        """Return once the job is committed (with the others of its batch); raise what
        the store raised for that batch."""
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((record, message, fut))
        if self._drain is None:
            self._drain = asyncio.create_task(self._commit_all(), name="jobgate-group-insert")
        await fut  # a caller cancelled (client gone) cancels only its own future

    async def _commit_all(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                items = [(record, message) for record, message, _ in batch]
                try:
                    await loop.run_in_executor(self._thread, self.store.insert_jobs, items)
                except Exception as exc:  # every submitter of the batch hears it
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                else:
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_result(None)
        finally:
            self._drain = None

    def close(self) -> None:
        self._thread.shutdown(wait=True)
