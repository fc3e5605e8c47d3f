"""`jobgate serve` watches every queue: one listing per queue per interval (never one
call per object), claims new job files (claims.py), and writes each ended job's results
the way Alces does, under `completed/<job id>/`: `logs` (stdout, then stderr), `status`
(the exit code as text, or why there is none), `job` (the file as received), the runner's
`output/` files, and `validation` (what a refusing validator printed)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from jobgate.config import QueueConfig
from jobgate.errors import JobgateError
from jobgate.queues.claims import Claims
from jobgate.service import JobService
from jobgate.service.queues import Item
from jobgate.spec import JobRecord
from jobgate.states import JobState

log = logging.getLogger(__name__)


def open_queue(q: QueueConfig) -> tuple[Any, str]:
    """The queue's file system and root path (fsspec: file://, s3://, ...)."""
    import fsspec  # imported here: only gateways with queues pay for it

    fs, root = fsspec.core.url_to_fs(q.url, **q.storage_options)
    return fs, str(root)


class QueueWatcher:
    def __init__(self, service: JobService, queues: dict[str, QueueConfig]) -> None:
        self.service = service
        self.queues = queues

    async def run(self) -> None:
        await asyncio.gather(*(self._watch(q) for q in self.queues.values()))

    async def _watch(self, q: QueueConfig) -> None:
        claims: Claims | None = None
        failing: str | None = None  # said once, not on every pass
        while True:
            try:
                if claims is None:
                    fs, root = await asyncio.to_thread(open_queue, q)
                    claims = Claims(self.service, q, fs, root)
                await asyncio.to_thread(claims.poll)
                await self._complete(claims)
            except Exception as exc:  # this queue only: the others keep being served
                if f"{exc}" != failing:
                    log.warning("queue %s (%s): %s", q.name, q.url, exc)
                failing = f"{exc}"
            else:
                if failing is not None:
                    log.warning("queue %s (%s): listed again", q.name, q.url)
                failing = None
            await asyncio.sleep(q.poll_interval_s)

    async def _complete(self, claims: Claims) -> None:
        items = await asyncio.to_thread(
            self.service.queue_items.items_now, claims.q.name, "submitted"
        )
        if not items:
            return
        jobs = await asyncio.to_thread(self.service.queue_items.jobs_now, [i.job_id for i in items])
        for item, job in zip(items, jobs, strict=True):
            if job is not None and job.state.final:
                await self._write(claims, item, job)

    async def _write(self, claims: Claims, item: Item, job: JobRecord) -> None:
        files = self.service.files
        out: dict[str, bytes] = {
            "logs": await files.read_log(job, "stdout") + await files.read_log(job, "stderr"),
        }
        if job.state == JobState.REJECTED:  # it never ran: the file as received is an upload
            out["validation"] = f"{job.reason}\n".encode()
            source = next(f.source for f in job.spec.input_files if f.target == "job")
            out["job"] = await asyncio.to_thread(Path(source).read_bytes)
        else:
            for name in await files.list(job):
                if name == "job" or name.startswith("output/"):
                    out[name] = await _read_all(files, job, name)
        out["status"] = f"{_status(job)}\n".encode()  # last: with it, the rest is there
        base = f"{claims.root}/completed/{job.id}"
        try:
            await asyncio.to_thread(_put_all, claims.fs, base, out)
        except (OSError, JobgateError) as exc:  # the next pass writes it again
            log.warning("queue %s: writing %s: %s", claims.q.name, base, exc)
            return
        await asyncio.to_thread(self.service.queue_items.completed_now, item)


def _status(job: JobRecord) -> str:
    if job.exit_code is not None and job.state != JobState.REJECTED:
        return str(job.exit_code)
    return f"{job.state.value}: {job.reason or 'no exit code'}"


async def _read_all(files: Any, job: JobRecord, name: str) -> bytes:
    reader = await files.open(job, name)
    chunks, offset = [], 0
    try:
        while chunk := await reader.read(offset, 1 << 20):
            chunks.append(chunk)
            offset += len(chunk)
    finally:
        await reader.close()
    return b"".join(chunks)


def _put_all(fs: Any, base: str, out: dict[str, bytes]) -> None:
    for name, data in out.items():
        path = f"{base}/{name}"
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, data)
