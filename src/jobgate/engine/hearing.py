"""Listening to running jobs (engine/talkback.py says what is heard): once a second for
`local` and once a poll interval for the others, the running jobs this supervisor watches
a chunk at a time (one query each), then what each wrote since the last look: read
directly where the files are on this host; over SSH, one remote command per chunk (never
one per job). A pass over many jobs waits nine times its own length before the next, so
listening takes at most a tenth of the gateway's time however many jobs run. A job's
last words are read before its end is written."""

from __future__ import annotations

import asyncio
import base64
import logging
import shlex
from collections.abc import Callable
from typing import Any

from jobgate.backends.base import Backend, JobFiles
from jobgate.backends.environment import EVENTS_FILE
from jobgate.config import Destination
from jobgate.engine.backends import Backends
from jobgate.engine.talkback import MAX_READ, Listener, Note
from jobgate.errors import JobgateError, TransientError
from jobgate.spec import JobRecord
from jobgate.store import AsyncStore
from jobgate.store.results import Listened, running_of, said_by
from jobgate.transports import beneath

log = logging.getLogger(__name__)
LOCAL_EVERY_S = 1.0
CHUNK = 500  # jobs per query and per remote read (a script of ~100 kB)
PASS_SHARE = 9  # a pass of listening is followed by at least 9 times its length idle
ENDED_KEPT = 10_000


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
        self._one_look: asyncio.Lock | None = None  # made on the loop, at first use
        self._ending: list[tuple[Listened, asyncio.Future[None]]] = []  # SSH: read together
        self._tasks: set[asyncio.Future[None]] = set()
        self.remote_reads = 0  # commands run to listen (tests check: never one per job)
        self._ended: dict[str, None] = {}  # the last ENDED_KEPT jobs whose last words were read

    async def run(self, dest: Destination) -> None:
        every = LOCAL_EVERY_S if dest.scheduler == "local" else dest.poll_interval_s
        loop, wait = asyncio.get_running_loop(), every
        while True:
            await asyncio.sleep(wait)
            started = loop.time()
            try:
                await self._listen_all(dest)
            except JobgateError as exc:  # the store is busy or down: listen again later
                log.warning("listening to jobs of %s: %s", dest.name, exc)
            wait = max(every, (loop.time() - started) * PASS_SHARE)

    async def _listen_all(self, dest: Destination) -> None:
        after = ""
        while True:
            jobs = await self._db.read(
                running_of, self._db.sync, dest.name, self._gateway_id, after, CHUNK
            )
            notes = await self.look_all(jobs)
            if notes:
                self._add_notes(notes)
            if len(jobs) < CHUNK:
                return
            after = jobs[-1].id

    async def last_words(self, job: JobRecord) -> dict[str, Any]:
        """What the job said since the last look, noted; and all its @var values. Over
        SSH the jobs that end together (one poll's reports) are read with one command."""
        if self._backends.get(job.destination).destination.transport == "local":
            await self._last_looks([_listened(job)])
        else:
            done = asyncio.get_running_loop().create_future()
            self._ending.append((_listened(job), done))
            if len(self._ending) == 1:  # the first of this pass: read them all soon
                asyncio.get_running_loop().call_soon(self._spawn_last_looks)
            await done
        self.listener.forget(job.id)
        self._ended[job.id] = None  # a look already under way must not hear it again
        while len(self._ended) > ENDED_KEPT:
            del self._ended[next(iter(self._ended))]
        return self.values.pop(job.id, {})

    def _spawn_last_looks(self) -> None:
        batch, self._ending = self._ending, []
        task = asyncio.ensure_future(self._last_looks([job for job, _ in batch]))  # noqa: RUF006 - kept in _tasks
        self._tasks.add(task)

        def _done(t: asyncio.Future[None]) -> None:
            self._tasks.discard(t)
            for _, waiting in batch:
                if not waiting.done():
                    waiting.set_result(None)

        task.add_done_callback(_done)

    async def _last_looks(self, jobs: list[Listened]) -> None:
        by_dest: dict[str, list[Listened]] = {}
        for job in jobs:
            by_dest.setdefault(job.destination, []).append(job)
        for group in by_dest.values():
            try:
                self._add_notes(await self.look_all(group))
            except JobgateError as exc:
                log.warning("the last words of %d jobs: %s", len(group), exc)

    async def look_all(self, jobs: list[Listened]) -> list[Note]:
        """What these jobs (of one destination) wrote since the last look, as notes. One
        look at a time: a job's last words must not be heard twice with a periodic look."""
        if not jobs:
            return []
        if self._one_look is None:
            self._one_look = asyncio.Lock()
        async with self._one_look:
            return await self._look_all(jobs)

    async def _look_all(self, jobs: list[Listened]) -> list[Note]:
        jobs = [j for j in jobs if j.id not in self._ended]
        if not jobs:
            return []
        backend = self._backends.get(jobs[0].destination)
        new_ids = [job.id for job in jobs if not self.listener.known(job.id)]
        if new_ids:  # first look (or after a restart): where the last note got to
            said = await self._db.read(said_by, self._db.sync, new_ids)
            for job_id in new_ids:
                earlier = said.get(job_id, [])
                self.listener.resume(job_id, earlier[-1].data if earlier else None)
                for e in earlier:
                    if e.type == "job.var":
                        self.values.setdefault(job_id, {})[e.data["name"]] = e.data["value"]
        if backend.destination.transport == "local" and len(jobs) == 1:
            new = self._read_here(backend, jobs)  # last words: two small reads, no hop
        elif backend.destination.transport == "local":  # one thread hop for all of them
            new = await asyncio.to_thread(self._read_here, backend, jobs)
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

    def _read_here(self, backend: Backend, jobs: list[Listened]) -> dict[str, tuple[bytes, bytes]]:
        new = {}
        for job in jobs:
            at_out, at_events = self.listener.offsets(job.id)
            files = _files(backend, job)
            new[job.id] = (_read(files, files.stdout, at_out), _read(files, EVENTS_FILE, at_events))
        return new

    async def _read_remote(
        self, backend: Backend, jobs: list[Listened]
    ) -> dict[str, tuple[bytes, bytes]]:
        """One shell script for all: per job and file, a header line and the new bytes in
        base64 on one line (a link or anything but a regular file reads as nothing)."""
        lines = []
        for job in jobs:
            files = _files(backend, job)
            at_out, at_events = self.listener.offsets(job.id)
            for path, at in ((files.stdout, at_out), (files.marker(EVENTS_FILE), at_events)):
                q = shlex.quote(path)
                lines.append(
                    f"echo {job.id}; if [ -f {q} ] && [ ! -L {q} ]; then tail -c +{at + 1} {q}"
                    f" | head -c {MAX_READ} | base64 | tr -d '\\n'; fi; echo"
                )
        self.remote_reads += 1
        result = await backend.transport.run(["sh"], input="\n".join(lines) + "\n")
        if result.returncode != 0:
            raise TransientError(f"listening on {backend.destination.name}: {result.stderr}")
        out = result.stdout.splitlines()
        found: dict[str, list[bytes]] = {}
        for header, body in zip(out[0::2], out[1::2], strict=False):
            found.setdefault(header.strip(), []).append(base64.b64decode(body.strip() or b""))
        return {j: (parts[0], parts[1] if len(parts) > 1 else b"") for j, parts in found.items()}


def _listened(job: JobRecord) -> Listened:
    return Listened(job.id, job.destination, job.run_dir, job.spec.directory, job.spec.stdout)


def _files(backend: Backend, job: Listened) -> JobFiles:
    run_dir = job.run_dir or backend.run_dir_of(job.id)
    if run_dir is None:  # running jobs were placed: their base is known
        raise TransientError(f"job {job.id} has no run directory yet")
    return JobFiles.at(run_dir, job.directory, job.stdout)


def _read(files: JobFiles, path: str, offset: int) -> bytes:
    """New bytes of a file on this host, opened beneath the job's directory (no link
    followed, no FIFO opened); nothing yet, or not a regular file: nothing heard."""
    try:
        return beneath.read_beneath(*files.anchor(path), offset, MAX_READ)
    except (OSError, ValueError):
        return b""
