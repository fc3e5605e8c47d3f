"""What every backend offers the supervisor, and the run-directory layout they share."""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePosixPath
from typing import Any, Protocol

import jinja2

from jobgate.config import Destination
from jobgate.spec import JobRecord, Resources
from jobgate.states import JobState

EXITCODE = "exitcode"  # the sidecar the wrapper writes atomically when the job ends


@dataclass(frozen=True)
class JobFiles:
    """Paths of one job, on the host where it runs."""

    run_dir: str
    workdir: str
    stdout: str
    stderr: str
    stdin: str | None

    @classmethod
    def of(cls, job: JobRecord, base_dir: str) -> JobFiles:
        run_dir = str(PurePosixPath(base_dir) / job.id)
        spec = job.spec
        workdir = str(PurePosixPath(run_dir) / spec.directory) if spec.directory else run_dir

        def named(path: str | None, default: str) -> str:
            """A file the user named is relative to the workdir; ours live in the run dir."""
            return str(PurePosixPath(workdir) / path) if path else f"{run_dir}/{default}"

        return cls(
            run_dir=run_dir,
            workdir=workdir,
            stdout=named(spec.stdout, "stdout"),
            stderr=named(spec.stderr, "stderr"),
            stdin=named(spec.stdin, "") if spec.stdin else None,
        )

    def marker(self, name: str) -> str:
        return f"{self.run_dir}/{name}"


@dataclass
class Outcome:
    """What a backend learned about one job: RUNNING, or how it ended."""

    state: JobState
    exit_code: int | None = None
    reason: str | None = None
    host: str | None = None
    native_state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Submitted:
    native_id: str
    host: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    running: bool = False  # the job is already running (local), not pending in a queue


class StatusSink(Protocol):
    def report(self, job: JobRecord, outcome: Outcome) -> None: ...

    def note(self, job_id: str, type_: str, message: str) -> None: ...


class Backend(ABC):
    """One destination's way of running jobs. The supervisor owns the states; a backend
    submits, watches (reporting through the sink), stops, and reads files."""

    host_bound = False  # True: jobs can be watched only from the host that started them

    def __init__(self, destination: Destination, sink: StatusSink, base_dir: str) -> None:
        self.destination = destination
        self.sink = sink
        self.base_dir = base_dir

    def files(self, job: JobRecord) -> JobFiles:
        return JobFiles.of(job, self.base_dir)

    def check_resources(self, res: Resources) -> None:
        """Refuse (SpecError) what this destination's scheduler cannot take, before the
        job is stored."""

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
    async def stop(self, job: JobRecord, reason: str) -> None:
        """Cancel or time out a job; the outcome still arrives through the sink."""

    @abstractmethod
    async def stage_out(self, job: JobRecord) -> list[str]:
        """Collect output files; returns the paths that were missing."""

    @abstractmethod
    async def read(self, job: JobRecord, path: str, offset: int = 0, limit: int = -1) -> bytes:
        """Bytes of a file of the job (absolute, or relative to its run directory)."""

    async def close(self) -> None:
        """Stop background work; running jobs keep running."""


def effective_resources(resources: Resources, destination: Destination) -> Resources:
    """A job's resources with the destination's defaults filled in."""
    defaults = destination.defaults.model_dump(exclude_unset=True)
    if not defaults:
        return resources
    return Resources.model_validate(defaults | resources.model_dump(exclude_unset=True))


def user_command(job: JobRecord, files: JobFiles) -> str:
    """The shell command that runs the user's script or executable."""
    spec = job.spec
    if spec.script is None:
        argv = [spec.executable or ""]
    else:
        # The script's interpreter, run as the kernel would run it (interpreter, its one
        # optional argument, the script): executing a file that was just written can fail
        # with ETXTBSY while another thread's forked child still holds it open for writing.
        text = script_text(job) or ""
        interpreter, _, arg = text.splitlines()[0][2:].strip().partition(" ")
        argv = [interpreter, *([arg.strip()] if arg.strip() else []), files.marker("script.sh")]
    return " ".join(shlex.quote(a) for a in [*argv, *spec.arguments])


def script_text(job: JobRecord) -> str | None:
    spec = job.spec
    if spec.script is None:
        return None
    body = spec.script if spec.script.startswith("#!") else f"{spec.shebang}\n{spec.script}"
    return body if body.endswith("\n") else body + "\n"


@cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("jobgate.backends", "templates"),
        auto_reload=False,  # package data: no stat of the source on every render
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - shell, not HTML: every value goes through |q
    )
    env.filters["q"] = lambda v: shlex.quote(str(v))
    return env


def render(template: str, job: JobRecord, files: JobFiles, **extra: Any) -> str:
    """Render a job script: `|q` shell-quotes every value that comes from the user."""
    extra.setdefault("atomic_sidecar", True)  # rename into place: readers may look any time
    return (
        _templates()
        .get_template(template)
        .render(
            job=job,
            spec=job.spec,
            files=files,
            command=user_command(job, files),
            environment=sorted(job.spec.environment.items()),
            exitcode=files.marker(EXITCODE),
            **extra,
        )
    )
