"""The Python SDK: `AsyncGateway` (the async core) and `Gateway` (its sync facade).

The facade runs the async core on one background event loop (the stdlib loop: uvloop
spawns processes 4x slower here) and forwards each call; nothing is written twice.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from jobgate.config import Config, load_config
from jobgate.handle import Job, JobSource, Page
from jobgate.runtime import Runtime
from jobgate.service import JobService
from jobgate.spec import JobEvent, JobRecord, JobSpec
from jobgate.states import JobState
from jobgate.tasks import TaskOut
from jobgate.views import ResultOut

T = TypeVar("T")
PAGE = 1000  # jobs per page when listing them all
CHUNK = 1 << 20
__all__ = ["AsyncGateway", "Gateway", "Job", "JobSource", "Page"]


class AsyncGateway:
    """A gateway in this process: store + service (+ supervisor, unless `supervise=False`),
    built by the composition root (`jobgate.runtime`)."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        config_path: str | os.PathLike[str] | None = None,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        supervise: bool | None = True,
    ) -> None:
        """`supervise=None`: run a supervisor only if no other one is alive (the CLI's way)."""
        self.config = config or load_config(config_path, home=home, database_url=database_url)
        self._runtime = Runtime(self.config, supervise)
        self.service = self._runtime.service

    @property
    def supervising(self) -> bool:
        return self.service.supervising

    async def start(self) -> AsyncGateway:
        await self._runtime.start()
        return self

    async def close(self) -> None:
        await self._runtime.close()

    async def __aenter__(self) -> AsyncGateway:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def submit(
        self, spec: JobSpec | dict[str, Any] | None = None, **fields: Any
    ) -> JobRecord:
        return await self.service.submit(spec if spec is not None else fields)

    async def get(self, job_id: str) -> JobRecord:
        return await self.service.get(job_id)

    async def list(self, **filters: Any) -> builtins.list[JobRecord]:
        return await self.service.list(**filters)

    async def cancel(self, job_id: str) -> JobRecord:
        return await self.service.cancel(job_id)

    async def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        until: Callable[[JobState], bool] | None = None,
    ) -> JobRecord:
        return await self.service.wait(job_id, timeout, until)

    async def events(self, job_id: str, after: int = 0) -> builtins.list[JobEvent]:
        return await self.service.events(job_id, after)

    async def read_log(self, job_id: str, stream: str, offset: int = 0) -> bytes:
        return await self.service.read_log(job_id, stream, offset)

    async def destinations(self) -> builtins.list[dict[str, Any]]:
        return await self.service.system.destinations()


class Gateway:
    """Sync facade: `Gateway().submit(JobSpec(script="echo hi")).wait()`."""

    def __init__(self, config: Config | None = None, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jobgate", daemon=True)
        self._thread.start()
        try:
            self._core = self._call(_make(config, kwargs))
        except BaseException:
            self._stop_loop()
            raise

    @property
    def config(self) -> Config:
        return self._core.config

    @property
    def home(self) -> Path:
        return self._core.config.home

    def _call(self, coro: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(_as_coro(coro), self._loop).result()

    def submit(self, spec: JobSpec | dict[str, Any] | None = None, **fields: Any) -> Job:
        # In this thread, not the loop's: validation and one insert need no event loop.
        record, _ = self._core.service.submit_now(spec if spec is not None else fields)
        return Job(self, record, self._core.service.ignored(record))

    def submit_many(self, specs: Sequence[JobSpec | dict[str, Any]]) -> builtins.list[Job]:
        """Many jobs in one transaction (all checked first: one bad spec stores none)."""
        records = self._core.service.submit_many_now(specs)
        return [Job(self, r, self._core.service.ignored(r)) for r in records]

    def get(self, job_id: str) -> Job:
        return Job(self, self._call(self._core.get(job_id)))

    @property
    def service(self) -> JobService:
        """The service, for sync callers that need more than this facade (the CLI)."""
        return self._core.service

    @property
    def supervising(self) -> bool:
        return self._core.supervising

    def list(
        self,
        state: JobState | str | list[JobState | str] | None = None,
        destination: str | None = None,
        label: dict[str, str] | None = None,
        name: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Job]:
        """Newest first, at most `limit` (0: all of them, page by page)."""
        filters: dict[str, Any] = {
            "state": state,
            "destination": destination,
            "label": label,
            "name": name,
        }
        jobs: builtins.list[Job] = []
        cursor = None
        while True:
            size = PAGE if limit <= 0 else min(PAGE, limit - len(jobs))
            page = self.page(limit=size, cursor=cursor, **filters)
            jobs += page.jobs
            cursor = page.next_cursor
            if cursor is None or 0 < limit <= len(jobs):
                return jobs

    def page(
        self, *, limit: int = 100, cursor: str | None = None, count: bool = False, **filters: Any
    ) -> Page:
        """One page of jobs older than `cursor` (filters as `list`); `count`: also the total."""
        service = self._core.service
        records = self._call(service.list(before=cursor, limit=limit, **filters))
        total = self._call(service.count(**filters)) if count else None
        after = records[-1].id if len(records) == limit else None
        return Page([Job(self, r) for r in records], after, total)

    def destinations(self) -> builtins.list[dict[str, Any]]:
        """Each destination with its capacity and load."""
        return self._call(self._core.destinations())

    def cancel(self, job_id: str) -> Job:
        return Job(self, self._cancel(job_id))

    # -- JobSource ------------------------------------------------------------------------

    def _record(self, job_id: str) -> JobRecord:
        return self._call(self._core.get(job_id))

    def _wait(
        self, job_id: str, timeout: float | None, until: Callable[[JobState], bool] | None
    ) -> JobRecord:
        return self._call(self._core.wait(job_id, timeout, until))

    def _cancel(self, job_id: str) -> JobRecord:
        return self._call(self._core.cancel(job_id))

    def _read_log(self, job_id: str, stream: str, offset: int) -> bytes:
        return self._call(self._core.read_log(job_id, stream, offset))

    def _events(self, job_id: str) -> builtins.list[JobEvent]:
        return self._call(self._core.events(job_id))

    def _follow_log(self, job_id: str, stream: str) -> Iterator[bytes]:
        offset = 0
        while True:
            final = self._wait(job_id, 0.1, None).state.final
            data = self._read_log(job_id, stream, offset)
            offset += len(data)
            if data:
                yield data
            if final:
                return

    def _waiting(self, job_id: str) -> str | None:
        return self._call(self._core.service.waiting_reason(self._record(job_id)))

    def _tasks(self, job_id: str) -> builtins.list[TaskOut]:
        return self._call(self._core.service.tasks(job_id))

    def _files(self, job_id: str) -> builtins.list[str]:
        return self._call(self._core.service.files.list(self._record(job_id)))

    def _results(self, job_id: str) -> dict[str, Any] | None:
        self._record(job_id)  # no such job: NotFoundError
        found = self._call(self._core.service.results.get(job_id))
        return None if found is None else ResultOut.of(found).model_dump(mode="json")

    def results(
        self, *, job_type: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Results of finished typed jobs, newest first (keyset: `cursor` = a job id)."""
        rows = self._call(
            self._core.service.results.list(job_type=job_type, limit=limit, before=cursor)
        )
        return [ResultOut.of(r).model_dump(mode="json") for r in rows]

    def _download(self, job_id: str, path: str) -> Iterator[bytes]:
        reader = self._call(self._core.service.files.open(self._record(job_id), path))
        try:
            offset = 0
            while data := self._call(reader.read(offset, CHUNK)):
                offset += len(data)
                yield data
        finally:
            self._call(reader.close())

    def close(self) -> None:
        if self._loop.is_running():
            try:
                self._call(self._core.close())
            finally:
                self._call(_cancel_pending())  # e.g. a wait that Ctrl-C cut short
                self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _make(config: Config | None, kwargs: dict[str, Any]) -> AsyncGateway:
    return await AsyncGateway(config, **kwargs).start()


async def _cancel_pending() -> None:
    """End every other task of the loop, so none is destroyed while still pending."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _as_coro(awaitable: Awaitable[T]) -> T:
    return await awaitable
