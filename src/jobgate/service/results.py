"""Results of job types: once a typed job ends, its type's parser reads a copy of the run
directory (fetched where the destination keeps it, over SSH for a remote one, never
following a link; parsed off the event loop) and what it returns is stored with the job.
A parser's error keeps the job's state and is recorded on the result and as an event."""

from __future__ import annotations

import asyncio
import builtins
import logging
import tempfile
from pathlib import Path
from typing import Any, Protocol

from jobgate.errors import JobgateError
from jobgate.service.files import FileService
from jobgate.service.jobtypes import JobTypes
from jobgate.spec import JobRecord
from jobgate.store import AsyncStore
from jobgate.store.results import Result, get_result, list_results, put_result

log = logging.getLogger(__name__)
CHUNK = 1 << 20


class Finisher(Protocol):
    """A door's work when a job ends, before its final state: what it returns is kept
    with the job's results."""

    def wants(self, record: JobRecord, /) -> bool: ...

    async def __call__(self, record: JobRecord, /) -> dict[str, Any]: ...


class ResultsService:
    def __init__(self, db: AsyncStore, job_types: JobTypes, files: FileService, limit: int) -> None:
        self._db = db
        self._types = job_types
        self._files = files
        self._limit = limit  # bytes of a run directory copied for its parser
        # A door's work at a job's end (TES writes outputs): what it returns joins the results.
        self.finishers: list[Finisher] = []

    def finishes(self, record: JobRecord) -> bool:
        """Whether a door has work at this job's end (then it always gets `finish`)."""
        return any(f.wants(record) for f in self.finishers)

    async def finish(self, record: JobRecord, values: dict[str, Any]) -> None:
        """A typed job (or one that said @var values) whose outputs are in, before its end
        state is written (the supervisor's `finishing`): whoever sees it final sees its
        results too."""
        for finisher in (f for f in self.finishers if f.wants(record)):
            try:
                values = {**values, **await finisher(record)}
            except Exception as exc:  # a door's code: the job ends regardless
                log.warning("finishing %s: %s: %s", record.id, type(exc).__name__, exc)
        if record.spec.job_type is None and not values:
            return
        try:
            await self.parse(record, values)
        except JobgateError as exc:  # the store is down: the job ends regardless
            log.warning("could not keep the results of %s: %s", record.id, exc)

    async def parse(self, record: JobRecord, values: dict[str, Any] | None = None) -> None:
        """The job's results: what its type's parser read, with its @var values merged in
        (the parser's win: it read the job's files, the job only said)."""
        name = record.spec.job_type or ""
        data: dict[str, Any] = {}
        error = None
        try:
            job_type = self._types.get(name, embedded=True) if name else None
            if job_type is not None and job_type.parse_results is not None:
                with tempfile.TemporaryDirectory(prefix="jobgate-parse-") as copy:
                    await self._copy(record, Path(copy))
                    data = await asyncio.to_thread(_parse, job_type.parse_results, copy)
        except Exception as exc:  # the parser is the job type's code: its error is its own
            error = f"{type(exc).__name__}: {exc}"
        data = {**(values or {}), **data}
        message = f"results: parser failed: {error}" if error else f"results: {len(data)} values"
        result = (record.id, record.owner, name, data, error)
        await self._db.write(put_result, self._db.sync, *result, message)

    async def _copy(self, record: JobRecord, into: Path) -> None:
        total = 0
        for name in await self._files.list(record):
            reader = await self._files.open(record, name)
            try:
                target = into / name
                await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
                with target.open("wb") as out:
                    offset = 0
                    while chunk := await reader.read(offset, CHUNK):
                        offset += len(chunk)
                        total += len(chunk)
                        if total > self._limit:
                            raise ValueError(f"the run directory holds over {self._limit:,} bytes")
                        out.write(chunk)
            finally:
                await reader.close()

    async def get(self, job_id: str) -> Result | None:
        return await self._db.read(get_result, self._db.sync, job_id)

    async def list(self, **filters: Any) -> builtins.list[Result]:
        return await self._db.read(list_results, self._db.sync, **filters)


def _parse(parser: Any, run_dir: str) -> dict[str, Any]:
    value = parser(run_dir)
    if not isinstance(value, dict):
        raise TypeError(f"parse_results returned {type(value).__name__}, not a dict")
    return value
