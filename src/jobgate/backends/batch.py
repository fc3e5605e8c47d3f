"""The backend every batch scheduler (Slurm, PBS) shares: submit through a transport, and
the one polling loop.

Per destination, one status command per interval for every active job (chunks of at most
500 ids). The interval is the destination's `poll_interval_s` while jobs start, end or are
submitted, and backs off the longer nothing changes; a failed or hung status command backs
off too and changes no job. A job that left the queue is judged by its exit-code sidecar,
then by accounting, and only after a grace period becomes LOST: never success by absence.
Final states are remembered and never asked about again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import posixpath
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable

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
    BatchScheduler,
    SubmitShells,
    array_indices,
    job_name,
    message_of,
    task_files,
)
from jobgate.backends.batch_status import (
    UNREADABLE,
    NativeStatus,
    SidecarCode,
    Tracked,
    Unit,
    unit_status,
)
from jobgate.config import Destination
from jobgate.errors import SchedulerUnavailable, SubmitError, TransientError
from jobgate.spec import JobRecord, Resources
from jobgate.states import JobState
from jobgate.transports.base import CommandResult, Transport

log = logging.getLogger(__name__)

JOB_SCRIPT = "jobgate.sh"
AGE_FACTOR = 0.1  # after 10 quiet minutes, jobs are asked about once a minute
MAX_INTERVAL_S = 60.0
STATUS_TIMEOUT_S = 30.0
FINAL_CACHE = 10_000


class BatchBackend(Backend):
    lost_grace_s = 120.0  # left the queue with no sidecar and no accounting record: LOST

    def __init__(
        self,
        destination: Destination,
        sink: StatusSink,
        base_dir: str,
        transport: Transport,
        scheduler: BatchScheduler,
        local_dir: str | None = None,
    ) -> None:
        super().__init__(destination, sink, base_dir)
        self.transport, self.scheduler = transport, scheduler
        self.local_dir = local_dir or base_dir  # where stage_out copies outputs to
        self.clock: Callable[[], float] = time.monotonic
        self.commands: Counter[str] = Counter()  # commands run (processes, channels), by kind
        self.polls = self.max_status_per_poll = 0
        self._tracked: dict[str, Tracked] = {}
        self._final: OrderedDict[str, Outcome] = OrderedDict()
        self._stopping: set[str] = set()
        self._shells = SubmitShells(self._run, destination.max_submits)
        self._wake = asyncio.Event()
        self._failures = 0
        self._accounting_off = False
        self._last_poll = -math.inf
        self._last_change = 0.0  # when a job here was last submitted, started, stopped or ended
        self._task: asyncio.Task[None] | None = None
        self._configured_base = base_dir
        self._base_lock = asyncio.Lock()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"poll-{self.destination.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._shells.close()
        await self.transport.close()

    # -- submit, find, attach -------------------------------------------------------------

    def check_resources(self, res: Resources) -> None:
        """SpecError naming the field for what the scheduler cannot take (for JobService)."""
        self.scheduler.check(res)

    async def submit(self, job: JobRecord) -> Submitted:
        res = effective_resources(job.spec.resources, self.destination)
        self.scheduler.check(res)  # again: a job stored before the service checked
        await self._absolute_base()
        files = self.files(job)
        await self._prepare(job, res, files)
        argv = self.scheduler.submit_command(files.marker(JOB_SCRIPT), files)
        try:
            native_id = self.scheduler.parse_submit_output(await self._shells.run(argv))
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
            body = render("_body.sh.j2", job, task_files(job, files), atomic_sidecar=True)
            writes.append(t.write_file(files.marker(TASK_TEMPLATE), body.encode()))
        try:
            await asyncio.gather(*writes)
        except OSError as exc:
            raise SubmitError(f"staging in {exc.filename or ''}: {exc.strerror or exc}") from None
        if job.spec.directory and files.workdir.startswith(files.run_dir + "/"):
            await self._run(["mkdir", "-p", files.workdir], "mkdir")
        text = render(
            self.scheduler.template, job, files, **self.scheduler.script_context(job, res, files)
        )
        # Written last: find() takes its absence as "never submitted".
        await t.write_file(files.marker(JOB_SCRIPT), text.encode(), 0o755)

    async def find(self, job: JobRecord) -> Submitted | None:
        await self._absolute_base()
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
        array = effective_resources(job.spec.resources, self.destination).array
        units: list[Unit] = list(array_indices(array)) if array else [None]
        running = job.state == JobState.RUNNING
        self._tracked[job.id] = Tracked(job, native_id, units, running, job.stop_reason)
        self._last_change = self.clock()
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
            t.stop_reason = reason
        self._last_change = self.clock()
        await self._absolute_base()
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
                await self.transport.run(
                    ["/bin/bash", "cancel.sh"],
                    cwd=run_dir,
                    timeout=max(1.0, self.destination.cancel_grace_s),
                )
        except TransientError as exc:
            log.warning("cancel.sh of %s: %s", job.id, exc)

    async def stage_out(self, job: JobRecord) -> list[str]:
        await self._absolute_base()
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
        await self._absolute_base()
        if path.startswith(self._configured_base + "/"):  # from files() before it was resolved
            path = self.base_dir + path[len(self._configured_base) :]
        path = posixpath.join(self.files(job).run_dir, path)  # relative: to the run directory
        return await self.transport.read_file(path, offset, limit)

    async def _absolute_base(self) -> None:
        """A relative base (a remote_dir under the SSH home) is made absolute once: the job
        script changes directory before it writes its sidecar."""
        if posixpath.isabs(self.base_dir):
            return
        async with self._base_lock:
            if not posixpath.isabs(self.base_dir):
                result = await self._run(["pwd"], "pwd")  # sessions start in the home
                home = result.stdout.strip()
                if result.returncode != 0 or not posixpath.isabs(home):
                    raise SchedulerUnavailable("cannot find the home directory to run jobs in")
                self.base_dir = posixpath.join(home, self.base_dir)

    # -- polling ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            if not self._tracked:
                await self._wake.wait()
                continue
            delay = self._last_poll + self.interval() - self.clock()
            if delay > 0:  # a new job or a stop may shorten the interval: wait, then look again
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(
                        delay
                    ):  # not wait_for: it can swallow close()'s cancel
                        await self._wake.wait()
                continue
            self._last_poll = self.clock()
            await self.poll_once()

    def interval(self) -> float:
        """Seconds between polls now: the base while jobs change, longer as they stay quiet."""
        base = self.destination.poll_interval_s
        longest = max(base, MAX_INTERVAL_S)
        if self._failures:
            return min(longest, base * (1 << min(self._failures, 10)))
        return min(longest, max(base, (self.clock() - self._last_change) * AGE_FACTOR))

    async def poll_once(self) -> None:
        """One round as the loop runs it: a failure is logged, noted and backed off from."""
        try:
            await self.poll()
        except Exception as exc:  # transient, or a bug: either way no job changes state
            if not isinstance(exc, TransientError):
                log.exception("polling %s failed", self.destination.name)
            self._failures += 1
            if self._failures == 1:
                self._note(
                    [t.job for t in self._tracked.values()],
                    "scheduler_unavailable",
                    f"status command failed; jobs keep their state, retrying: {exc}",
                )
            return
        if self._failures:
            self._note(
                [t.job for t in self._tracked.values()],
                "scheduler_available",
                "status commands answer again",
            )
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
        before = [(len(t.done), t.running) for t in tracked]
        unresolved = []
        for t in tracked:
            was_running = t.running
            units = t.merge(statuses.get(t.native_id), now)
            if t.running and not was_running:
                self.sink.report(t.job, Outcome(JobState.RUNNING, host=t.host))
            if units:
                unresolved.append((t, units))
            else:
                self._finish_if_done(t)
        if unresolved:
            await self._resolve(unresolved, now)
        if before != [(len(t.done), t.running) for t in tracked]:
            self._last_change = now  # things move: keep polling at the base interval

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

    async def _resolve(self, pending: list[tuple[Tracked, list[Unit]]], now: float) -> None:
        """The sidecar decides, then accounting; only after the grace period is a job LOST."""
        await self._absolute_base()
        reads = [(t, u) for t, units in pending for u in units]
        codes = await asyncio.gather(*(self._sidecar(t, u) for t, u in reads))
        evidence = list(zip(reads, codes, strict=True))
        ask = {t.job.id: t for (t, u), code in evidence if t.needs_accounting(u, code)}
        accounting = await self._accounting(list(ask.values())) if ask else {}
        for (t, u), code in evidence:
            acct = unit_status(accounting.get(t.native_id), u) if accounting else None
            t.decide(u, code, acct, accounting is not None, now, self.lost_grace_s)
        for t, _ in pending:
            self._finish_if_done(t)

    async def _sidecar(self, t: Tracked, unit: Unit) -> SidecarCode:
        run_dir = self.files(t.job).run_dir
        path = f"{run_dir}/{EXITCODE}" if unit is None else f"{run_dir}/tasks/{unit}/{EXITCODE}"
        try:
            text = (await self.transport.read_file(path)).decode(errors="replace").strip()
        except FileNotFoundError:
            return None
        except TransientError:
            return UNREADABLE
        return int(text) if text.lstrip("-").isdigit() else None

    async def _accounting(self, jobs: list[Tracked]) -> dict[str, NativeStatus] | None:
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

    def _finish_if_done(self, t: Tracked) -> None:
        if not t.finished or self._tracked.get(t.job.id) is not t:
            return
        outcome = t.outcome()
        del self._tracked[t.job.id]
        self._stopping.discard(t.job.id)
        self._final[t.job.id] = outcome
        while len(self._final) > FINAL_CACHE:
            self._final.popitem(last=False)
        self.sink.report(t.job, outcome)

    async def _run(
        self, argv: list[str], kind: str, timeout: float = 60.0, input: str | None = None
    ) -> CommandResult:
        self.commands[kind] += 1
        return await self.transport.run(argv, timeout=timeout, input=input)

    def _note(self, jobs: list[JobRecord], type_: str, message: str) -> None:
        """An event on each job when the sink can write one (else only the log)."""
        log.warning("%s: %s", self.destination.name, message)
        for job in jobs:
            self.sink.note(job.id, type_, message)
