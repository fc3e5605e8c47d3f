"""Jobs on this machine: detached (own session), watched through pidfds, not polled.

A job is `sh wrapper.sh` started with posix_spawn in a new session, so it outlives
the gateway; its exit is noticed at once through a pidfd in the event loop. Across a
restart it is found again by pid + the process's start time (pids are reused).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import resource
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jobgate.backends.base import EXITCODE, WRAPPER, Backend, Submitted
from jobgate.backends.environment import JobEnvironment, job_environment
from jobgate.backends.outcome import Outcome, ended
from jobgate.backends.run_as import collect_as, hand_over, read_as, run_as_of
from jobgate.backends.scripts import render
from jobgate.backends.staging import plan, stage_in_here
from jobgate.errors import SubmitError
from jobgate.spec import JobRecord
from jobgate.states import JobState, StopReason
from jobgate.transports import beneath

_HOST = socket.gethostname()
# A child forked by one thread holds, until it execs, the fds other threads have open: so
# scripts are run through their interpreter, never exec'd (see base.user_command).
SPAWN_THREADS = 4


def process_start(pid: int) -> int | None:
    """Start time of a live process in clock ticks (None if gone or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":  # PID 1 here reaps late: a zombie is dead
        return None
    return int(fields[19])


def _marker(run_dir: str, name: str) -> str | None:
    """A marker file the wrapper wrote, read as nothing a job put there could trick: no
    link followed, no FIFO waited on, a few bytes at most."""
    try:
        return beneath.read_beneath(run_dir, name, 0, 4096).decode(errors="replace").strip()
    except (OSError, ValueError):
        return None


def read_exit_code(run_dir: str) -> int | None:
    text = _marker(run_dir, EXITCODE) or ""
    return int(text) if text.lstrip("-").isdigit() else None


class _Watch:
    __slots__ = ("fd", "job", "kill_handle", "own_child", "pid", "timer")

    def __init__(self, job: JobRecord, pid: int, fd: int, own_child: bool) -> None:
        self.job, self.pid, self.fd, self.own_child = job, pid, fd, own_child
        self.timer: asyncio.TimerHandle | None = None
        self.kill_handle: asyncio.TimerHandle | None = None


class LocalBackend(Backend):
    host_bound = True
    # No scheduler: a job gets the machine as it is; only its time limit is enforced.
    honoured = frozenset({"walltime_s", "array"})  # arrays: run by a driver (arrays.py)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watches: dict[str, _Watch] = {}
        self._stop_reasons: dict[str, StopReason] = {}
        self._pool = ThreadPoolExecutor(SPAWN_THREADS, thread_name_prefix="jobgate-spawn")
        # One pidfd per running job, from the first one re-attached at start.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def submit(self, job: JobRecord) -> Submitted:
        # posix_spawn suspends its thread until the child has exec'd (~1 ms here, more
        # under load): done in a worker thread, spawns overlap instead of stalling the loop.
        loop = asyncio.get_running_loop()
        pid = await loop.run_in_executor(self._pool, self._start, job)
        self._watch(job, pid, own_child=True)
        return Submitted(native_id=str(pid), host=_HOST, running=True)

    def environment(self, job: JobRecord) -> JobEnvironment:
        who = run_as_of(self.destination, job)
        account = who.account if who else None
        return job_environment(job, self.destination, self.files(job).run_dir, account=account)

    def _start(self, job: JobRecord) -> int:
        """Build the run directory and start the wrapper (in a worker thread)."""
        files, env, who = self.files(job), self.environment(job), run_as_of(self.destination, job)
        # The sidecar is read only after the pidfd says the wrapper exited: a plain write
        # suffices, and saves the `mv` process (a third of a short job's CPU here).
        wrapper = render(
            "local.sh.j2",
            job,
            files,
            env,
            self.destination.hooks,
            atomic_sidecar=False,
            own_arrays=True,
        )
        stage_in_here(plan(job, files, wrapper))
        log = files.marker("jobgate.log")
        argv = ["/bin/sh", files.marker(WRAPPER)]  # dash on Debian: a third less CPU than bash
        if who is not None:
            hand_over(files.run_dir, who)
            argv = who.argv(argv)
        try:
            return os.posix_spawn(
                argv[0],
                argv,
                env.values,  # the job's own environment from the start, none of ours
                setsid=True,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                ],
            )
        except OSError as exc:
            raise SubmitError(f"cannot start the job: {exc.strerror}") from None

    async def find(self, job: JobRecord) -> Submitted | None:
        pid = _marker(self.files(job).run_dir, "jobgate.pid")  # the wrapper's first act
        if pid is None or not pid.isdigit():
            return None
        return Submitted(str(pid), _HOST, running=True)

    async def attach(self, job: JobRecord) -> None:
        pid = int(job.native_id or 0)
        alive = self._is_wrapper(job, pid)
        if not alive or not self._watch(job, pid, own_child=False):
            outcome = self._outcome(job, None)  # it ended while no gateway watched:
            outcome.ended_at = _written_at(self.files(job).run_dir)  # when its sidecar says
            self.sink.report(job, outcome)
            return
        if job.stop_reason:
            await self.stop(job, job.stop_reason)

    def _is_wrapper(self, job: JobRecord, pid: int) -> bool:
        """Is `pid` still this job's wrapper? Pids are reused: the command line says."""
        if process_start(pid) is None:  # gone, or a zombie
            return False
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return len(argv) > 1 and argv[1] == self.files(job).marker(WRAPPER).encode()

    def _watch(self, job: JobRecord, pid: int, own_child: bool) -> bool:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        loop = asyncio.get_running_loop()
        watch = _Watch(job, pid, fd, own_child)
        self._watches[job.id] = watch
        loop.add_reader(fd, self._exited, job.id)
        walltime = self.resources(job).walltime_s
        if walltime:
            elapsed = time.time() - job.started_at.timestamp() if job.started_at else 0.0
            watch.timer = loop.call_later(max(0.0, walltime - elapsed), self._on_walltime, job.id)
        return True

    def _on_walltime(self, job_id: str) -> None:
        watch = self._watches.get(job_id)
        if watch is not None:
            asyncio.get_running_loop().create_task(self.stop(watch.job, StopReason.TIMEOUT))

    def _exited(self, job_id: str) -> None:
        watch = self._watches.pop(job_id)
        loop = asyncio.get_running_loop()
        loop.remove_reader(watch.fd)
        os.close(watch.fd)
        for handle in (watch.timer, watch.kill_handle):
            if handle is not None:
                handle.cancel()
        status = None
        if watch.own_child:
            try:
                status = os.waitpid(watch.pid, os.WNOHANG)[1]
            except ChildProcessError:
                status = None
        self.sink.report(watch.job, self._outcome(watch.job, status))

    def _outcome(self, job: JobRecord, wait_status: int | None) -> Outcome:
        files = self.files(job)
        code = read_exit_code(files.run_dir)
        stop = self._stop_reasons.pop(job.id, None) or job.stop_reason
        if code is not None:
            return ended(code, stop, reason=_reason_for(code, files.run_dir))
        if wait_status is not None and os.WIFSIGNALED(wait_status):
            sig = signal.Signals(os.WTERMSIG(wait_status)).name
            why = f"killed by {sig} before it recorded an exit code"
            return ended(None, stop, state=JobState.FAILED, reason=why)
        if not Path(files.marker("job.started")).exists():
            why = "the job never started (interrupted submission)"
            return ended(None, stop, state=JobState.FAILED, reason=why)
        return ended(None, stop, reason="the job's process is gone and left no exit code")

    async def stop(self, job: JobRecord, reason: StopReason) -> None:
        watch = self._watches.get(job.id)
        if watch is None or job.id in self._stop_reasons:
            return
        self._stop_reasons[job.id] = reason
        grace = self.destination.cancel_grace_s
        cancel_sh = Path(self.files(job).marker("cancel.sh"))
        if cancel_sh.exists():
            who = run_as_of(self.destination, job)
            argv = ["/bin/bash", str(cancel_sh)]
            proc = await asyncio.create_subprocess_exec(
                *(who.argv(argv) if who else argv),
                cwd=cancel_sh.parent,
                env=self.environment(job).values,  # the job's, never the gateway's
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                async with asyncio.timeout(grace or None):  # not wait_for: see supervisor
                    await proc.wait()
            except TimeoutError:
                proc.kill()
        if job.id in self._watches and self._is_wrapper(job, watch.pid):
            _killpg(watch.pid, signal.SIGTERM)
            watch.kill_handle = asyncio.get_running_loop().call_later(
                grace, _killpg, watch.pid, signal.SIGKILL
            )

    async def read(self, job: JobRecord, path: str, offset: int = 0, limit: int = -1) -> bytes:
        who = run_as_of(self.destination, job)
        root, rel = self.anchored(job, path)
        if who is None or root == self.files(job).run_dir:
            return await super().read(job, path, offset, limit)
        # A path the user named outside the run directory: read with the user's rights.
        return await asyncio.to_thread(read_as, who, posixpath.join(root, rel), offset, limit)

    async def stage_out(self, job: JobRecord) -> list[str]:
        who, files = run_as_of(self.destination, job), self.files(job)
        if who is None or files.own_workdir or files.workdir == files.run_dir:
            return await super().stage_out(job)
        # Outputs in a folder the user named: read as the user, kept in the run directory.
        target = self.local_folder(job)
        return await asyncio.to_thread(collect_as, who, job, files.workdir, target)

    async def close(self) -> None:
        # Stop watching (the jobs run on): a closed gateway must not report their ends,
        # even while its event loop runs on for another gateway (the SDK, a notebook).
        loop = asyncio.get_running_loop()
        for watch in self._watches.values():
            loop.remove_reader(watch.fd)
            os.close(watch.fd)
            for handle in (watch.timer, watch.kill_handle):
                if handle is not None:
                    handle.cancel()
        self._watches.clear()
        self._pool.shutdown(wait=True)
        await super().close()

    def watched(self) -> int:
        return len(self._watches)


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the job leads its own session and process group


def _written_at(run_dir: str) -> float | None:
    """When the wrapper wrote the sidecar (the job's end), if it did."""
    try:
        fd = beneath.open_beneath(run_dir, EXITCODE)
    except (OSError, ValueError):
        return None
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)


def _reason_for(code: int, run_dir: str) -> str | None:
    """For exit code 126 (the working directory or the command): the shell's own words."""
    if code != 126:
        return None
    lines = (_marker(run_dir, "jobgate.log") or "").splitlines()
    return f"exit code 126: {lines[-1] if lines else 'cannot enter the working directory'}"
