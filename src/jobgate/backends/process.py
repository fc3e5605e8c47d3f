"""The process scheduler: jobs started directly on the transport's host (SSH, usually),
detached like local jobs, watched by one status command per interval (the `Poller`).

A job is `setsid bash jobgate.sh` in its run directory: its own session, so it outlives
the SSH channel and the gateway. It is known by pid + the process's start time (field 22
of /proc/PID/stat), since pids are reused. The exit-code sidecar decides how a job ended;
a job whose process is gone without one is LOST. The remote side is
templates/process_remote.sh, a few shell functions run with their values as arguments.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jobgate.backends.base import Backend, StatusSink, Submitted
from jobgate.backends.environment import clean_command
from jobgate.backends.outcome import Outcome, ended
from jobgate.backends.poller import MAX_INTERVAL_S, Poller
from jobgate.backends.scripts import render
from jobgate.backends.staging import plan, stage_in
from jobgate.config import Destination
from jobgate.errors import FatalError, SchedulerUnavailable, SubmitError, TransientError
from jobgate.histogram import Histogram
from jobgate.spec import JobRecord
from jobgate.states import JobState, StopReason
from jobgate.transports.base import Transport

log = logging.getLogger(__name__)

LOST_AFTER = 2  # polls that must agree a job vanished without an exit code before LOST


@cache
def _remote_lib() -> str:
    return (resources.files("jobgate.backends") / "templates" / "process_remote.sh").read_text()


def script_argv(name: str, *args: str) -> list[str]:
    """Run function jg_<name> of templates/process_remote.sh: the values travel as
    arguments, never spliced into the shell text."""
    return ["bash", "-c", f'{_remote_lib()}\njg_{name} "$@"', f"jobgate-{name}", *args]


def parse_started(stdout: str) -> Submitted:
    """What the start and find commands print: pid, start time (empty if it already
    exited) and host."""
    parts = stdout.strip("\n").split("\t")
    if len(parts) != 3 or not parts[0].isdigit():
        raise ValueError(f"unexpected answer {stdout.strip()!r}")
    # start 0 for a process already gone: no live process may then pass for the job.
    start = int(parts[1]) if parts[1].isdigit() else 0
    return Submitted(parts[0], parts[2] or None, {"start": start}, running=True)


@dataclass
class _Watch:
    job: JobRecord
    pid: int
    start: int | None  # None: unknown, any live process with this pid is the job
    stop_reason: StopReason | None = None
    gone: int = 0  # consecutive polls that found no process and no sidecar
    timer: asyncio.TimerHandle | None = None

    @property
    def job_id(self) -> str:
        return self.job.id


class ProcessBackend(Backend):
    # No scheduler: a job gets the machine as it is; only its time limit is enforced.
    honoured = frozenset({"walltime_s", "array"})  # arrays: run by a driver (arrays.py)

    def __init__(
        self,
        destination: Destination,
        sink: StatusSink,
        base_dir: str,
        transport: Transport,
        local_dir: str | None = None,
    ) -> None:
        super().__init__(destination, sink, base_dir, transport, local_dir)
        self.poller: Poller[_Watch] = Poller(
            destination.name, destination.poll_interval_s, self._round, sink
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._where = destination.host or "this host"

    async def start(self) -> None:
        await self.poller.start()

    def poll_latency(self) -> Histogram:
        return self.poller.latency

    # -- submission -------------------------------------------------------------------

    async def submit(self, job: JobRecord) -> Submitted:
        files, env = self.files(job), self.environment(job)
        await stage_in(
            self.transport,
            plan(
                job,
                files,
                render("process.sh.j2", job, files, env, self.destination.hooks, own_arrays=True),
            ),
        )
        workdir = files.workdir if files.own_workdir else ""
        launch = script_argv("launch", files.run_dir, workdir)
        result = await self.transport.run(clean_command(launch, env, self.destination))
        if result.returncode != 0:
            detail = result.stderr.strip() or f"exit code {result.returncode}"
            raise SubmitError(f"cannot start the job on {self._where}: {detail}")
        try:
            sub = parse_started(result.stdout)
        except ValueError as exc:
            raise SubmitError(f"starting the job on {self._where}: {exc}") from None
        self._watch(job, int(sub.native_id), sub.data["start"])
        return sub

    async def find(self, job: JobRecord) -> Submitted | None:
        result = await self.transport.run(script_argv("find", self.files(job).run_dir))
        if result.returncode == 3:
            return None
        try:
            return parse_started(result.stdout)
        except ValueError:
            raise SchedulerUnavailable(
                f"looking for job {job.id} on {self._where}: {result.stderr.strip()}"
            ) from None

    async def attach(self, job: JobRecord) -> None:
        start = job.backend_data.get("start")
        self._watch(job, int(job.native_id or 0), start if isinstance(start, int) else None)
        if job.stop_reason:
            self._spawn(self.stop(job, job.stop_reason))

    def _watch(self, job: JobRecord, pid: int, start: int | None) -> None:
        watch = _Watch(job, pid, start)
        walltime = self.resources(job).walltime_s
        if walltime:
            elapsed = time.time() - job.started_at.timestamp() if job.started_at else 0.0
            watch.timer = asyncio.get_running_loop().call_later(
                max(0.0, walltime - elapsed), self._on_walltime, job.id
            )
        self.poller.watch(job.id, watch)

    def _on_walltime(self, job_id: str) -> None:
        watch = self.poller.watched.get(job_id)
        if watch is not None:
            self._spawn(self.stop(watch.job, StopReason.TIMEOUT))

    def watched(self) -> int:
        return len(self.poller.watched)

    # -- watching: one command per chunk of jobs ----------------------------------------

    async def _round(self, watches: list[_Watch]) -> None:
        lines = "".join(
            f"{w.job.id}\t{w.pid}\t{'' if w.start is None else w.start}\t"
            f"{self.files(w.job).run_dir}\n"
            for w in watches
        )
        result = await self.transport.run(script_argv("poll"), input=lines)
        if result.returncode != 0:
            raise SchedulerUnavailable(
                f"status command on {self._where} failed: {result.stderr.strip()}"
            )
        for line in result.stdout.splitlines():
            fields = line.split("\t")
            watch = self.poller.watched.get(fields[0]) if len(fields) == 5 else None
            if watch is None:
                continue
            _, alive, code, started, host = fields
            outcome = self._judge(watch, alive == "1", _int(code), started == "1", host or None)
            if outcome is not None:
                if watch.timer is not None:
                    watch.timer.cancel()
                self.poller.finish(watch.job, outcome)

    def _judge(
        self, watch: _Watch, alive: bool, code: int | None, started: bool, host: str | None
    ) -> Outcome | None:
        if code is None and alive:
            watch.gone = 0
            return None
        stop = watch.stop_reason or watch.job.stop_reason
        if code is not None or stop is not None:  # a stopped job may die before its sidecar
            return ended(code, stop, host=host)
        watch.gone += 1
        if watch.gone < LOST_AFTER:
            return None
        if not started:
            why = f"the job never started on {self._where} (see jobgate.log in its run dir)"
            return ended(None, state=JobState.FAILED, reason=why, host=host)
        why = f"the job's process on {self._where} is gone and left no exit code"
        return ended(None, reason=why, host=host)

    # -- stopping -----------------------------------------------------------------------

    async def stop(self, job: JobRecord, reason: StopReason) -> None:
        watch = self.poller.watched.get(job.id)
        if watch is None or watch.stop_reason:
            return
        watch.stop_reason = reason
        grace = self.destination.cancel_grace_s
        start = "" if watch.start is None else str(watch.start)
        run_dir, pid = self.files(job).run_dir, str(watch.pid)
        argv = script_argv("stop", run_dir, pid, start, str(int(grace * 10)), f"{grace:g}")
        argv = clean_command(argv, self.environment(job), self.destination)  # runs cancel.sh
        delay = 1.0
        # Through transient errors, backing off: a cancel must not be lost to a hiccup.
        while job.id in self.poller.watched:  # else it ended on its own meanwhile
            try:
                await self.transport.run(argv, timeout=2 * grace + 60)
                break
            except TransientError as exc:
                if delay == 1.0:
                    self.sink.note(job.id, "cancel_retry", f"stopping the job: {exc}; retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_INTERVAL_S)
            except FatalError as exc:
                log.error("cannot stop job %s: %s", job.id, exc)
                self.sink.note(job.id, "warning", f"cannot stop the job: {exc}")
                break
        self.poller.changed()  # see the end now, not an interval later

    # -- life cycle ---------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.poller.close()
        for watch in self.poller.watched.values():
            if watch.timer is not None:
                watch.timer.cancel()
        await super().close()


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None
