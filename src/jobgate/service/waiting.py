"""Waiting for jobs: futures woken by the supervisor in this process after each commit
(a process without one polls the store, backing off)."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable

from jobgate.spec import JobRecord
from jobgate.states import JobState
from jobgate.store import AsyncStore


class Waiting:
    def __init__(self, db: AsyncStore, supervised: bool) -> None:
        self._db = db
        self._store = db.sync
        self._supervised = supervised
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}

    def notify(self, job_ids: builtins.list[str]) -> None:
        """Wake whoever waits on these jobs (the supervisor calls this after each commit)."""
        for job_id in job_ids:
            for fut in self._waiters.pop(job_id, []):
                if not fut.done():
                    fut.set_result(None)

    async def wait_change(self, job_id: str, timeout: float) -> None:
        """Until the supervisor in this process commits a change to the job, or the timeout."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(fut)
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel
                await fut
        except TimeoutError:
            self._forget(job_id, fut)

    def _forget(self, job_id: str, fut: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(job_id)
        if waiters and fut in waiters:
            waiters.remove(fut)

    async def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        until: Callable[[JobState], bool] | None = None,
    ) -> JobRecord:
        """Until the job is final (or `until(state)`), or the timeout passes: then its
        current record."""
        done = until or (lambda state: state.final)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = 0.02
        while True:
            job = await self._db.read(self._store.get, job_id)
            left = None if deadline is None else deadline - loop.time()
            if done(job.state) or job.state.final or (left is not None and left <= 0):
                return job
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(job_id, []).append(fut)
            # Re-read after registering: the job may have moved in between.
            if done((await self._db.read(self._store.get, job_id)).state):
                self._forget(job_id, fut)
                continue
            limit = delay if not self._supervised else 5.0  # safety net, not the path
            try:
                async with asyncio.timeout(min(limit, left) if left is not None else limit):
                    await fut
            except TimeoutError:
                delay = min(delay * 2, 1.0)
            finally:
                self._forget(job_id, fut)
