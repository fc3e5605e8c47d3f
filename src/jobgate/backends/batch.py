"""The backend every batch scheduler (Slurm, PBS) shares: submit through a transport, and
the one polling loop.

Per destination, one status command per interval for every active job (chunks of at most
500 ids). The interval is the destination's `poll_interval_s` while some job changed
recently, and backs off as all of them stay quiet; a failed or hung status command backs
off too and changes no job. A job that left the queue is judged by its exit-code sidecar,
then by accounting, and only after a grace period becomes LOST: never success by absence.
Final states are remembered and never asked about again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath

from jobgate.backends.base import (
    EXITCODE,
    Backend,
    JobFiles,
    Outcome,
    StatusSink,
    Submitted,
    effective_resources,
    render,
    script_text,
)
from jobgate.backends.batch_scheduler import (
    TASK_TEMPLATE,
    UNREADABLE,
    BatchScheduler,
    NativeStatus,
    Phase,
    SidecarCode,
    Unit,
    array_indices,
    array_outcome,
    decide,
    job_name,
    message_of,
    task_files,
    unit_outcome,
    unit_status,
)
from jobgate.config import Destination
from jobgate.errors import SchedulerUnavailable, SubmitError, TransientError
from jobgate.spec import JobRecord, Resources
from jobgate.states import JobState
from jobgate.transports.base import CommandResult, Transport

__all__ = ["BatchBackend", "BatchScheduler"]
log = logging.getLogger(__name__)

JOB_SCRIPT = "jobgate.sh"
AGE_FACTOR = 0.1  # a job quiet for 10 minutes is asked about about once a minute
MAX_INTERVAL_S = 60.0
STATUS_TIMEOUT_S = 30.0
FINAL_CACHE = 10_000


class _Tracked:
    __slots__ = ("changed", "done", "job", "missing_since", "native_id", "running", "said",
                 "stop_reason", "units")

    def __init__(self, job: JobRecord, native_id: str, array: str | None, now: float) -> None:
        self.job, self.native_id = job, native_id
        self.units: list[Unit] = list(array_indices(array)) if array else [None]
        self.running = job.state == JobState.RUNNING
        self.changed = now  # when it was last seen to change: polling slows as this ages
        self.missing_since: float | None = None
        self.stop_reason = job.stop_reason
        self.done: dict[Unit, NativeStatus] = {}  # final statuses, never asked about again
        self.said: dict[Unit, NativeStatus] = {}  # ended, but how or with what code unknown


class BatchBackend(Backend):
    lost_grace_s = 120.0  # left the queue with no sidecar and no accounting record: LOST

    def __init__(
        self, destination: Destination, sink: StatusSink, base_dir: str, transport: Transport,
        scheduler: BatchScheduler, local_dir: str | None = None,
    ) -> None:
        super().__init__(destination, sink, base_dir)
        self.transport, self.scheduler = transport, scheduler
        self.local_dir = local_dir or base_dir  # where stage_out copies outputs to
        self.clock: Callable[[], float] = time.monotonic
        self.commands: Counter[str] = Counter()  # scheduler commands run, by kind
        self.polls = 0
        self.max_status_per_poll = 0
        self._tracked: dict[str, _Tracked] = {}
        self._final: OrderedDict[str, Outcome] = OrderedDict()
        self._stopping: set[str] = set()
        self._submits = asyncio.Semaphore(destination.max_submits)
        self._wake = asyncio.Event()
        self._failures = 0
        self._accounting_off = False
        self._last_poll = -math.inf
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"poll-{self.destination.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.transport.close()

    # -- submit, find, attach -------------------------------------------------------------

    async def submit(self, job: JobRecord) -> Submitted:
        res = effective_resources(job, self.destination)
        self.scheduler.check(res)
        files = self.files(job)
        await self._prepare(job, res, files)
        argv = self.scheduler.submit_command(files.marker(JOB_SCRIPT), files)
        async with self._submits:
            try:
                native_id = self.scheduler.parse_submit_output(await self._run(argv, "submit"))
            except TransientError:
                found = await self.find(job)  # the job may have gone in before the error
                if found is None:
                    raise
                native_id = found.native_id
        self._track(job, native_id)
        return Submitted(native_id)

    async def _prepare(self, job: JobRecord, res: Resources, files: JobFiles) -> None:
        t = self.transport
        writes: list[Awaitable[None]] = []
        script = script_text(job)
        if script is not None:
            writes.append(t.write_file(files.marker("script.sh"), script.encode(), 0o755))
        for stage in job.spec.input_files:
            writes.append(t.put(stage.source, f"{files.run_dir}/{stage.target_path}"))
        if res.array:
            body = render("_body.sh.j2", job, task_files(job, files))
            writes.append(t.write_file(files.marker(TASK_TEMPLATE), body.encode()))
        try:
            await asyncio.gather(*writes)
        except OSError as exc:
            raise SubmitError(f"staging in {exc.filename or ''}: {exc.strerror or exc}") from None
        if job.spec.directory and files.workdir.startswith(files.run_dir + "/"):
            await self._run(["mkdir", "-p", files.workdir], "mkdir")
        text = render(self.scheduler.template, job, files,
                      **self.scheduler.script_context(job, res, files))
        # Written last: find() takes its absence as "never submitted".
        await t.write_file(files.marker(JOB_SCRIPT), text.encode(), 0o755)

    async def find(self, job: JobRecord) -> Submitted | None:
        if not await self.transport.exists(self.files(job).marker(JOB_SCRIPT)):
            return None
        name, since = job_name(job), time.time() - job.created_at.timestamp()
        for argv in self.scheduler.find_commands(name, since):
            result = await self._run(argv, "find")
            if self.scheduler.accounting_disabled(result):
                continue
            error = self.scheduler.status_error(result)
            if error:
                raise SchedulerUnavailable(f"cannot look for {name}: {error}")
            native_id = self.scheduler.parse_find_output(result.stdout, name)
            if native_id:
                return Submitted(native_id)
        return None

    async def attach(self, job: JobRecord) -> None:
        if job.id in self._final:
            self.sink.report(job, self._final[job.id])
        elif not job.native_id:
            self.sink.report(job, Outcome(JobState.LOST, reason="no native id was recorded"))
        else:
            self._track(job, job.native_id)

    def _track(self, job: JobRecord, native_id: str) -> None:
        array = effective_resources(job, self.destination).array
        self._tracked[job.id] = _Tracked(job, native_id, array, self.clock())
        self._wake.set()

    def tracked(self) -> int:
        return len(self._tracked)

    # -- stop, files ------------------------------------------------------------------------

    async def stop(self, job: JobRecord, reason: str) -> None:
        t = self._tracked.get(job.id)
        native_id = t.native_id if t else job.native_id
        if native_id is None or job.id in self._stopping:
            return
        self._stopping.add(job.id)
        if t is not None:
            t.stop_reason, t.changed = reason, self.clock()
        await self._cancel_hook(job)
        delay = self.destination.poll_interval_s
        while True:  # scancel exits 0 and qdel 1 for a finished job: the next poll decides
            try:
                result = await self._run(self.scheduler.cancel_command([native_id]), "cancel")
                break
            except TransientError as exc:
                if job.id not in self._tracked:
                    return
                self._note([job], "cancel_retry", f"cancel command failed, retrying: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_INTERVAL_S)
        if result.returncode != 0:
            log.info("cancel %s: %s", native_id, message_of(result))
        self._wake.set()

    async def _cancel_hook(self, job: JobRecord) -> None:
        """The user's cancel.sh, run in the run directory before scancel/qdel."""
        run_dir = self.files(job).run_dir
        try:
            if await self.transport.exists(f"{run_dir}/cancel.sh"):
                self.commands["cancel_hook"] += 1
                await self.transport.run(["/bin/bash", "cancel.sh"], cwd=run_dir,
                                         timeout=max(1.0, self.destination.cancel_grace_s))
        except TransientError as exc:
            log.warning("cancel.sh of %s: %s", job.id, exc)

    async def stage_out(self, job: JobRecord) -> list[str]:
        files, missing = self.files(job), []
        for rel in job.spec.output_files:
            source = f"{files.workdir}/{rel}"
            if not await self.transport.exists(source):
                missing.append(rel)
                continue
            target = f"{self.local_dir}/{job.id}/outputs/{rel}"
            if source != target:
                await self.transport.get(source, target)
        return missing

    async def read(self, job: JobRecord, path: str, offset: int = 0, limit: int = -1) -> bytes:
        full = str(PurePosixPath(self.files(job).run_dir) / path)
        return await self.transport.read_file(full, offset, limit)

    # -- polling ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            if not self._tracked:
                await self._wake.wait()
                continue
            delay = self._last_poll + self._interval() - self.clock()
            if delay > 0:  # a new job or a stop may shorten the interval: wait, then look again
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            self._last_poll = self.clock()
            await self._poll_safely()

    def _interval(self) -> float:
        base = self.destination.poll_interval_s
        longest = max(base, MAX_INTERVAL_S)
        if self._failures:
            return min(longest, base * (1 << min(self._failures, 10)))
        now = self.clock()
        quiet = min((now - t.changed for t in self._tracked.values()), default=0.0)
        return min(longest, max(base, quiet * AGE_FACTOR))

    async def _poll_safely(self) -> None:
        try:
            await self.poll()
        except Exception as exc:  # transient, or a bug: either way no job changes state
            if not isinstance(exc, TransientError):
                log.exception("polling %s failed", self.destination.name)
            self._failures += 1
            if self._failures == 1:
                self._note([t.job for t in self._tracked.values()], "scheduler_unavailable",
                           f"status command failed; jobs keep their state, retrying: {exc}")
            return
        if self._failures:
            self._note([t.job for t in self._tracked.values()], "scheduler_available",
                       "status commands answer again")
            self._failures = 0

    async def poll(self) -> None:
        """One round: a status command per chunk of ids, then sidecars and accounting for
        jobs that left the queue. TransientError if the scheduler did not answer."""
        tracked = list(self._tracked.values())
        if not tracked:
            return
        statuses = await self._statuses([t.native_id for t in tracked])
        now = self.clock()
        self.polls += 1
        unresolved = []
        for t in tracked:
            units = self._merge(t, statuses, now)
            if units:
                unresolved.append((t, units))
            else:
                self._finish_if_done(t)
        if unresolved:
            await self._resolve(unresolved, now)

    async def _statuses(self, ids: list[str]) -> dict[str, NativeStatus]:
        size = self.scheduler.chunk_size
        chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
        self.max_status_per_poll = max(self.max_status_per_poll, len(chunks))
        out: dict[str, NativeStatus] = {}
        for chunk in chunks:
            argv = self.scheduler.status_command(chunk)
            result = await self._run(argv, "status", STATUS_TIMEOUT_S)
            error = self.scheduler.status_error(result)
            if error:
                raise SchedulerUnavailable(f"{argv[0]}: {error}")
            out.update(self.scheduler.parse_status_output(result.stdout))
        return out

    def _merge(self, t: _Tracked, statuses: dict[str, NativeStatus], now: float) -> list[Unit]:
        """Take in what the status says; returns the units that need the sidecar (or more)."""
        st = statuses.get(t.native_id)
        unresolved, host, running = [], None, False
        for unit in t.units:
            if unit in t.done:
                continue
            us = st.tasks.get(unit) if st and unit is not None and st.tasks else st
            if us is not None and us.phase == Phase.ENDED:
                if us.outcome is not None and (us.exit_code is not None or us.outcome
                                               in (JobState.COMPLETED, JobState.LOST)):
                    t.done[unit], t.changed = us, now
                    continue
                t.said[unit] = us  # ended, but the exit code (or even how) is not known yet
            if us is None or us.phase == Phase.ENDED:
                unresolved.append(unit)
            elif us.phase == Phase.RUNNING:
                running, host = True, host or us.host
        if running and not t.running:
            t.running, t.changed = True, now
            self.sink.report(t.job, Outcome(JobState.RUNNING, host=host))
        t.missing_since = (t.missing_since or now) if unresolved else None
        return unresolved

    async def _resolve(self, pending: list[tuple[_Tracked, list[Unit]]], now: float) -> None:
        """The sidecar decides, then accounting; only after the grace period is a job LOST."""
        reads = [(t, u) for t, units in pending for u in units]
        codes = dict(zip(((t.job.id, u) for t, u in reads),
                         await asyncio.gather(*(self._sidecar(t, u) for t, u in reads)),
                         strict=True))
        ask = [t for t, units in pending if any(
            (t.said.get(u) is None or t.said[u].outcome is None)
            and codes[(t.job.id, u)] not in (0, UNREADABLE) for u in units)]
        accounting = await self._accounting(ask) if ask else {}
        for t, units in pending:
            expired = now - (t.missing_since or now) >= self.lost_grace_s
            for u in units:
                acct = unit_status(accounting.get(t.native_id), u) if accounting else None
                decided = decide(t.said.get(u), codes[(t.job.id, u)], acct,
                                  accounting is not None, expired, t.stop_reason)
                if decided is not None:
                    t.done[u], t.changed = decided, now
            self._finish_if_done(t)

    async def _sidecar(self, t: _Tracked, unit: Unit) -> SidecarCode:
        run_dir = self.files(t.job).run_dir
        path = f"{run_dir}/{EXITCODE}" if unit is None else f"{run_dir}/tasks/{unit}/{EXITCODE}"
        try:
            text = (await self.transport.read_file(path)).decode(errors="replace").strip()
        except FileNotFoundError:
            return None
        except TransientError:
            return UNREADABLE
        return int(text) if text.lstrip("-").isdigit() else None

    async def _accounting(self, jobs: list[_Tracked]) -> dict[str, NativeStatus] | None:
        """Accounting records of jobs; None if it could not be asked right now."""
        if self._accounting_off:
            return {}
        out: dict[str, NativeStatus] = {}
        size = self.scheduler.chunk_size
        for i in range(0, len(jobs), size):
            chunk = jobs[i : i + size]
            since = time.time() - min(t.job.created_at.timestamp() for t in chunk)
            argv = self.scheduler.accounting_command([t.native_id for t in chunk], since)
            if argv is None:
                return {}
            try:
                result = await self._run(argv, "accounting", STATUS_TIMEOUT_S)
            except TransientError:
                return None
            if self.scheduler.accounting_disabled(result):
                self._accounting_off = True
                return {}
            if self.scheduler.status_error(result):
                return None
            out.update(self.scheduler.parse_accounting_output(result.stdout))
        return out

    def _finish_if_done(self, t: _Tracked) -> None:
        if any(u not in t.done for u in t.units) or self._tracked.get(t.job.id) is not t:
            return
        if t.units == [None]:
            outcome = unit_outcome(t.done[None], t.stop_reason)
        else:
            outcome = array_outcome(t.done, t.stop_reason)
        del self._tracked[t.job.id]
        self._stopping.discard(t.job.id)
        self._final[t.job.id] = outcome
        while len(self._final) > FINAL_CACHE:
            self._final.popitem(last=False)
        self.sink.report(t.job, outcome)

    async def _run(self, argv: list[str], kind: str, timeout: float = 60.0) -> CommandResult:
        self.commands[kind] += 1
        return await self.transport.run(argv, timeout=timeout)

    def _note(self, jobs: list[JobRecord], type_: str, message: str) -> None:
        """An event on each job when the sink can write one (else only the log)."""
        log.warning("%s: %s", self.destination.name, message)
        note = getattr(self.sink, "note", None)
        if callable(note):
            for job in jobs:
                note(job.id, type_, message)
