"""Listening to running jobs (engine/talkback.py says what is heard): once a second for
`local` and once a poll interval for the others, one query for the running jobs this
supervisor watches, then what each wrote since the last look: read directly where the
files are on this host; over SSH, one remote command for up to CHUNK jobs (never one per
job). A job's last words are read before its end is written."""

from __future__ import annotations

import asyncio
import base64
import logging
import shlex
from collections.abc import Callable
from typing import Any

from jobgate.backends.base import Backend
from jobgate.backends.environment import EVENTS_FILE
from jobgate.config import Destination
from jobgate.engine.backends import Backends
from jobgate.engine.talkback import MAX_READ, Listener, Note
from jobgate.errors import JobgateError, TransientError
from jobgate.spec import JobRecord
from jobgate.store import AsyncStore
from jobgate.store.results import last_said, running_of

log = logging.getLogger(__name__)
LOCAL_EVERY_S = 1.0
CHUNK = 500  # jobs per remote read (a script of ~100 kB)


class Hearing:
    def __init__(
        self,
        db: AsyncStore,
        backends: Backends,
        gateway_id: str,
        add_notes: Callable[[list[Note]], None],
    ) -> None:
        self._db = db
        self._backends = backends
        self._gateway_id = gateway_id
        self._add_notes = add_notes
        self.listener = Listener()
        self.values: dict[str, dict[str, Any]] = {}  # job id -> its @var values heard

    async def run(self, dest: Destination) -> None:
        every = LOCAL_EVERY_S if dest.scheduler == "local" else dest.poll_interval_s
        while True:
            await asyncio.sleep(every)
            try:
                jobs = await self._db.read(running_of, self._db.sync, dest.name, self._gateway_id)
                notes: list[Note] = []
                for i in range(0, len(jobs), CHUNK):
                    notes += await self.look_all(jobs[i : i + CHUNK])
                if notes:
                    self._add_notes(notes)
            except JobgateError as exc:  # the store is busy or down: listen again later
                log.warning("listening to jobs of %s: %s", dest.name, exc)

    async def last_words(self, job: JobRecord) -> dict[str, Any]:
        """What the job said since the last look, noted; and all its @var values."""
        try:
            self._add_notes(await self.look_all([job]))
        except JobgateError as exc:
            log.warning("the last words of %s: %s", job.id, exc)
        self.listener.forget(job.id)
        return self.values.pop(job.id, {})

    async def look_all(self, jobs: list[JobRecord]) -> list[Note]:
        """What these jobs (of one destination) wrote since the last look, as notes."""
        if not jobs:
            return []
        backend = self._backends.get(jobs[0].destination)
        for job in jobs:
            if not self.listener.known(job.id):  # first look (or after a restart)
                said = await self._db.read(last_said, self._db.sync, job.id)
                self.listener.resume(job.id, said[-1].data if said else None)
                for e in said:
                    if e.type == "job.var":
                        self.values.setdefault(job.id, {})[e.data["name"]] = e.data["value"]
        if backend.destination.transport == "local":
            new = {job.id: await self._read_here(backend, job) for job in jobs}
        else:
            new = await self._read_remote(backend, jobs)
        notes: list[Note] = []
        for job_id, (out, events) in new.items():
            if out or events:
                notes += self.listener.hear(job_id, out, events)
        for job_id, kind, _, data in notes:
            if kind == "job.var":
                self.values.setdefault(job_id, {})[data["name"]] = data["value"]
        return notes

    async def _read_here(self, backend: Backend, job: JobRecord) -> tuple[bytes, bytes]:
        at_out, at_events = self.listener.offsets(job.id)
        out = await _read(backend, job, backend.files(job).stdout, at_out)
        return out, await _read(backend, job, EVENTS_FILE, at_events)

    async def _read_remote(
        self, backend: Backend, jobs: list[JobRecord]
    ) -> dict[str, tuple[bytes, bytes]]:
        """One shell script for all: per job and file, a header line and the new bytes in
        base64 on one line (a link or anything but a regular file reads as nothing)."""
        lines = []
        for job in jobs:
            files = backend.files(job)
            at_out, at_events = self.listener.offsets(job.id)
            for path, at in ((files.stdout, at_out), (files.marker(EVENTS_FILE), at_events)):
                q = shlex.quote(path)
                lines.append(
                    f"echo {job.id}; if [ -f {q} ] && [ ! -L {q} ]; then tail -c +{at + 1} {q}"
                    f" | head -c {MAX_READ} | base64 | tr -d '\\n'; fi; echo"
                )
        result = await backend.transport.run(["sh"], input="\n".join(lines) + "\n")
        if result.returncode != 0:
            raise TransientError(f"listening on {backend.destination.name}: {result.stderr}")
        out = result.stdout.splitlines()
        found: dict[str, list[bytes]] = {}
        for header, body in zip(out[0::2], out[1::2], strict=False):
            found.setdefault(header.strip(), []).append(base64.b64decode(body.strip() or b""))
        return {j: (parts[0], parts[1] if len(parts) > 1 else b"") for j, parts in found.items()}


async def _read(backend: Backend, job: JobRecord, path: str, offset: int) -> bytes:
    try:
        return await backend.read(job, path, offset, MAX_READ)
    except (OSError, ValueError):  # not written yet, or not a regular file: nothing heard
        return b""
