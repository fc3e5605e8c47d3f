"""Listening to running jobs (engine/talkback.py says what is heard): on each destination
whose files are on this host, once a second for `local` and once a poll interval for a
scheduler, one query for the running jobs this supervisor watches and a read of what
each wrote since the last look; a job's last words are read before its end is written.
Destinations reached over SSH are not listened to yet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from jobgate.backends.base import Backend
from jobgate.backends.environment import EVENTS_FILE
from jobgate.config import Destination
from jobgate.engine.backends import Backends
from jobgate.engine.talkback import MAX_READ, Listener, Note
from jobgate.errors import JobgateError
from jobgate.spec import JobRecord
from jobgate.store import AsyncStore
from jobgate.store.results import last_said, running_of

log = logging.getLogger(__name__)
LOCAL_EVERY_S = 1.0


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

    @staticmethod
    def hears(dest: Destination) -> bool:
        return dest.transport == "local"

    async def run(self, dest: Destination) -> None:
        every = LOCAL_EVERY_S if dest.scheduler == "local" else dest.poll_interval_s
        while True:
            await asyncio.sleep(every)
            try:
                jobs = await self._db.read(running_of, self._db.sync, dest.name, self._gateway_id)
                notes: list[Note] = []
                for job in jobs:
                    notes += await self.look(job)
                if notes:
                    self._add_notes(notes)
            except JobgateError as exc:  # the store is busy or down: listen again later
                log.warning("listening to jobs of %s: %s", dest.name, exc)

    async def last_words(self, job: JobRecord) -> dict[str, Any]:
        """What the job said since the last look, noted; and all its @var values."""
        if not self.hears(self._backends.get(job.destination).destination):
            return {}
        try:
            self._add_notes(await self.look(job))
        except JobgateError as exc:
            log.warning("the last words of %s: %s", job.id, exc)
        self.listener.forget(job.id)
        return self.values.pop(job.id, {})

    async def look(self, job: JobRecord) -> list[Note]:
        backend = self._backends.get(job.destination)
        if not self.listener.known(job.id):  # first look (or after a restart)
            said = await self._db.read(last_said, self._db.sync, job.id)
            self.listener.resume(job.id, said[-1].data if said else None)
            for e in said:
                if e.type == "job.var":
                    self.values.setdefault(job.id, {})[e.data["name"]] = e.data["value"]
        at_out, at_events = self.listener.offsets(job.id)
        out = await _read(backend, job, backend.files(job).stdout, at_out)
        events = await _read(backend, job, EVENTS_FILE, at_events)
        if not out and not events:
            return []
        notes = self.listener.hear(job.id, out, events)
        for _, kind, _, data in notes:
            if kind == "job.var":
                self.values.setdefault(job.id, {})[data["name"]] = data["value"]
        return notes


async def _read(backend: Backend, job: JobRecord, path: str, offset: int) -> bytes:
    try:
        return await backend.read(job, path, offset, MAX_READ)
    except (OSError, ValueError):  # not written yet, or not a regular file: nothing heard
        return b""
