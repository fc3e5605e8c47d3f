"""JobService: the one entry for every door (SDK, CLI, API). Validates, persists,
wakes the supervisor, cancels, queries, reads logs, and waits for jobs to end."""

from __future__ import annotations

import asyncio
import builtins
import getpass
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from jobgate.backends.base import effective_resources
from jobgate.config import Config, Destination
from jobgate.engine.backends import Backends
from jobgate.engine.supervisor import Supervisor
from jobgate.errors import ConflictError, NotFoundError, SpecError
from jobgate.ids import new_id
from jobgate.spec import JobEvent, JobRecord, JobSpec, format_walltime
from jobgate.states import JobState
from jobgate.store import Store, Transition
from jobgate.store.batching import Batcher

LOG_STREAMS = ("stdout", "stderr")
ACTIVE_COUNT_S = 1.0


def _queued_message(record: JobRecord) -> str:
    return f"queued for {record.destination}"


class JobService:
    def __init__(self, config: Config, store: Store, supervisor: Supervisor | None = None) -> None:
        self.config = config
        self.store = store
        self.supervisor = supervisor
        self.backends = supervisor.backends if supervisor else Backends(config)
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._active: dict[str, tuple[float, int]] = {}  # destination -> (expiry, count)
        # Concurrent API requests share transactions and queries (see store.batching).
        threaded = not store.is_sqlite  # network round trips: wait for them off the loop
        self._inserts = Batcher(store.insert_jobs, "jobgate-insert", threaded)
        self._reads = Batcher(store.get_many, "jobgate-read", threaded)

    # -- submit ---------------------------------------------------------------------------

    async def submit(self, spec: JobSpec | dict[str, Any], owner: str | None = None) -> JobRecord:
        return (await self.submit_once(spec, owner))[0]

    async def submit_once(
        self, spec: JobSpec | dict[str, Any], owner: str | None = None
    ) -> tuple[JobRecord, bool]:
        """Submit; with an idempotency key seen before, the earlier job and False. Jobs
        submitted together (concurrent API requests) are committed together."""
        record, created = self._new(spec, owner)
        if not created:
            return record, False
        if record.spec.idempotency_key:  # a racing twin may win: _insert settles who did
            return self._insert(record)
        await self._inserts((record, _queued_message(record)))
        self._inserted()
        return record, True

    def submit_now(
        self, spec: JobSpec | dict[str, Any], owner: str | None = None
    ) -> tuple[JobRecord, bool]:
        """submit_once, synchronous and thread-safe: the sync SDK calls it in the caller's
        thread, so a submission never waits for the event loop (busy starting jobs)."""
        record, created = self._new(spec, owner)
        return self._insert(record) if created else (record, False)

    def _new(self, spec: JobSpec | dict[str, Any], owner: str | None) -> tuple[JobRecord, bool]:
        """The job to insert and True; or an earlier job with the same idempotency key."""
        spec = JobSpec.parse(spec)
        owner = owner or getpass.getuser()
        dest = self.config.destination(spec.destination)
        self._check(spec, dest)
        if spec.idempotency_key:
            existing = self._same_request(owner, spec)
            if existing is not None:
                return existing, False
        now = datetime.now(UTC)
        record = JobRecord(
            id=new_id(),
            name=spec.name,
            owner=owner,
            destination=dest.name,
            state=JobState.QUEUED,
            labels=spec.labels,
            spec=spec,
            created_at=now,
            queued_at=now,
        )
        return record, True

    def _insert(self, record: JobRecord) -> tuple[JobRecord, bool]:
        try:
            self.store.insert_job(record, message=_queued_message(record))
        except ConflictError:  # a concurrent request with the same key won the insert
            existing = self._same_request(record.owner, record.spec)
            if existing is None:
                raise
            return existing, False
        self._inserted()
        return record, True

    def _inserted(self) -> None:
        if self.supervisor is not None:
            self.supervisor.wake()

    def _same_request(self, owner: str, spec: JobSpec) -> JobRecord | None:
        existing = self.store.find_by_idempotency_key(owner, spec.idempotency_key or "")
        if existing is not None and existing.spec != spec:
            raise ConflictError(
                f"idempotency key {spec.idempotency_key!r} was used for a different job "
                f"({existing.id})"
            )
        return existing

    def _check(self, spec: JobSpec, dest: Destination) -> None:
        """Refuse what the destination would refuse, before anything is stored."""
        for name in spec.environment:
            if not dest.env_allowed(name):
                raise SpecError(f"environment.{name}", f"not allowed on destination {dest.name!r}")
        res = effective_resources(spec.resources, dest)
        if dest.max_walltime_s and res.walltime_s and res.walltime_s > dest.max_walltime_s:
            raise SpecError(
                "resources.walltime",
                f"{format_walltime(res.walltime_s)} is over {dest.name!r}'s limit of "
                f"{format_walltime(dest.max_walltime_s)}",
            )
        self.backends.get(dest.name).check_resources(res)
        if dest.partitions is not None and res.partition and res.partition not in dest.partitions:
            raise SpecError(
                "resources.partition",
                f"unknown partition {res.partition!r} (known: {', '.join(dest.partitions)})",
            )
        for i, stage in enumerate(spec.input_files):
            if dest.transport == "local" and not os.path.isfile(stage.source):
                raise SpecError(f"input_files.{i}.source", f"no such file: {stage.source}")

    def close(self) -> None:
        self._inserts.close()
        self._reads.close()

    # -- queries --------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobRecord:
        record = await self._reads(job_id)
        if record is None:
            raise NotFoundError(f"no job {job_id!r}")
        return record

    async def list(
        self,
        *,
        state: Iterable[JobState | str] | JobState | str | None = None,
        destination: str | None = None,
        label: dict[str, str] | None = None,
        owner: str | None = None,
        name: str | None = None,
        before: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> builtins.list[JobRecord]:
        states = None
        if state is not None:
            items = [state] if isinstance(state, str) else list(state)
            try:
                states = [JobState(str(s).upper()) for s in items]
            except ValueError:
                raise SpecError("state", f"unknown state in {items}") from None
        return self.store.list_jobs(
            state=states,
            destination=destination,
            label=label,
            owner=owner,
            name=name,
            before=before,
            since=since.timestamp() if since else None,
            limit=limit,
        )

    def destinations(self) -> builtins.list[dict[str, Any]]:
        """Each destination with its capacity and load, from the store."""
        counts = self.store.counts()
        rows = []
        for d in self.config.destinations.values():
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

    def waiting_reason(self, job: JobRecord) -> str | None:
        """Why a job has not started: the gateway's capacity, or the scheduler's queue."""
        if job.state == JobState.QUEUED:
            dest = self.config.destinations.get(job.destination)
            active = self._active_count(job.destination)
            if dest is not None and active >= dest.capacity:
                return f"gateway capacity: {active} of {dest.capacity} slots in use"
            return "waiting to be admitted"
        if job.state == JobState.SUBMITTED:
            pending = job.backend_data.get("pending_reason")
            return f"pending in the scheduler: {pending}" if pending else "pending in the scheduler"
        return None

    def _active_count(self, destination: str) -> int:
        """Slots in use, at most ACTIVE_COUNT_S old: a hint for people, not for admission
        (a count per request of a queued job cost more than the rest of the request)."""
        now = time.monotonic()
        cached = self._active.get(destination)
        if cached is None or cached[0] < now:
            cached = (now + ACTIVE_COUNT_S, self.store.active_count(destination))
            self._active[destination] = cached
        return cached[1]

    async def events(self, job_id: str, after: int = 0) -> builtins.list[JobEvent]:
        self.store.get(job_id)  # NotFound for an unknown id, not an empty list
        return self.store.events(job_id, after)

    async def read_log(self, job_id: str, stream: str, offset: int = 0, limit: int = -1) -> bytes:
        if stream not in LOG_STREAMS:
            raise SpecError("stream", f"must be one of {', '.join(LOG_STREAMS)}")
        job = self.store.get(job_id)
        backend = self.backends.get(job.destination)
        files = backend.files(job)
        try:
            return await backend.read(job, getattr(files, stream), offset, limit)
        except FileNotFoundError:
            return b""

    # -- cancel and wait --------------------------------------------------------------------

    async def cancel(self, job_id: str) -> JobRecord:
        job = self.store.get(job_id)
        if job.state.final:
            return job
        if job.state in (JobState.NEW, JobState.QUEUED) and self.store.transition(
            Transition(
                job_id,
                JobState.CANCELLED,
                "cancelled before it started",
                fields={"reason": "cancelled on request", "stop_reason": "cancel"},
                expect=frozenset({JobState.NEW, JobState.QUEUED}),
            )
        ):
            self.notify([job_id])
            return self.store.get(job_id)
        self.store.set_fields(
            job_id,
            stop_reason="cancel",
            only_active=True,
            event_type="cancel_requested",
            message="cancel requested",
        )
        if self.supervisor is not None:
            self.supervisor.request_stop(job_id)
        return self.store.get(job_id)

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
        current record. Woken by the supervisor in this process; else the store is polled."""
        done = until or (lambda state: state.final)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = 0.02
        while True:
            job = self.store.get(job_id)
            left = None if deadline is None else deadline - loop.time()
            if done(job.state) or job.state.final or (left is not None and left <= 0):
                return job
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(job_id, []).append(fut)
            # Re-read after registering: the job may have moved in between.
            if done(self.store.get(job_id).state):
                continue
            limit = delay if self.supervisor is None else 5.0  # safety net, not the path
            try:
                async with asyncio.timeout(min(limit, left) if left is not None else limit):
                    await fut
            except TimeoutError:
                delay = min(delay * 2, 1.0)
            finally:
                waiters = self._waiters.get(job_id)
                if waiters and fut in waiters:
                    waiters.remove(fut)
