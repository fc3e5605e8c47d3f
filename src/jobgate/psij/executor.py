"""`psij.JobExecutor.get_instance('jobgate', url=...)`: every jobgate destination behind
PSI/J's API. PSI/J's native id of a job is its jobgate id, which the store keeps, so any
executor (in any process) can attach to it later.

Status changes reach PSI/J jobs from one watcher thread per executor, in order: the thread
is started by the first job it follows and ends when it follows none.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading

import psij

from jobgate.errors import JobgateError, NotFoundError, SpecError
from jobgate.psij.config import JobgateExecutorConfig, Target, resolve
from jobgate.psij.mapping import psij_state, statuses, to_spec
from jobgate.psij.sources import EmbeddedSource, RemoteSource, source_for
from jobgate.spec import JobRecord

log = logging.getLogger(__name__)


class JobgateExecutor(psij.JobExecutor):
    """Runs PSI/J jobs through jobgate (see `jobgate.psij.config` for `url` and `config`)."""

    def __init__(
        self, url: str | None = None, config: psij.JobExecutorConfig | None = None
    ) -> None:
        config = config if config is not None else JobgateExecutorConfig()
        super().__init__(url=url, config=config)
        self.target: Target = resolve(url, config)
        self._source = source_for(self.target)  # opens nothing until the first job
        if not self.target.server:  # an unknown destination fails here, not at submit
            try:
                self._source.scheduler_of(self.target.destination)
            except SpecError as exc:
                raise ValueError(f"jobgate executor: {exc}") from exc
        self._watcher = _Watcher(self)

    @property
    def source(self) -> EmbeddedSource | RemoteSource:
        if self._source.closed:  # after sources.shutdown(): the process's next gateway
            self._source = source_for(self.target)
        return self._source

    def submit(self, job: psij.Job) -> None:
        spec = self._check_job(job)
        try:
            record = self.source.submit(to_spec(spec, self.target.destination, self._scheduler))
        except SpecError as exc:
            raise psij.InvalidJobException(
                f"jobgate refused the job: {exc}", exception=exc
            ) from exc
        except JobgateError as exc:
            raise _failure("could not take the job", exc) from exc
        self._track(job, record)

    def _scheduler(self, destination: str | None) -> str:
        try:
            return self.source.scheduler_of(destination)
        except JobgateError as exc:
            if isinstance(exc, SpecError):
                raise
            raise _failure("no destination", exc) from exc

    def cancel(self, job: psij.Job) -> None:
        """Ask jobgate to cancel; CANCELED (or the state the job reached first) arrives
        through the watcher, as for every other change."""
        if job.status.final:
            return
        if job.native_id is None:
            raise psij.SubmitException("cannot cancel a job that was not submitted")
        try:
            self.source.cancel(job.native_id)
        except JobgateError as exc:
            raise _failure(f"could not cancel {job.native_id}", exc) from exc

    def list(self) -> list[str]:
        """Ids of this destination's jobs that have not ended (all destinations' if the
        executor names none), submitted by any door: PSI/J, the CLI, the API, ..."""
        try:
            return self.source.open_ids(self.target.destination)
        except JobgateError as exc:
            raise _failure("could not list jobs", exc) from exc

    def attach(self, job: psij.Job, native_id: str) -> None:
        """Follow a jobgate job by id, whoever submitted it and whenever."""
        if job.status.state != psij.JobState.NEW:
            raise psij.InvalidJobException("Job must be in the NEW state")
        try:
            record = self.source.get(str(native_id))
        except NotFoundError as exc:
            raise psij.InvalidJobException(f"no jobgate job {native_id!r}", exception=exc) from exc
        except JobgateError as exc:
            raise _failure(f"could not read job {native_id}", exc) from exc
        job.executor = self
        self._track(job, record)

    def _track(self, job: psij.Job, record: JobRecord) -> None:
        job._native_id = record.id
        self._apply(job, record)  # on the caller's thread: QUEUED is set when submit returns
        self._watcher.add(job, record)

    def _apply(self, job: psij.Job, record: JobRecord) -> None:
        # PSI/J's own status setter drops anything older than what the job has: no state
        # goes backwards, however late a change arrives.
        for status in statuses(record):
            self._set_job_status(job, status)


def _failure(what: str, exc: JobgateError) -> psij.SubmitException:
    # The cause goes by keyword: positional arguments would all show in str(exception).
    return psij.SubmitException(f"jobgate {what}: {exc}", exception=exc, transient=exc.transient)


class _Watcher:
    """Follows the executor's jobs in one thread: changes arrive pushed by the embedded
    gateway (a queue the thread blocks on), or by polling a remote gateway."""

    def __init__(self, executor: JobgateExecutor) -> None:
        self._executor = executor
        self._lock = threading.Lock()
        self._jobs: dict[str, list[psij.Job]] = {}  # jobgate id -> the PSI/J jobs bound to it
        self._known: dict[str, psij.JobState] = {}  # jobgate id -> the PSI/J state last applied
        self._changes: queue.SimpleQueue[JobRecord] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def add(self, job: psij.Job, record: JobRecord) -> None:
        state = psij_state(record.state)
        if state.final:
            return
        with self._lock:
            handles = self._jobs.setdefault(record.id, [])
            handles.append(job)
            first = len(handles) == 1
            if first:
                self._known[record.id] = state
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="jobgate-psij-watcher", daemon=True
                )
                self._thread.start()
        if first:  # a second handle on the same job shares the first one's following
            self._executor.source.follow(record.id, state, self._changes.put)

    def _run(self) -> None:
        while True:
            source = self._executor.source
            interval = source.poll_interval
            records: list[JobRecord] = []
            with contextlib.suppress(queue.Empty):  # a poll is due
                records.append(self._changes.get(timeout=interval))
            if interval is not None:
                with self._lock:
                    known = dict(self._known)
                records += source.poll(known)
            for record in records:
                self._deliver(record)
            with self._lock:
                if not self._jobs:
                    self._thread = None
                    return

    def _deliver(self, record: JobRecord) -> None:
        state = psij_state(record.state)
        with self._lock:
            handles = list(self._jobs.get(record.id, ()))
            if state.final:
                self._jobs.pop(record.id, None)
                self._known.pop(record.id, None)
            elif record.id in self._known:
                self._known[record.id] = state
        for job in handles:
            try:
                self._executor._apply(job, record)
            except Exception:  # nothing may stop the updates of the other jobs
                log.exception("jobgate PSI/J executor: updating job %s failed", record.id)
        if handles and not state.final:
            self._executor.source.follow(record.id, state, self._changes.put)
