"""The backend every batch scheduler (Slurm, PBS) shares: the scheduler's commands over a
transport, staging through `staging`, and status through the one `Poller`.

A job that left the queue is judged by its exit-code sidecar, then by accounting, and only
after a grace period becomes LOST: never success by absence (`batch_status`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from collections import Counter
from collections.abc import Hashable

from jobgate.backends import packs
from jobgate.backends.array_spec import array_indices
from jobgate.backends.base import EXITCODE, SUBMIT_TRIED, WRAPPER, Backend, StatusSink, Submitted
from jobgate.backends.batch_scheduler import (
    TASK_TEMPLATE,
    BatchScheduler,
    SubmitShells,
    job_name,
    message_of,
    task_files,
)
from jobgate.backends.batch_status import (
    ONE_UNIT,
    UNREADABLE,
    Known,
    NativeStatus,
    SidecarCode,
    Tracked,
    Unit,
    unit_status,
)
from jobgate.backends.environment import clean_command, clean_prefix
from jobgate.backends.layout import JobFiles
from jobgate.backends.outcome import Outcome
from jobgate.backends.poller import MAX_INTERVAL_S, Poller
from jobgate.backends.scripts import render, render_pack
from jobgate.backends.staging import StageIn, Write, plan, stage_in
from jobgate.config import Destination
from jobgate.errors import CommandNotFound, SchedulerUnavailable, TransientError
from jobgate.histogram import Histogram
from jobgate.spec import JobRecord, Resources
from jobgate.states import TASK_EVENT, JobState, StopReason
from jobgate.transports.base import CommandResult, Transport

log = logging.getLogger(__name__)

STATUS_TIMEOUT_S = 30.0


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
        super().__init__(destination, sink, base_dir, transport, local_dir)
        self.scheduler = scheduler
        self.commands: Counter[str] = Counter()  # commands run (processes, channels), by kind
        self.poller: Poller[Tracked] = Poller(
            destination.name, destination.poll_interval_s, self._round, sink, scheduler.chunk_size
        )
        self._stopping: set[str] = set()
        self._shells = SubmitShells(self._run, destination.max_submits)
        self._packer = packs.Packer(
            self._submit_member, self._submit_pack, destination.max_submits, destination.pack_jobs
        )
        self._accounting_off = False
        self._where = destination.host or socket.gethostname()

    async def start(self) -> None:
        await self.poller.start()

    def poll_latency(self) -> Histogram:
        return self.poller.latency

    async def close(self) -> None:
        await self.poller.close()
        await self._packer.close()
        await self._shells.close()
        await super().close()

    # -- submit, find, attach -------------------------------------------------------------

    def check_resources(self, res: Resources) -> None:
        """SpecError naming the field for what the scheduler cannot take (for JobService)."""
        self.scheduler.check(res)

    async def submit(self, job: JobRecord) -> Submitted:
        if job.backend_data.get(SUBMIT_TRIED):  # an earlier try's sbatch may have run
            found = await self.find(job)
            if found is not None:
                self._track(job, found.native_id)
                return Submitted(found.native_id)
        res = self.resources(job)
        self.scheduler.check(res)  # again: a job stored before the service checked
        files, env = self.files(job), self.environment(job)
        extra = []
        if res.array:
            body = render("_body.sh.j2", job, task_files(job, files), env, self.destination.hooks)
            extra.append(Write(files.marker(TASK_TEMPLATE), body.encode()))
        context = self.scheduler.script_context(job, res, files)
        wrapper = render(
            self.scheduler.template, job, files, env, self.destination.hooks, **context
        )
        staging = stage_in(self.transport, plan(job, files, wrapper, extra))
        # From `env -i` with the job's base: the submit command passes nothing of ours.
        prefix = clean_prefix(env, self.destination)
        key = self._pack_key(res, prefix)
        try:
            if key is None:
                await staging
                native_id = await self._submit_script(files.marker(WRAPPER), files, prefix)
            else:  # joins its pack now, while staging: the jobs handed over with it meet
                staged = asyncio.ensure_future(staging)
                native_id = await self._packer.submit(key, job, files, prefix, staged)
        except TransientError:
            found = await self.find(job)  # the job may have gone in before the error
            if found is None:
                raise
            native_id = found.native_id
        self._track(job, native_id)
        return Submitted(native_id)

    def _pack_key(self, res: Resources, prefix: tuple[str, ...]) -> Hashable | None:
        """Jobs with equal keys may share a pack (packs.py): the same resources and
        submit environment, no array of their own, no raw directives (which might not
        mean the same for an array's task)."""
        if self.scheduler.pack_template is None or self.destination.pack_jobs < 2:
            return None
        if res.array or res.directives:
            return None
        return (prefix, res.model_dump_json())

    async def _submit_script(self, path: str, files: JobFiles, prefix: tuple[str, ...]) -> str:
        argv = self._command(self.scheduler.submit_command(path, files))
        result = await self._shells.run(argv, prefix)
        if result.returncode == 127:  # the shell says: no such command, here
            raise CommandNotFound(f"{argv[0]}: command not found on {self._where}")
        return self.scheduler.parse_submit_output(result)

    async def _submit_member(self, m: packs.Member) -> str:
        return await self._submit_script(m.files.marker(WRAPPER), m.files, m.prefix)

    async def _submit_pack(self, members: list[packs.Member]) -> str:
        """One array for the members (same key); its id. Each run directory gets its
        marker before the command runs; the pack's script is kept in the first."""
        first, name = members[0], packs.pack_name(members)
        context = self.scheduler.script_context(first.job, self.resources(first.job), first.files)
        script = render_pack(
            self.scheduler.pack_template or "",
            [(m.files.run_dir, job_name(m.job)) for m in members],
            **{**context, "name": name},
        )
        path = first.files.marker(packs.SCRIPT)
        markers = packs.markers(name, members)
        await stage_in(self.transport, StageIn(markers, [], Write(path, script.encode())))
        return await self._submit_script(path, first.files, first.prefix)

    async def find(self, job: JobRecord) -> Submitted | None:
        files = self.files(job)
        if not await self.transport.exists(files.marker(WRAPPER)):
            return None  # staging never finished: never handed over
        packed = await self._pack_of(files)
        if packed is not None:  # its pack may have gone in; else it may have gone alone
            array_id = await self._find_named(packed[0], job)
            if array_id is not None:
                return Submitted(f"{array_id}_{packed[1]}")
        native_id = await self._find_named(job_name(job), job)
        return None if native_id is None else Submitted(native_id)

    async def _pack_of(self, files: JobFiles) -> tuple[str, int] | None:
        try:
            data = await self.transport.read_beneath(files.run_dir, packs.PACK, 0, 256)
        except (OSError, ValueError):  # none (or not a file of ours): not packed
            return None
        return packs.parse_marker(data)

    async def _find_named(self, name: str, job: JobRecord) -> str | None:
        since = time.time() - job.created_at.timestamp()
        for argv in self.scheduler.find_commands(name, since):
            result = await self._run(argv, "find")
            if self.scheduler.accounting_disabled(result):
                continue
            error = self.scheduler.status_error(result)
            if error:
                raise SchedulerUnavailable(f"cannot look for {name}: {error}")
            native_id = self.scheduler.parse_find_output(result.stdout, name)
            if native_id:
                return native_id
        return None

    async def attach(self, job: JobRecord) -> None:
        self.attach_known(self._known(job, job.native_id))

    def attach_known(self, k: Known) -> None:
        """attach, from only what watching needs of a job (a restart reads no records)."""
        known = self.poller.ended(k.job_id)
        if known is not None:
            self.sink.report(k.job_id, known)
        elif not k.native_id:
            self.sink.report(k.job_id, Outcome(JobState.LOST, reason="no native id was recorded"))
        else:
            self._watch(k, k.native_id)

    def _track(self, job: JobRecord, native_id: str) -> None:
        self._watch(self._known(job, native_id), native_id)

    def _known(self, job: JobRecord, native_id: str | None) -> Known:
        array, created = self.resources(job).array, job.created_at.timestamp()
        running = job.state == JobState.RUNNING
        return Known(job.id, native_id, job.run_dir, created, array, running, job.stop_reason)

    def _watch(self, k: Known, native_id: str) -> None:
        """Watch the job: what polling needs of it, not its record (see Tracked)."""
        t = Tracked(
            k.job_id,
            native_id,
            run_dir=None if k.run_dir == self.run_dir_of(k.job_id) else k.run_dir,
            created_at=k.created_at,
            units=tuple(array_indices(k.array)) if k.array else ONE_UNIT,
            running=k.running,
            stop_reason=k.stop_reason,
        )
        self.poller.watch(k.job_id, t)

    def _run_dir(self, t: Tracked) -> str:
        run_dir = t.run_dir or self.run_dir_of(t.job_id)
        if run_dir is None:  # watched jobs were placed: their base is known
            raise SchedulerUnavailable(f"job {t.job_id} has no run directory yet")
        return run_dir

    def tracked(self) -> int:
        return len(self.poller.watched)

    # -- stop, files ------------------------------------------------------------------------

    async def stop(self, job: JobRecord, reason: StopReason) -> None:
        t = self.poller.watched.get(job.id)
        native_id = t.native_id if t else job.native_id
        if native_id is None or job.id in self._stopping:
            return
        self._stopping.add(job.id)
        if t is not None:
            t.stop_reason = reason
        self.poller.changed()
        await self._cancel_hook(job)
        delay = self.destination.poll_interval_s
        while True:  # scancel exits 0 and qdel 1 for a finished job: the next poll decides
            try:
                result = await self._run(self.scheduler.cancel_command([native_id]), "cancel")
                break
            except TransientError as exc:
                if job.id not in self.poller.watched:
                    return
                self.sink.note(job.id, "cancel_retry", f"cancel command failed, retrying: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_INTERVAL_S)
        if result.returncode != 0:
            log.info("cancel %s: %s", native_id, message_of(result))
        self.poller.changed()

    async def _cancel_hook(self, job: JobRecord) -> None:
        """The user's cancel.sh, run in the run directory before scancel/qdel."""
        run_dir = self.files(job).run_dir
        try:
            if await self.transport.exists(f"{run_dir}/cancel.sh"):
                self.commands["cancel_hook"] += 1
                argv = ["/bin/bash", "cancel.sh"]
                await self.transport.run(
                    clean_command(argv, self.environment(job), self.destination),
                    cwd=run_dir,
                    timeout=max(1.0, self.destination.cancel_grace_s),
                )
        except TransientError as exc:
            log.warning("cancel.sh of %s: %s", job.id, exc)

    # -- polling: one round per chunk of jobs ---------------------------------------------

    async def _round(self, tracked: list[Tracked]) -> None:
        """A status command for the chunk, then sidecars and accounting for jobs that left
        the queue. TransientError if the scheduler did not answer."""
        statuses = await self._statuses([t.native_id for t in tracked])
        now = self.poller.clock()
        unresolved = []
        for t in tracked:
            was_running = t.running
            st = statuses.get(t.native_id)
            units = t.merge(st, now)
            if st is not None and not t.running and st.reason and st.reason != t.pending_reason:
                t.pending_reason = sys.intern(st.reason)  # said once per change, not per poll
                self.sink.note(t.job_id, "pending_reason", st.reason)
            if t.running and not was_running:
                self.sink.report(t.job_id, Outcome(JobState.RUNNING, host=t.host))
                self.poller.changed()
            self._tell_tasks(t, st)
            if units:
                unresolved.append((t, units))
            else:
                self._finish_if_done(t)
        if unresolved:
            await self._resolve(unresolved, now)

    async def _statuses(self, ids: list[str]) -> dict[str, NativeStatus]:
        argv = self.scheduler.status_command(ids)
        result = await self._run(argv, "status", STATUS_TIMEOUT_S)
        error = self.scheduler.status_error(result)
        if error:
            raise SchedulerUnavailable(f"{argv[0]}: {error}")
        return packs.as_tasks(self.scheduler.parse_status_output(result.stdout), ids)

    async def _resolve(self, pending: list[tuple[Tracked, list[Unit]]], now: float) -> None:
        """The sidecar decides, then accounting; only after the grace period is a job LOST."""
        reads = [(t, u) for t, units in pending for u in units]
        codes = await asyncio.gather(*(self._sidecar(t, u) for t, u in reads))
        evidence = list(zip(reads, codes, strict=True))
        ask = {t.job_id: t for (t, u), code in evidence if t.needs_accounting(u, code)}
        accounting = await self._accounting(list(ask.values())) if ask else {}
        for (t, u), code in evidence:
            acct = unit_status(accounting.get(t.native_id), u) if accounting else None
            t.decide(u, code, acct, accounting is not None, now, self.lost_grace_s)
        for t, _ in pending:
            self._finish_if_done(t)

    async def _sidecar(self, t: Tracked, unit: Unit) -> SidecarCode:
        rel = EXITCODE if unit is None else f"tasks/{unit}/{EXITCODE}"
        try:
            data = await self.transport.read_beneath(self._run_dir(t), rel, 0, 64)
        except FileNotFoundError:
            return None
        except TransientError:
            return UNREADABLE
        except (OSError, ValueError):  # a link or a FIFO in its place: no sidecar of ours
            return None
        text = data.decode(errors="replace").strip()
        return int(text) if text.lstrip("-").isdigit() else None

    async def _accounting(self, jobs: list[Tracked]) -> dict[str, NativeStatus] | None:
        """Accounting records of jobs (one chunk); None if it could not be asked now."""
        if self._accounting_off or not jobs:
            return {}
        since = time.time() - min(t.created_at for t in jobs)
        argv = self.scheduler.accounting_command([t.native_id for t in jobs], since)
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
        found = self.scheduler.parse_accounting_output(result.stdout)
        return packs.as_tasks(found, [t.native_id for t in jobs])

    def _tell_tasks(self, t: Tracked, st: NativeStatus | None = None) -> None:
        """Each array task's change, as a note the store keeps task by task."""
        for index, state, us in t.task_changes(st):
            data = {"index": index, "state": state.value, "exit_code": us.exit_code}
            data["native_state"] = us.native_state
            self.sink.note(t.job_id, TASK_EVENT, f"task {index} {state.value}", data)

    def _finish_if_done(self, t: Tracked) -> None:
        self._tell_tasks(t)  # how the last tasks ended, before the job's end
        if t.finished and self.poller.watched.get(t.job_id) is t:
            self._stopping.discard(t.job_id)
            self.poller.finish(t.job_id, t.outcome())

    async def _run(
        self, argv: list[str], kind: str, timeout: float = 60.0, input: str | None = None
    ) -> CommandResult:
        self.commands[kind] += 1
        return await self.transport.run(self._command(argv), timeout=timeout, input=input)

    def _command(self, argv: list[str]) -> list[str]:
        """`argv` with its command as the destination names it (`commands`: a site's path
        to sbatch, or a wrapper)."""
        return [self.destination.commands.get(argv[0], argv[0]), *argv[1:]]
