"""Jobs started directly on an SSH host (scheduler = "ssh"), detached like local jobs.

A job is `setsid bash jobgate.sh` in its remote run directory: its own session,
so it outlives the SSH channel and the gateway. It is known by pid + the process's
start time (field 22 of /proc/PID/stat), since pids are reused. One command per poll
interval reports on every running job of the destination (never a channel per job);
the exit-code sidecar decides how a job ended, and a job whose process is gone without
one is LOST. Nothing here is SSH-specific: it runs over any Transport.

Remote paths: `base_dir` may be relative (to the remote home, where SSH sessions and
SFTP both start); it is made absolute before the first wrapper is rendered, because the
wrapper `cd`s into the job's working directory and then still writes to the run dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from jobgate.backends.base import (
    Backend,
    Outcome,
    StatusSink,
    Submitted,
    effective_resources,
    render,
    script_text,
)
from jobgate.config import Destination
from jobgate.errors import (
    ConfigError,
    FatalError,
    JobgateError,
    SchedulerUnavailable,
    SubmitError,
    TransientError,
)
from jobgate.spec import JobRecord
from jobgate.states import JobState
from jobgate.transports.base import Transport

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_MAX_S = 60.0  # longest wait between tries of a poll, stop or stage-out that failed
LOST_AFTER = 2  # polls that must agree a job vanished without an exit code before LOST


@cache
def _remote_lib() -> str:
    return (resources.files("jobgate.backends") / "templates" / "ssh_remote.sh").read_text()


def script_argv(name: str, *args: str) -> list[str]:
    """Run function jg_<name> of templates/ssh_remote.sh: the values travel as arguments,
    never spliced into the shell text."""
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


def exit_reason(code: int) -> str:
    if code == 126:
        return "exit code 126: cannot enter the working directory or run the command"
    if code == 127:
        return "exit code 127: command not found"
    if code > 128:
        with contextlib.suppress(ValueError):
            return f"exit code {code} (killed by {signal.Signals(code - 128).name})"
    return f"exit code {code}"


@dataclass
class _Watch:
    job: JobRecord
    pid: int
    start: int | None  # None: unknown, any live process with this pid is the job
    stop_reason: str | None = None
    gone: int = 0  # consecutive polls that found no process and no sidecar
    timer: asyncio.TimerHandle | None = None


class SSHBackend(Backend):
    """`local_base_dir`: where on the gateway's host stage_out puts each job's outputs
    (`<local_base_dir>/<job id>/outputs/<path>`, the local backend's layout). Without
    it, outputs are only checked for and stay in the remote run directory."""

    def __init__(
        self,
        destination: Destination,
        sink: StatusSink,
        base_dir: str,
        transport: Transport,
        local_base_dir: str | None = None,
    ) -> None:
        super().__init__(destination, sink, base_dir)
        if any(c in base_dir for c in "\t\n"):  # the poll protocol is tab/line separated
            raise ConfigError(
                f"destinations.{destination.name}.remote_dir", "must not contain tabs or newlines"
            )
        self.transport = transport
        self._configured_base = base_dir
        self.local_base_dir = local_base_dir
        self.polls = 0  # status commands run: one per interval, whatever the number of jobs
        self._watches: dict[str, _Watch] = {}
        self._wake = asyncio.Event()
        self._base_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._where = f"{destination.host or 'the remote host'}"

    async def start(self) -> None:
        self._spawn(self._poll_loop())

    # -- submission -------------------------------------------------------------------

    async def submit(self, job: JobRecord) -> Submitted:
        await self._absolute_base()
        files = self.files(job)
        wrapper = render("ssh.sh.j2", job, files).encode()
        # The first write creates the run directory; the rest may then go in parallel.
        await self.transport.write_file(files.marker("jobgate.sh"), wrapper, 0o755)
        uploads: list[Coroutine[Any, Any, None]] = []
        script = script_text(job)
        if script is not None:
            uploads.append(
                self.transport.write_file(files.marker("script.sh"), script.encode(), 0o755)
            )
        for stage in job.spec.input_files:
            target = posixpath.join(files.run_dir, stage.target_path)
            uploads.append(self._put_input(stage.source, target))
        await asyncio.gather(*uploads)
        workdir = files.workdir if files.workdir.startswith(files.run_dir + "/") else ""
        result = await self.transport.run(script_argv("launch", files.run_dir, workdir))
        if result.returncode != 0:
            detail = result.stderr.strip() or f"exit code {result.returncode}"
            raise SubmitError(f"cannot start the job on {self._where}: {detail}")
        try:
            sub = parse_started(result.stdout)
        except ValueError as exc:
            raise SubmitError(f"starting the job on {self._where}: {exc}") from None
        self._watch(job, int(sub.native_id), sub.data["start"])
        return sub

    async def _put_input(self, source: str, target: str) -> None:
        try:
            await self.transport.put(source, target)
        except OSError as exc:  # transport trouble is a JobgateError, not an OSError
            raise SubmitError(f"input file {source}: {exc.strerror or exc}") from None

    async def _absolute_base(self) -> None:
        if posixpath.isabs(self.base_dir):
            return
        async with self._base_lock:
            if posixpath.isabs(self.base_dir):
                return
            result = await self.transport.run(["pwd"])  # sessions start in the remote home
            home = result.stdout.strip()
            if result.returncode != 0 or not posixpath.isabs(home):
                raise SchedulerUnavailable(f"cannot find the remote home on {self._where}")
            self.base_dir = posixpath.join(home, self.base_dir)

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
        self._watches[job.id] = watch
        walltime = effective_resources(job.spec.resources, self.destination).walltime_s
        if walltime:
            elapsed = time.time() - job.started_at.timestamp() if job.started_at else 0.0
            watch.timer = asyncio.get_running_loop().call_later(
                max(0.0, walltime - elapsed), self._on_walltime, job.id
            )
        if len(self._watches) == 1:
            self._wake.set()  # the poll loop idles while there is nothing to watch

    def _on_walltime(self, job_id: str) -> None:
        watch = self._watches.get(job_id)
        if watch is not None:
            self._spawn(self.stop(watch.job, "timeout"))

    # -- watching -----------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        interval = self.destination.poll_interval_s
        delay, failures = interval, 0
        while True:
            if not self._watches:
                await self._wake.wait()  # idle until a job is submitted or attached
            # A stop cuts the wait short. Not wait_for: on 3.11 it swallows a cancel that
            # arrives as the event is set, and close() would wait for this loop for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            if not self._watches:
                continue
            try:
                await self.poll()
            except Exception as exc:  # SSH down (or a bug): no job changes state
                if not isinstance(exc, JobgateError):
                    log.exception("polling %s failed", self._where)
                failures += 1
                delay = min(interval * 2 ** min(failures, 16), RETRY_MAX_S)
                msg = "state of %d jobs on %s unknown, kept (next poll in %.0f s): %s"
                log.warning(msg, len(self._watches), self._where, delay, exc)
                if failures == 1:
                    why = f"status unknown, jobs keep their state, retrying: {exc}"
                    self._note_all("scheduler_unavailable", why)
            else:
                if failures:
                    self._note_all("scheduler_available", f"{self._where} answers again")
                delay, failures = interval, 0

    def _note_all(self, type_: str, message: str) -> None:
        for watch in self._watches.values():
            self.sink.note(watch.job.id, type_, message)

    async def poll(self) -> None:
        """One status command for every watched job; reports the ones that ended."""
        watches = list(self._watches.values())
        lines = "".join(
            f"{w.job.id}\t{w.pid}\t{'' if w.start is None else w.start}\t"
            f"{self.files(w.job).run_dir}\n"
            for w in watches
        )
        result = await self.transport.run(script_argv("poll"), input=lines)
        self.polls += 1
        if result.returncode != 0:
            raise SchedulerUnavailable(
                f"status command on {self._where} failed: {result.stderr.strip()}"
            )
        for line in result.stdout.splitlines():
            fields = line.split("\t")
            watch = self._watches.get(fields[0]) if len(fields) == 5 else None
            if watch is None:
                continue
            _, alive, code, started, host = fields
            outcome = self._judge(watch, alive == "1", _int(code), started == "1", host or None)
            if outcome is not None:
                self._finish(watch, outcome)

    def _judge(
        self, watch: _Watch, alive: bool, code: int | None, started: bool, host: str | None
    ) -> Outcome | None:
        if code is None and alive:
            watch.gone = 0
            return None
        stop = watch.stop_reason or watch.job.stop_reason
        if stop == "cancel":
            return Outcome(JobState.CANCELLED, code, "cancelled on request", host)
        if stop == "timeout":
            return Outcome(JobState.TIMEOUT, code, "walltime exceeded", host)
        if code == 0:
            return Outcome(JobState.COMPLETED, 0, None, host)
        if code is not None:
            return Outcome(JobState.FAILED, code, exit_reason(code), host)
        watch.gone += 1
        if watch.gone < LOST_AFTER:
            return None
        if not started:
            why = f"the job never started on {self._where} (see jobgate.log in its run dir)"
            return Outcome(JobState.FAILED, None, why, host)
        why = f"the job's process on {self._where} is gone and left no exit code"
        return Outcome(JobState.LOST, None, why, host)

    def _finish(self, watch: _Watch, outcome: Outcome) -> None:
        del self._watches[watch.job.id]
        if watch.timer is not None:
            watch.timer.cancel()
        self.sink.report(watch.job, outcome)

    def watched(self) -> int:
        return len(self._watches)

    # -- stopping -----------------------------------------------------------------------

    async def stop(self, job: JobRecord, reason: str) -> None:
        watch = self._watches.get(job.id)
        if watch is None or watch.stop_reason:
            return
        watch.stop_reason = reason
        grace = self.destination.cancel_grace_s
        start = "" if watch.start is None else str(watch.start)
        argv = script_argv(
            "stop",
            self.files(job).run_dir,
            str(watch.pid),
            start,
            str(int(grace * 10)),
            f"{grace:g}",
        )

        async def attempt() -> None:
            if job.id in self._watches:  # else it ended on its own meanwhile
                await self.transport.run(argv, timeout=2 * grace + 60)

        try:
            await self._persist(job.id, "cancel_retry", "stopping the job", attempt)
        except FatalError as exc:
            log.error("cannot stop job %s: %s", job.id, exc)
            self.sink.note(job.id, "warning", f"cannot stop the job: {exc}")
        self._wake.set()  # see the end now, not an interval later

    async def _persist(
        self, job_id: str, type_: str, what: str, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        """Retry through transient errors, backing off: a cancel or the outputs of a job
        that is done must not be lost to a network hiccup. The first failure is noted."""
        delay = 1.0
        while True:
            try:
                return await attempt()
            except TransientError as exc:
                msg = "%s (job %s) waits for %s, next try in %.0f s: %s"
                log.warning(msg, what, job_id, self._where, delay, exc)
                if delay == 1.0:
                    self.sink.note(job_id, type_, f"{what}: {exc}; retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    # -- files --------------------------------------------------------------------------

    async def stage_out(self, job: JobRecord) -> list[str]:
        return await self._persist(
            job.id, "stage_out_retry", "stage-out", lambda: self._collect(job)
        )

    async def _collect(self, job: JobRecord) -> list[str]:
        files = self.files(job)
        outputs = job.spec.output_files
        sources = [posixpath.join(files.workdir, rel) for rel in outputs]
        if self.local_base_dir is None:
            found = await asyncio.gather(*(self.transport.exists(s) for s in sources))
        else:
            target = Path(self.local_base_dir) / job.id / "outputs"
            found = await asyncio.gather(
                *(self._fetch(s, target / rel) for s, rel in zip(sources, outputs, strict=True))
            )
        return [rel for rel, ok in zip(outputs, found, strict=True) if not ok]

    async def _fetch(self, source: str, target: Path) -> bool:
        try:
            await self.transport.get(source, str(target))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise FatalError(f"output file {source}: {exc.strerror or exc}") from None
        return True

    async def read(self, job: JobRecord, path: str, offset: int = 0, limit: int = -1) -> bytes:
        # self.files() paths made before the base was resolved are relative to the remote
        # home, not to the run directory: they are used as they are, like absolute ones.
        if not (posixpath.isabs(path) or path.startswith(self._configured_base + "/")):
            path = posixpath.join(self.files(job).run_dir, path)
        return await self.transport.read_file(path, offset, limit)

    # -- life cycle ---------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for watch in self._watches.values():
            if watch.timer is not None:
                watch.timer.cancel()
        await self.transport.close()


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None
