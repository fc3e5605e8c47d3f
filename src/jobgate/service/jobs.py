"""JobService: the one entry for every door (SDK, CLI, API, PSI/J). Validates, persists,
wakes the supervisor, cancels, queries, reads logs and files, and waits for jobs to end.
Doors get everything through it (and its `accounts` and `system` parts): never the store,
the engine or a backend."""

from __future__ import annotations

import asyncio
import builtins
import getpass
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jobgate.config import Config, Destination
from jobgate.engine.backends import Backends
from jobgate.engine.callbacks import CallbackDispatcher
from jobgate.engine.supervisor import Supervisor
from jobgate.errors import ConflictError, InvalidTransition, NotFoundError, SpecError
from jobgate.ids import new_id
from jobgate.service.accounts import AccountService
from jobgate.service.callback_urls import CallbackUrls
from jobgate.service.checks import absolute_inputs, check_dependencies, check_spec, in_batch
from jobgate.service.files import FileService
from jobgate.service.hooks import SiteHooks
from jobgate.service.jobtypes import JobType, JobTypes
from jobgate.service.jobtypes.build import expand
from jobgate.service.paths import check_confined, user_roots
from jobgate.service.queues import QueueItems
from jobgate.service.results import ResultsService
from jobgate.service.system import SystemService
from jobgate.service.waiting import Waiting
from jobgate.service.watch import ChangeFeed
from jobgate.spec import JobEvent, JobRecord, JobSpec, Resources
from jobgate.states import JobState, StopReason
from jobgate.store import AsyncStore, Transition
from jobgate.store.batching import Batcher
from jobgate.tasks import TaskOut
from jobgate.views import store_filters as _filters

_BEFORE_START = frozenset({JobState.NEW, JobState.QUEUED})


@dataclass(frozen=True)
class Area:
    """A door's word that a job is submitted for an API user: its paths stay inside its
    run directory or beneath the destination's work roots, or these extra `roots`."""

    roots: tuple[str, ...] = ()


class JobService:
    def __init__(
        self,
        config: Config,
        db: AsyncStore,
        supervisor: Supervisor | None = None,
        callbacks: CallbackDispatcher | None = None,
    ) -> None:
        self.config = config
        self._db = db
        self._store = db.sync
        self._supervisor = supervisor
        self._backends = supervisor.backends if supervisor else Backends(config)
        self._waiting = Waiting(db, supervised=supervisor is not None)
        self.changes = ChangeFeed()  # any job of this process's changed: live pages
        self.wait_change, self.wait = self._waiting.wait_change, self._waiting.wait
        # Concurrent API requests share transactions and queries (see store.batching).
        self._inserts = Batcher(self._insert_batch, "jobgate-insert")
        self._reads = Batcher(self._read_batch, "jobgate-read")
        self.accounts = AccountService(db)
        self.files = FileService(config, self._backends)
        self.system = SystemService(config, db, supervisor, callbacks)
        self._callback_urls = CallbackUrls(config.callbacks.allowed_hosts)
        self.job_types = JobTypes(config.job_types, config.any_job_module)
        limit = config.limits.max_body_mb * 1_000_000
        self.results = ResultsService(db, self.job_types, self.files, limit)
        self.queue_items = QueueItems(db)
        self.hooks = SiteHooks(config)

    @property
    def supervising(self) -> bool:
        return self._supervisor is not None

    def check_config(self) -> None:
        """Build every destination's backend: a configuration they refuse stops start-up."""
        for name in self.config.destinations:
            self._backends.get(name)
        self.hooks.load()

    # -- submit ---------------------------------------------------------------------------

    async def submit(
        self,
        spec: JobSpec | dict[str, Any],
        owner: str | None = None,
        area: Area | None = None,
    ) -> JobRecord:
        return (await self.submit_once(spec, owner, area))[0]

    async def submit_once(
        self,
        spec: JobSpec | dict[str, Any],
        owner: str | None = None,
        area: Area | None = None,
    ) -> tuple[JobRecord, bool]:
        """Submit; with an idempotency key seen before, the earlier job and False. Jobs
        submitted together (concurrent API requests) are committed together. `area`: a
        door submitting for an API user confines the job's paths (service/paths.py)."""
        record, created = await self._new(spec, owner, area)
        if not created:
            return record, False
        if record.spec.idempotency_key:  # a racing twin may win: _insert settles who did
            return await self._db.write(self._insert, record)
        await self._inserts(record)
        self._inserted()
        return record, True

    def submit_now(
        self, spec: JobSpec | dict[str, Any], owner: str | None = None
    ) -> tuple[JobRecord, bool]:
        """submit_once, synchronous and thread-safe: the sync SDK calls it in the caller's
        thread, so a submission never waits for the event loop (busy starting jobs)."""
        record, created = self._new_now(spec, owner, None)
        return self._insert(record) if created else (record, False)

    async def submit_many(
        self,
        specs: Sequence[JobSpec | dict[str, Any]],
        owner: str | None = None,
        area: Area | None = None,
    ) -> builtins.list[JobRecord]:
        """Jobs submitted together: each checked first (a SpecError names `jobs[i].field`
        and nothing is stored), then all inserted in one transaction."""
        prepared = []
        for i, spec in enumerate(specs):
            with in_batch(i):
                prepared.append(await self._new(spec, owner, area))
        return await self._db.write(self._insert_all, prepared)

    def submit_many_now(
        self, specs: Sequence[JobSpec | dict[str, Any]], owner: str | None = None
    ) -> builtins.list[JobRecord]:
        """submit_many, blocking (the sync SDK's Gateway.submit_many)."""
        prepared = []
        for i, spec in enumerate(specs):
            with in_batch(i):
                prepared.append(self._new_now(spec, owner, None))
        return self._insert_all(prepared)

    def _insert_all(self, prepared: Sequence[tuple[JobRecord, bool]]) -> builtins.list[JobRecord]:
        new = [r for r, created in prepared if created]
        try:
            self._store.insert_jobs([(r, _queued_message(r)) for r in new])
        except ConflictError:  # a concurrent twin took a key: each on its own, as submit does
            done = {r.id: self._insert(r)[0] for r in new}
            return [done.get(r.id, r) for r, _ in prepared]
        self._inserted()
        return [r for r, _ in prepared]

    def reject_now(
        self, spec: JobSpec | dict[str, Any], owner: str | None, reason: str
    ) -> JobRecord:
        """A job refused before it ran (a queue's validator said no): stored REJECTED,
        with why; an earlier job with the same key instead, as for any submission."""
        record, created = self._new_now(spec, owner, None)
        return self._insert(_rejected(record, reason))[0] if created else record

    async def _new(
        self, spec: JobSpec | dict[str, Any], owner: str | None, area: Area | None
    ) -> tuple[JobRecord, bool]:
        """The job to insert and True; or an earlier job with the same idempotency key."""
        spec = JobSpec.parse(spec)
        if spec.job_type is not None:  # its builder writes files: off the loop
            return await asyncio.to_thread(self._new_now, spec, owner, area)
        record = self._prepare(spec, owner, area)
        if spec.depends_on is not None:
            await self._db.read(self._check_dependencies, record)
        if record.spec.idempotency_key:
            earlier = await self._db.read(self._same_request, record.owner, record.spec)
            if earlier is not None:
                return earlier, False
        await self._callback_urls.check(record.spec.callback_url)
        if self.hooks.any(record.destination):  # a site's process or code: off the loop
            return await asyncio.to_thread(self._vetted, record), True
        return record, True

    def _new_now(
        self, spec: JobSpec | dict[str, Any], owner: str | None, area: Area | None
    ) -> tuple[JobRecord, bool]:
        """_new, blocking: a job type's params are checked before the key is looked up,
        and its builder runs only for a job that is new."""
        spec, owner, job_type = JobSpec.parse(spec), owner or getpass.getuser(), None
        if spec.job_type is not None:
            if spec.script is not None or spec.executable is not None:
                raise SpecError("job_type", "give a job_type or a script, not both")
            job_type = self.job_types.get(spec.job_type, embedded=area is None)
            params, name = job_type.check(spec.job_params), spec.name or job_type.name
            spec = spec.model_copy(update={"job_params": params, "name": name})
        earlier = self._same_request(owner, spec)
        if earlier is not None:
            return earlier, False
        self._callback_urls.check_now(spec.callback_url)
        record = self._prepare(spec, owner, area, job_type)
        self._check_dependencies(record)
        return self._vetted(record), True

    def _check_dependencies(self, record: JobRecord) -> None:
        if record.spec.depends_on is not None:
            ids = sorted(record.spec.depends_on.ids())
            check_dependencies(record.spec.depends_on, record.owner, self._store.get_many(ids))

    def _vetted(self, record: JobRecord) -> JobRecord:
        """The job, REJECTED with why if its destination's hooks refuse it."""
        reason = self.hooks.refusal(record) if self.hooks.any(record.destination) else None
        return record if reason is None else _rejected(record, reason)

    def _prepare(
        self,
        spec: JobSpec | dict[str, Any],
        owner: str | None,
        area: Area | None = None,
        job_type: JobType | None = None,
    ) -> JobRecord:
        """The new job, checked against its destination; its run directory and effective
        resources are decided here, once, and stored with it."""
        spec = JobSpec.parse(spec)
        owner = owner or getpass.getuser()
        dest = self.config.destination(spec.destination)
        if area is not None and dest.os_account(owner) is None:  # else the OS keeps users apart
            check_confined(spec, user_roots(dest, owner, area.roots))
        if area is None:  # embedded: this process's working directory is the user's
            spec = absolute_inputs(spec)
        now, job_id = datetime.now(UTC), new_id()
        if job_type is not None:
            limit = self.config.limits.max_body_mb * 1_000_000  # as much as an upload may be
            spec = expand(spec, job_type, job_id, owner, self.files.keep, limit)
        resources = self._check(spec, dest)
        return JobRecord(
            id=job_id,
            name=spec.name,
            owner=owner,
            destination=dest.name,
            state=JobState.NEW if spec.depends_on else JobState.QUEUED,  # NEW: waits on others
            run_dir=self._backends.get(dest.name).run_dir_of(job_id),
            labels=spec.labels,
            spec=spec,
            resources=resources,
            created_at=now,
            queued_at=None if spec.depends_on else now,
        )

    def _insert(self, record: JobRecord) -> tuple[JobRecord, bool]:
        try:
            self._store.insert_jobs([(record, _queued_message(record))])
        except ConflictError:  # a concurrent request with the same key won the insert
            existing = self._same_request(record.owner, record.spec)
            if existing is None:
                raise
            return existing, False
        self._inserted()
        return record, True

    async def _insert_batch(self, records: builtins.list[JobRecord]) -> builtins.list[None]:
        items = [(r, _queued_message(r)) for r in records]
        return await self._db.write(self._store.insert_jobs, items)

    def _inserted(self) -> None:
        self.changes.bump()
        if self._supervisor is not None:
            self._supervisor.wake()

    def _same_request(self, owner: str, spec: JobSpec) -> JobRecord | None:
        if not spec.idempotency_key:
            return None
        existing = self._store.find_by_idempotency_key(owner, spec.idempotency_key or "")
        if existing is not None and existing.spec.as_request() != spec.as_request():
            what = "key" if spec.key == spec.idempotency_key else "idempotency key"
            raise ConflictError(
                f"{what} {spec.idempotency_key!r} was used for a different job ({existing.id})"
            )
        return existing

    def ignored(self, job: JobRecord) -> builtins.list[str]:
        """Warnings for what the job asked its destination that the destination ignores."""
        names = self._backends.get(job.destination).ignored(job.spec.resources)
        if not names:
            return []
        return [
            f"destination {job.destination!r} runs jobs without a scheduler and ignores "
            f"resources.{', resources.'.join(names)}"
        ]

    def _check(self, spec: JobSpec, dest: Destination) -> Resources:
        return check_spec(spec, dest, self._backends.get(dest.name).check_resources)

    # -- queries --------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobRecord:
        record = await self._reads(job_id)
        if record is None:
            raise NotFoundError(f"no job {job_id!r}")
        return record

    async def _read_batch(self, job_ids: builtins.list[str]) -> builtins.list[JobRecord | None]:
        return await self._db.read(self._store.get_many, job_ids)

    async def list(
        self,
        *,
        before: str | None = None,
        limit: int = 100,
        **filters: Any,
    ) -> builtins.list[JobRecord]:
        """Newest first, `limit` at most, older than the job `before` (a cursor). Filters:
        state (one or several), destination, label (dict), owner, name, since (datetime)."""
        return await self._db.read(
            self._store.list_jobs, before=before, limit=limit, **_filters(**filters)
        )

    async def count(self, **filters: Any) -> int:
        """How many jobs the same filters as `list` match."""
        return await self._db.read(self._store.count_jobs, **_filters(**filters))

    async def events(self, job_id: str, after: int = 0) -> builtins.list[JobEvent]:
        await self.get(job_id)  # NotFound for an unknown id, not an empty list
        return await self._db.read(self._store.events, job_id, after)

    async def tasks(self, job_id: str) -> builtins.list[TaskOut]:
        """An array job's tasks, task by task (empty for a job that is not an array)."""
        await self.get(job_id)
        return [TaskOut.of(t) for t in await self._db.read(self._store.tasks, job_id)]

    async def read_log(self, job_id: str, stream: str, offset: int = 0, limit: int = -1) -> bytes:
        return await self.files.read_log(await self.get(job_id), stream, offset, limit)

    async def waiting_reason(self, job: JobRecord) -> str | None:
        return await self.system.waiting_reason(job)

    # -- cancel and wait --------------------------------------------------------------------

    async def cancel(self, job_id: str) -> JobRecord:
        job = await self.get(job_id)
        if job.state.final:
            return job
        if job.state in _BEFORE_START:
            fields = {"reason": "cancelled on request", "stop_reason": StopReason.CANCEL.value}
            change = Transition(
                job_id, JobState.CANCELLED, "cancelled before it started", {}, fields, _BEFORE_START
            )
            try:
                await self._db.write(self._store.transition, change)
            except InvalidTransition:
                pass  # admitted meanwhile: stopped like a running job, below
            else:
                self.notify([job_id])
                return await self._db.read(self._store.get, job_id)
        await self._db.write(
            self._store.set_fields,
            job_id,
            stop_reason=StopReason.CANCEL.value,
            only_active=True,
            event_type="cancel_requested",
            message="cancel requested",
        )
        if self._supervisor is not None:
            self._supervisor.request_stop(job_id)
        return await self._db.read(self._store.get, job_id)

    def notify(self, job_ids: builtins.list[str]) -> None:
        """Wake whoever waits on these jobs (the supervisor calls this after each commit)."""
        self.changes.bump()
        self._waiting.notify(job_ids)


def _queued_message(record: JobRecord) -> str:
    if record.state == JobState.REJECTED:
        return record.reason or "rejected"
    return f"queued for {record.destination}"


def _rejected(record: JobRecord, reason: str) -> JobRecord:
    """A job refused before it ran: stored REJECTED, with why."""
    return record.model_copy(
        update={"state": JobState.REJECTED, "reason": reason, "queued_at": None}
    )
