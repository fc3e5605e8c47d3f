"""NLeSC joblauncher (later Osmium) on jobgate: the same JSON, states and status codes.

    POST   /job        JobSubmitRequest -> 201, empty body, `Location: .../job/{id}`
    GET    /job        the caller's joblauncher jobs, as a JSON array of their URLs
    GET    /job/{id}   {"request": <the submit request>, "status": <JobStatusResponse>}
    DELETE /job/{id}   cancel -> 204

joblauncher ran the job in a sandbox and copied `prestaged` files in from `jobdir` and
`stdout`, `stderr` and `poststaged` back to it. jobgate runs the job in `jobdir` itself
(on the gateway's host, or a cluster sharing its filesystem), so its files are there as
they are made, and outputs land where the client looks for them. `jobdir` must lie under
a directory the operator allows ($JOBGATE_COMPAT_JOBDIRS, `{user}` expands to the user;
default `<home>/jobdirs/{user}`); the gateway refuses anything else rather than read or
write where a request points.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobgate.api.bodies import check_text
from jobgate.api.compat import COMPAT_LABEL
from jobgate.api.deps import Ctx, CurrentUser, OwnedJob
from jobgate.config import Config
from jobgate.errors import SpecError
from jobgate.service import Area
from jobgate.spec import JobRecord
from jobgate.states import JobState
from jobgate.views import Announcement, Delivery

router = APIRouter(tags=["compat: joblauncher"])
NAME = "joblauncher"
JOBDIRS_ENV = "JOBGATE_COMPAT_JOBDIRS"
_JOBDIR_LABEL = "joblauncher.jobdir"  # as the client wrote it, when that is not its real path
_PRESTAGED_LABEL = "joblauncher.prestaged."  # + index: labels keep the request's echo exact
_MAX_PATH = 500  # a label value's limit in the store
_FIELDS = {  # JobSpec field -> the request's
    "directory": "jobdir",
    "output_files": "poststaged",
    "callback_url": "status_callback_url",
    "destination": "launcher",
    "resources": "max_time",
}

# Xenon's local adaptor (which joblauncher's README shows) says PENDING, RUNNING, DONE,
# KILLED or ERROR. A process that exited, with any code, is DONE with that exitCode.
_PENDING = frozenset({JobState.NEW, JobState.QUEUED, JobState.STAGING_IN, JobState.SUBMITTED})
_RUNNING = frozenset({JobState.RUNNING, JobState.STAGING_OUT})
_KILLED = {
    JobState.CANCELLED: "Process cancelled by user.",
    JobState.TIMEOUT: "Process timed out.",
}


class JobSubmitRequest(BaseModel):
    """joblauncher's request; `launcher` and `max_time` (minutes) came with Osmium."""

    model_config = ConfigDict(extra="forbid")

    jobdir: str = Field(
        min_length=1,
        max_length=_MAX_PATH,
        description="An absolute path, under the user's jobdir roots",
        json_schema_extra={"pattern": "^/"},  # checked in the route, for a clearer error
    )
    executable: str = Field(min_length=1)
    stderr: str | None = "stderr.txt"
    stdout: str | None = "stdout.txt"
    arguments: list[str] | None = None
    prestaged: list[str] | None = None
    poststaged: list[str] | None = None
    status_callback_url: str | None = None
    launcher: str | None = Field(default=None, description="A jobgate destination")
    max_time: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Walltime in minutes"
    )

    @model_validator(mode="before")
    @classmethod
    def _text(cls, data: Any) -> Any:
        check_text(data)  # NUL or a lone surrogate: 422 naming the member, nothing run
        return data


class JobRequestEcho(BaseModel):
    """The request, as GET /job/{id} shows it (a job from another door may lack fields)."""

    jobdir: str | None
    executable: str | None
    stderr: str | None
    stdout: str | None
    arguments: list[str]
    prestaged: list[str]
    poststaged: list[str]
    status_callback_url: str | None
    launcher: str | None
    max_time: int | None


class JobStatusResponse(BaseModel):
    state: str
    exitCode: int | None
    exception: str | None
    running: bool
    done: bool
    schedulerSpecficInformation: dict[str, str] | None  # sic: joblauncher's spelling


class SandboxedJob(BaseModel):
    request: JobRequestEcho
    status: JobStatusResponse


# -- routes ----------------------------------------------------------------------------------


@router.post(
    "/job",
    status_code=201,
    response_class=Response,
    responses={201: {"description": "Submitted; `Location` is the job's URL (no body)"}},
)
async def submit_job(
    body: JobSubmitRequest, request: Request, user: CurrentUser, ctx: Ctx
) -> Response:
    spec = to_spec(body, ctx.service.config, user.name)
    jobdirs = tuple(str(r) for r in jobdir_roots(ctx.service.config, user.name))
    try:
        record = await ctx.service.submit(spec, user.name, Area(jobdirs))
    except SpecError as exc:  # name the field as the client wrote it
        head, _, rest = exc.field.partition(".")
        if head not in _FIELDS:
            raise
        raise SpecError(
            _FIELDS[head] + (f".{rest}" if rest and head != "resources" else ""), exc.message
        ) from None
    location = str(request.url_for("joblauncher_job", job_id=record.id))
    return Response(status_code=201, headers={"Location": location}, media_type="application/json")


@router.get("/job", response_model=list[str])
async def list_jobs(request: Request, user: CurrentUser, ctx: Ctx) -> list[str]:
    records = await ctx.service.list(
        label={COMPAT_LABEL: NAME}, owner=None if user.admin else user.name, limit=1000
    )
    return [str(request.url_for("joblauncher_job", job_id=r.id)) for r in records]


@router.get("/job/{job_id}", name="joblauncher_job", response_model=SandboxedJob)
async def get_job(job: OwnedJob) -> SandboxedJob:
    return SandboxedJob(request=request_of(job), status=JobStatusResponse(**status_of(job)))


@router.delete("/job/{job_id}", status_code=204, response_class=Response)
async def cancel_job(job: OwnedJob, ctx: Ctx) -> Response:
    await ctx.service.cancel(job.id)
    return Response(status_code=204)


# -- translation -----------------------------------------------------------------------------


def to_spec(body: JobSubmitRequest, config: Config, user: str) -> dict[str, Any]:
    """The JobSpec for a joblauncher request, or a SpecError naming the request's field."""
    try:
        dest = config.destination(body.launcher)
    except SpecError as exc:
        raise SpecError("launcher", exc.message) from None
    if dest.transport != "local":
        raise SpecError(
            "launcher",
            f"destination {dest.name!r} runs jobs on another host; joblauncher jobs run in "
            "their jobdir, so they need a destination that shares this host's files",
        )
    jobdir = _jobdir(body.jobdir, config, user)
    for i, arg in enumerate(body.arguments or []):
        if "\x00" in arg:
            raise SpecError(f"arguments.{i}", "must not contain a NUL byte")
    if body.status_callback_url is not None and not body.status_callback_url.isprintable():
        raise SpecError("status_callback_url", "must be one printable line")
    prestaged = body.prestaged or []
    for i, entry in enumerate(prestaged):
        _check_prestaged(f"prestaged.{i}", entry, jobdir)
    poststaged = body.poststaged or []
    for i, entry in enumerate(poststaged):
        _inside_jobdir(f"poststaged.{i}", entry)
    stdout = _inside_jobdir("stdout", body.stdout or "stdout.txt")
    stderr = _inside_jobdir("stderr", body.stderr or "stderr.txt")
    labels = {COMPAT_LABEL: NAME}
    labels |= {f"{_PRESTAGED_LABEL}{i}": entry for i, entry in enumerate(prestaged)}
    if body.jobdir != str(jobdir):
        labels[_JOBDIR_LABEL] = body.jobdir
    spec: dict[str, Any] = {
        "executable": body.executable,
        "arguments": body.arguments or [],
        "directory": str(jobdir),
        "stdout": stdout,
        "stderr": stderr,
        "output_files": poststaged,
        "callback_url": body.status_callback_url,
        "destination": body.launcher,
        "labels": labels,
    }
    if body.max_time is not None:
        spec["resources"] = {"walltime_s": body.max_time * 60}
    return spec


def jobdir_roots(config: Config, user: str) -> list[Path]:
    """Where this user's jobdirs may be: $JOBGATE_COMPAT_JOBDIRS (os.pathsep-separated,
    `{user}` expanded), or `<home>/jobdirs/{user}`."""
    if user in {"", ".", ".."} or "/" in user:  # would not expand to a directory of its own
        return []
    raw = os.environ.get(JOBDIRS_ENV) or str(config.home / "jobdirs" / "{user}")
    return [Path(r.replace("{user}", user)).resolve() for r in raw.split(os.pathsep) if r]


def _jobdir(given: str, config: Config, user: str) -> Path:
    if not given.isprintable() or not os.path.isabs(given):
        raise SpecError("jobdir", "must be an absolute path on the gateway's host")
    real = Path(given).resolve()
    roots = jobdir_roots(config, user)
    if not any(real.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "none"
        raise SpecError("jobdir", f"{given!r} is not under a jobdir root for you ({allowed})")
    if not _is(real, Path.is_dir):
        raise SpecError("jobdir", f"{given!r} is not a directory")
    return real


def _is(path: Path, test: Callable[[Path], bool]) -> bool:
    try:
        return test(path)
    except OSError:  # a name too long, a permission: not a usable file either way
        return False


def _check_prestaged(field: str, entry: str, jobdir: Path) -> None:
    """The job runs in jobdir, where the file must already be: joblauncher copied each one
    (by its name, flat) into the sandbox, so only files at the top of jobdir keep that
    meaning."""
    if len(entry) > _MAX_PATH or not entry.isprintable():
        raise SpecError(field, f"must be one line of at most {_MAX_PATH} characters")
    real = (Path(entry) if os.path.isabs(entry) else jobdir / entry).resolve()
    if real.parent != jobdir or not _is(real, Path.is_file):
        raise SpecError(
            field, f"{entry!r} is not a file in jobdir (the job runs in jobdir: put it there)"
        )


def _inside_jobdir(field: str, entry: str) -> str:
    path = PurePosixPath(entry)
    if not entry or path.is_absolute() or ".." in path.parts:
        raise SpecError(field, f"{entry!r} must be a path inside jobdir")
    return entry


def request_of(job: JobRecord) -> JobRequestEcho:
    """The request a job was submitted with (for other jobs, what the spec says)."""
    spec, labels = job.spec, job.labels
    indexed = [
        (int(n), v)
        for k, v in labels.items()
        if k.startswith(_PRESTAGED_LABEL) and (n := k.removeprefix(_PRESTAGED_LABEL)).isdecimal()
    ]
    prestaged = [v for _, v in sorted(indexed)]
    walltime = spec.resources.walltime_s
    return JobRequestEcho(
        jobdir=labels.get(_JOBDIR_LABEL, spec.directory),
        executable=spec.executable,
        stderr=spec.stderr,
        stdout=spec.stdout,
        arguments=spec.arguments,
        prestaged=prestaged,
        poststaged=spec.output_files,
        status_callback_url=spec.callback_url,
        launcher=spec.destination,
        max_time=walltime // 60 if walltime else None,
    )


def status_of(job: JobRecord) -> dict[str, Any]:
    """joblauncher's JobStatusResponse for a job: the GET's `status`, and the body a
    joblauncher client expects PUT to its status_callback_url."""
    state, exit_code, exception = "ERROR", None, None
    if job.state in _PENDING:
        state = "PENDING"
    elif job.state in _RUNNING:
        state = "RUNNING"
    elif job.state == JobState.COMPLETED:
        state, exit_code = "DONE", job.exit_code if job.exit_code is not None else 0
    elif job.state in _KILLED:
        state, exception = "KILLED", _KILLED[job.state]
    elif job.state == JobState.FAILED and job.exit_code not in (None, 0):
        state, exit_code = "DONE", job.exit_code  # the program's own failure
    else:  # FAILED for other reasons (submit, stage-out), LOST, REJECTED
        exception = job.reason or f"job {job.state.value.lower()}"
    info = {"jobgate_state": job.state.value}
    if job.native_id:
        info["native_id"] = job.native_id
    return {
        "state": state,
        "exitCode": exit_code,
        "exception": exception,
        "running": state == "RUNNING",
        "done": job.state.final,
        "schedulerSpecficInformation": info,
    }


def callback_format(a: Announcement) -> Delivery | None:
    """joblauncher's callback: its JobStatusResponse PUT to status_callback_url, once per
    change of *its* state (QUEUED, STAGING_IN and SUBMITTED are all PENDING to it)."""
    status = _status_at(a.job, a.event.type)
    if (
        a.previous_state is not None
        and _status_at(a.job, a.previous_state)["state"] == (status["state"])
    ):
        return None
    return Delivery("PUT", json.dumps(status, separators=(",", ":")).encode())


def _status_at(job: JobRecord, state: str) -> dict[str, Any]:
    """The status as of a change to `state` (exit code and reason once final)."""
    at = JobState(state)
    return status_of(job if at.final else job.model_copy(update={"state": at, "exit_code": None}))
