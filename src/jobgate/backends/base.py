"""What every backend offers the supervisor, and the run-directory layout they share.

A backend is a scheduler over a transport: it submits, watches (reporting through the
sink), stops and reads files. The states are the supervisor's; how a job ended is said
by `outcome.ended`; what goes into and out of a run directory by `staging`.
"""

from __future__ import annotations

import asyncio
import posixpath
import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

from jobgate.backends.array_spec import check_array
from jobgate.backends.environment import JobEnvironment, job_environment
from jobgate.backends.layout import EXITCODE, WRAPPER, JobFiles
from jobgate.backends.outcome import Outcome
from jobgate.backends.staging import stage_out
from jobgate.config import Destination
from jobgate.errors import SchedulerUnavailable
from jobgate.histogram import Histogram
from jobgate.spec import JobRecord, Resources
from jobgate.states import StopReason
from jobgate.transports.base import Transport
from jobgate.views import FileReader

# In a job's backend_data once a submission failed transiently: the next try looks for the
# job before it submits again (the first try may have reached the scheduler after all).
SUBMIT_TRIED = "submit_tried"


@dataclass
class Submitted:
    native_id: str
    host: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    running: bool = False  # the job is already running (local), not pending in a queue


class StatusSink(Protocol):
    def report(self, job: JobRecord | str, outcome: Outcome) -> None:
        """How a job moved: its record, or only its id (a backend watching many jobs keeps
        no records; the supervisor reads one when the job's end needs it)."""

    def note(
        self, job_id: str, type_: str, message: str, data: dict[str, Any] | None = None
    ) -> None: ...


class Backend(ABC):
    """One destination's way of running jobs. `base_dir` holds the run directories, as the
    destination's host sees it (relative: under the remote home, resolved on first use);
    `local_dir` is where, on the gateway's host, outputs are collected."""

    host_bound = False  # True: jobs can be watched only from the host that started them

    def __init__(
        self,
        destination: Destination,
        sink: StatusSink,
        base_dir: str,
        transport: Transport,
        local_dir: str | None = None,
    ) -> None:
        self.destination = destination
        self.sink = sink
        self.base_dir = base_dir
        self.transport = transport
        self.local_dir = local_dir or base_dir
        self._base_lock = asyncio.Lock()

    # -- the run directory -------------------------------------------------------------

    @property
    def known_base(self) -> str | None:
        """The base directory, if it is known to be absolute yet."""
        return self.base_dir if posixpath.isabs(self.base_dir) else None

    def run_dir_of(self, job_id: str) -> str | None:
        """A new job's run directory, or None while the base is not yet resolved."""
        base = self.known_base
        return None if base is None else posixpath.join(base, job_id)

    async def resolve_base(self) -> str:
        """The base directory, absolute: a relative one is joined to the home directory the
        transport's sessions start in (asked once). Wrappers `cd` before writing markers."""
        async with self._base_lock:  # a burst of jobs asks once
            if not posixpath.isabs(self.base_dir):
                result = await self.transport.run(["pwd"])
                home = result.stdout.strip()
                if result.returncode != 0 or not posixpath.isabs(home):
                    raise SchedulerUnavailable(
                        f"{self.destination.name}: cannot find the home directory to run jobs in"
                    )
                self.base_dir = posixpath.join(home, self.base_dir)
        return self.base_dir

    async def placed(self, job: JobRecord) -> JobRecord:
        """The job with its run directory (named now if its base was not known before)."""
        if job.run_dir is not None:
            return job
        return job.model_copy(update={"run_dir": posixpath.join(await self.resolve_base(), job.id)})

    def files(self, job: JobRecord) -> JobFiles:
        run_dir = job.run_dir or self.run_dir_of(job.id)
        if run_dir is None:
            raise SchedulerUnavailable(f"job {job.id} has no run directory yet")
        return JobFiles.of(job, run_dir)

    def local_folder(self, job: JobRecord) -> str:
        """The job's folder on the gateway's host (its run directory, for local jobs):
        stage-out puts the job's output files in its `outputs/`."""
        return posixpath.join(self.local_dir, job.id)

    def resources(self, job: JobRecord) -> Resources:
        return job.resources or self.destination.effective(job.spec.resources)

    def environment(self, job: JobRecord) -> JobEnvironment:
        """The job's environment: the same policy for every backend (environment.py)."""
        return job_environment(job, self.destination, self.files(job).run_dir)

    # -- what the supervisor calls -------------------------------------------------------

    honoured: frozenset[str] | None = None  # resources it acts on; None: all of them

    def ignored(self, asked: Resources) -> list[str]:
        """The resources a job asked for that this destination does not act on."""
        if self.honoured is None:
            return []
        given = asked.model_dump(exclude_defaults=True)
        return sorted(name for name in given if name not in self.honoured)

    def check_resources(self, res: Resources) -> None:
        """Refuse (SpecError) what this destination's scheduler cannot take, before the
        job is stored (here: an array spec with no task, or too many)."""
        check_array(res)

    def poll_latency(self) -> Histogram | None:
        """How long its status rounds take (None: a backend that does not poll)."""
        return None

    async def start(self) -> None:
        """Start any background work (a polling loop)."""

    @abstractmethod
    async def submit(self, job: JobRecord) -> Submitted:
        """Build the run directory, stage inputs in, and hand the job over."""

    @abstractmethod
    async def find(self, job: JobRecord) -> Submitted | None:
        """After a restart, for a job caught between admission and its native id being
        recorded: was it handed over? None means never, so it may be submitted again."""

    @abstractmethod
    async def attach(self, job: JobRecord) -> None:
        """Watch a job (with a native id) submitted by an earlier process."""

    @abstractmethod
    async def stop(self, job: JobRecord, reason: StopReason) -> None:
        """Cancel or time out a job; the outcome still arrives through the sink."""

    async def stage_out(self, job: JobRecord) -> list[str]:
        """Collect the job's output files onto the gateway's host; the missing ones."""
        return await stage_out(self.transport, job, self.files(job), self.local_folder(job))

    def anchored(self, job: JobRecord, path: str) -> tuple[str, str]:
        """`path` as (a directory the gateway trusts, the rest): JobFiles.anchor."""
        return self.files(job).anchor(path)

    async def read(self, job: JobRecord, path: str, offset: int = 0, limit: int = -1) -> bytes:
        """Bytes of a file of the job (absolute, or relative to its run directory), opened
        beneath its directory: no link followed, no FIFO waited on."""
        root, rel = self.anchored(job, path)
        return await self.transport.read_beneath(root, rel, offset, limit)

    async def open_file(self, job: JobRecord, rel: str) -> FileReader:
        """A file of the run directory, open for reading (for downloads)."""
        return await self.transport.open_beneath(self.files(job).run_dir, rel)

    async def list_files(self, job: JobRecord) -> list[str]:
        """The regular files under the job's run directory, relative to it."""
        try:
            return await self.transport.list_files(self.files(job).run_dir)
        except FileNotFoundError:
            return []

    async def remove_run_dirs(self, names: list[str]) -> None:
        """Retention, on a remote host: these run directories (names in the base: a job's
        id, or `<id>~N` for an attempt), by one command a chunk. `rm -rf` of a name
        removes a link itself, never what it points to, nor the links inside."""
        base = await self.resolve_base()
        for i in range(0, len(names), 500):
            quoted = " ".join(shlex.quote(name) for name in names[i : i + 500])
            script = f"cd -- {shlex.quote(base)} 2>/dev/null || exit 0; rm -rf -- {quoted}"
            result = await self.transport.run(["/bin/sh", "-c", script], timeout=120.0)
            if result.returncode:
                raise SchedulerUnavailable(f"cannot remove run directories: {result.stderr}")

    async def close(self) -> None:
        """Stop background work; running jobs keep running."""
        await self.transport.close()


__all__ = ["EXITCODE", "SUBMIT_TRIED", "WRAPPER", "Backend", "JobFiles", "StatusSink", "Submitted"]
