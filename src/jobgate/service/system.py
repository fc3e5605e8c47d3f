"""The gateway itself, for the doors: destinations and their load, why a job waits, job
counts, health, callback deliveries, and the callback formats doors bring."""

from __future__ import annotations

import time
from typing import Any

from jobgate.config import Config
from jobgate.engine.callbacks import CallbackDispatcher
from jobgate.engine.supervisor import Supervisor
from jobgate.errors import StoreUnavailable
from jobgate.histogram import Histogram
from jobgate.ids import encode
from jobgate.spec import JobRecord
from jobgate.states import JobState
from jobgate.store import AsyncStore
from jobgate.store.outbox import Outbox
from jobgate.views import CallbackFormat, store_filters

ACTIVE_COUNT_S = 1.0


class SystemService:
    def __init__(
        self,
        config: Config,
        db: AsyncStore,
        supervisor: Supervisor | None,
        callbacks: CallbackDispatcher | None,
    ) -> None:
        self._config = config
        self._db = db
        self._supervisor = supervisor
        self._callbacks = callbacks
        self._outbox = Outbox(db.sync)
        self._active: dict[str, tuple[float, int]] = {}  # destination -> (expiry, count)

    @property
    def gateway_id(self) -> str | None:
        """This process's supervisor's id (None if it does not supervise)."""
        return self._supervisor.gateway_id if self._supervisor is not None else None

    async def destinations(self) -> list[dict[str, Any]]:
        """Each destination with its capacity and load, from the store."""
        counts = await self.counts()
        rows = []
        for d in self._config.destinations.values():
            c = counts.get(d.name, {})
            rows.append(
                {
                    "name": d.name,
                    "scheduler": d.scheduler,
                    "transport": d.transport,
                    "capacity": d.capacity,
                    "active": sum(n for s, n in c.items() if s.active),
                    "queued": c.get(JobState.QUEUED, 0),
                }
            )
        return rows

    async def counts(self) -> dict[str, dict[JobState, int]]:
        """Jobs per destination and state."""
        return await self._db.read(self._db.sync.counts)

    async def state_counts(
        self, cap: int, window: int, **filters: Any
    ) -> tuple[dict[JobState, int], bool]:
        """Jobs per state matching `list`'s filters, cheap however many jobs there are (a
        full count per page view would scan them all): final states among the newest
        `window` matching jobs, active ones (few jobs are in them) up to `cap` each; with
        a label filter all among the newest `window` jobs with the label. And whether the
        window was full (then counts are of the newest jobs only)."""
        found = store_filters(**filters)
        found.pop("state")
        recent, read = await self._db.read(self._db.sync.recent_states, window, **found)
        full = read >= window
        if found["label"]:
            return recent, full
        active = [s for s in JobState if not s.final]
        counts = await self._db.read(self._db.sync.count_states, active, cap, **found)
        return counts | {s: n for s, n in recent.items() if s.final}, full

    async def activity(
        self, window_s: float, cap: int, owner: str | None = None
    ) -> list[tuple[str, float, Any, Any]]:
        """(state, created_at, started_at, finished_at) of the jobs made in the last
        `window_s` seconds (one owner's, if given), newest first, at most `cap`: charts."""
        since = encode(int((time.time() - window_s) * 1000) << 80)  # the first ULID of then
        rows = await self._db.read(self._db.sync.activity, since, cap, owner)
        return [(r.state, r.created_at, r.started_at, r.finished_at) for r in rows]

    async def gateways(self) -> list[dict[str, Any]]:
        """The supervising gateway processes the store knows, with their last heartbeat."""
        rows = await self._db.read(self._db.sync.gateways)
        return [dict(r._mapping) for r in rows]

    async def health(self) -> dict[str, bool]:
        """Whether the store answers reads and takes writes now (each bounded in time)."""
        try:
            await self.counts()
            reads = True
        except StoreUnavailable:
            reads = False
        writes = await self._db.write(self._db.sync.can_write)
        return {"reads": reads, "writes": writes}

    async def waiting_reason(self, job: JobRecord) -> str | None:
        """Why a job has not started: the gateway's capacity, or the scheduler's queue."""
        if job.state == JobState.QUEUED:
            dest = self._config.destinations.get(job.destination)
            active = await self._active_count(job.destination)
            if dest is not None and active >= dest.capacity:
                return f"gateway capacity: {active} of {dest.capacity} slots in use"
            return "waiting to be admitted"
        if job.state == JobState.SUBMITTED:
            pending = job.pending_reason
            return f"pending in the scheduler: {pending}" if pending else "pending in the scheduler"
        return None

    async def _active_count(self, destination: str) -> int:
        """Slots in use, at most ACTIVE_COUNT_S old: a hint for people, not for admission
        (a count per request of a queued job cost more than the rest of the request)."""
        now = time.monotonic()
        cached = self._active.get(destination)
        if cached is None or cached[0] < now:
            count = await self._db.read(self._db.sync.active_count, destination)
            cached = self._active[destination] = (now + ACTIVE_COUNT_S, count)
        return cached[1]

    async def callbacks_of(self, job_id: str) -> list[dict[str, Any]]:
        """The job's callback outbox rows: what was sent, when, and how it went."""
        return await self._db.read(self._outbox.for_job, job_id)

    def callback_outcomes(self) -> dict[str, int]:
        """Deliveries by outcome, in this process (empty where no dispatcher runs)."""
        return dict(self._callbacks.outcomes) if self._callbacks is not None else {}

    def poll_latency(self) -> dict[str, Histogram]:
        """How long each polled destination's status rounds take, in this process."""
        return self._supervisor.backends.poll_latency() if self._supervisor is not None else {}

    def refused_transitions(self) -> dict[str, int]:
        """State changes that did not take (the job had moved on), by target state."""
        return dict(self._supervisor.refused) if self._supervisor is not None else {}

    def register_callback_format(self, name: str, builder: CallbackFormat) -> None:
        """Jobs labelled compat=<name> are called back in this format (a door's own)."""
        if self._callbacks is not None:
            self._callbacks.formats.register(name, builder)
