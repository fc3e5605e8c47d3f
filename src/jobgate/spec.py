"""The job model: what to run (JobSpec), with what (Resources), and what happened (JobRecord).

Values are parsed from what people type ("1:30:00", "32G") and kept with their
unit in the field name (`walltime_s`, `memory_mb`).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from jobgate.errors import spec_error
from jobgate.policies import Dependencies, Retry
from jobgate.states import JobState, StopReason
from jobgate.units import (
    MAX_COUNT,
    MAX_MEMORY_MB,
    MAX_WALLTIME_S,
    parse_memory,
    parse_walltime,
)

_NAME_RE = re.compile(r"^[A-Za-z0-9_.+:@-]+$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ARRAY_RE = re.compile(r"^\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _safe_text(value: str, what: str = "value") -> str:
    if _CONTROL_RE.search(value):
        raise ValueError(f"{what} must not contain newlines or control characters")
    return value


def _relative_path(value: str) -> str:
    path = PurePosixPath(_safe_text(value, "path"))
    if not value or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{value!r} must be a relative path inside the run directory")
    return str(path)


RelativePath = Annotated[str, AfterValidator(_relative_path)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Resources(_Model):
    """What a job asks of its scheduler. Text is accepted for times and sizes:
    `walltime`/`time` ("1:30:00", "90m", "1h30m", "2-00:00:00") and `memory`/`mem`
    ("512M", "32G"); `queue` for `partition`, `cpus` for `cpus_per_task`."""

    nodes: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="Nodes (sbatch -N)", examples=[2]
    )
    tasks: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="Tasks (sbatch -n)", examples=[8]
    )
    cpus_per_task: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="CPUs per task (sbatch -c)", examples=[4]
    )
    memory_mb: int | None = Field(
        default=None,
        ge=1,
        le=MAX_MEMORY_MB,
        description='Memory per node in MB (or `memory`: "32G")',
        examples=[4096],
    )
    gpus: int | None = Field(
        default=None, ge=0, le=MAX_COUNT, description="GPUs per node", examples=[1]
    )
    walltime_s: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WALLTIME_S,
        description='Time limit in seconds (or `walltime`: "1:30:00"); a destination\'s '
        "`max_walltime_s` is given to jobs without one",
        examples=[3600],
    )
    partition: str | None = Field(
        default=None, description="Partition (Slurm) or queue (PBS)", examples=["debug"]
    )
    account: str | None = Field(default=None, description="Account to charge", examples=["proj1"])
    qos: str | None = Field(default=None, description="Quality of service (Slurm)")
    constraint: str | None = Field(
        default=None, description="Node features (sbatch -C)", examples=["avx512"]
    )
    reservation: str | None = Field(default=None, description="A reservation to run in")
    array: str | None = Field(
        default=None,
        description="An array of tasks: indices, ranges, a step, at most N at once",
        examples=["0-99%10"],
    )
    exclusive: bool = Field(default=False, description="Whole nodes, shared with no other job")
    directives: list[str] = Field(
        default_factory=list,
        description="Raw scheduler options (an allow-list: nothing jobgate sets itself)",
        examples=[["--mail-type=END"]],
    )

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        """Accept what people type: walltime/time, memory/mem, queue, cpus."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for alias, field, parse in (
            ("walltime", "walltime_s", parse_walltime),
            ("time", "walltime_s", parse_walltime),
            ("memory", "memory_mb", parse_memory),
            ("mem", "memory_mb", parse_memory),
        ):
            if alias in data:
                raw = data.pop(alias)
                if raw is not None:
                    try:
                        data[field] = parse(raw)
                    except ValueError as exc:
                        raise ValueError(f"{alias}: {exc}") from None
        if "queue" in data:
            data.setdefault("partition", data.pop("queue"))
        if "cpus" in data:
            data.setdefault("cpus_per_task", data.pop("cpus"))
        return data

    @field_validator("partition", "account", "qos", "reservation")
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        if v is not None and not _NAME_RE.match(v):
            raise ValueError(f"{v!r} is not a valid name (letters, digits, _ . + : @ -)")
        return v

    @field_validator("constraint")
    @classmethod
    def _constraint(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_.,&|*\[\]()!:-]+", v):
            raise ValueError(f"{v!r} is not a valid constraint expression")
        return v

    @field_validator("array")
    @classmethod
    def _array(cls, v: str | None) -> str | None:
        if v is not None and not _ARRAY_RE.match(v.replace(" ", "")):
            raise ValueError(f"{v!r} is not an array spec (e.g. '0-99%10' or '1,3,5')")
        return v.replace(" ", "") if v else v

    @field_validator("directives")
    @classmethod
    def _directives(cls, v: list[str]) -> list[str]:
        return [_safe_text(d, "a directive") for d in v]

    @property
    def queue(self) -> str | None:
        return self.partition


class FileStage(_Model):
    """A file copied into the run directory before the job (source on the gateway's host;
    through the API, a part of a multipart/form-data submission)."""

    source: str = Field(description="The file, on the gateway's host")
    target: str | None = Field(
        default=None,
        description="Where it goes, relative to the run directory (default: its name)",
        examples=["inputs/data.csv"],
    )

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        return None if v is None else _relative_path(v)

    @property
    def target_path(self) -> str:
        return self.target or PurePosixPath(self.source).name


class JobSpec(_Model):
    """What to run, where, and with what. Give exactly one of `script` or `executable`.
    Paths are relative to the job's run directory (API users: absolute paths only beneath
    a destination's work roots)."""

    name: str | None = Field(
        default=None, max_length=200, description="A name to find it by", examples=["sum"]
    )
    script: str | None = Field(
        default=None,
        description="A script to run (its own #! line, or `shebang`)",
        examples=["echo hello; sleep 1"],
    )
    executable: str | None = Field(
        default=None, description="A program to run with `arguments`", examples=["/bin/echo"]
    )
    arguments: list[str] = Field(
        default_factory=list, description="Arguments, each passed as is", examples=[["hi"]]
    )
    shebang: str = Field(
        default="#!/bin/bash", description="The interpreter of a script without a #! line"
    )
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="Variables set for the job (a destination may restrict the names)",
        examples=[{"OMP_NUM_THREADS": "4"}],
    )
    directory: str | None = Field(
        default=None,
        description="Working directory (default: the run directory)",
        examples=["work"],
    )
    stdin: str | None = Field(default=None, description="A file to read as standard input")
    stdout: str | None = Field(
        default=None, description="Standard output's file (default: `stdout`)", examples=["out.txt"]
    )
    stderr: str | None = Field(
        default=None, description="Standard error's file (default: `stderr`)"
    )
    input_files: list[FileStage] = Field(
        default_factory=list, description="Files copied in before the job starts"
    )
    output_files: list[RelativePath] = Field(
        default_factory=list,
        description="Files collected after it ends (a missing one fails the job)",
        examples=[["result.txt"]],
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels to filter by", examples=[{"project": "x"}]
    )
    destination: str | None = Field(
        default=None, description="Where to run it (default: the gateway's default)"
    )
    resources: Resources = Field(default_factory=Resources, description="What it asks for")
    idempotency_key: str | None = Field(
        default=None,
        max_length=200,
        description="Submitting again with this key gives the same job (or a 409 if the "
        "spec differs); the Idempotency-Key header does the same",
    )
    job_type: str | None = Field(
        default=None,
        max_length=200,
        description="A job type that builds the job directory from `job_params`, instead "
        "of a script: docs/job-types.md",
        examples=["echo"],
    )
    job_params: dict[str, Any] = Field(
        default_factory=dict,
        description="The job type's parameters",
        examples=[{"message": "hello"}],
    )
    key: str | None = Field(
        default=None,
        max_length=200,
        description="The job's own name for itself, unique per owner: the same key again "
        "gives the same job, with other params a 409",
        examples=["sweep-7"],
    )
    depends_on: Dependencies | None = Field(
        default=None, description="Jobs this one waits for, as sbatch's --dependency"
    )
    retry: Retry | None = Field(default=None, description="Run it again after such ends")
    callback_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="Called (signed POST) at each change of its state: docs/callbacks.md",
        examples=["https://example.org/hooks/jobs"],
    )

    @field_validator(
        "name",
        "directory",
        "stdin",
        "stdout",
        "stderr",
        "executable",
        "callback_url",
        "idempotency_key",
        "job_type",
        "key",
    )
    @classmethod
    def _no_control(cls, v: str | None) -> str | None:
        return None if v is None else _safe_text(v)

    @field_validator("shebang")
    @classmethod
    def _shebang(cls, v: str) -> str:
        if not v.startswith("#!") or "\n" in v:
            raise ValueError("must be one line starting with '#!'")
        return v

    @field_validator("environment")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not _ENV_RE.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
            if "\x00" in value:
                raise ValueError(f"{key}: value contains a NUL byte")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not _NAME_RE.match(key) or _CONTROL_RE.search(value):
                raise ValueError(f"label {key!r}: keys are plain names, values one line")
        return v

    @model_validator(mode="after")
    def _what_to_run(self) -> JobSpec:
        if self.script is not None and self.executable is not None:
            raise ValueError("give exactly one of 'script' or 'executable'")
        if self.job_type is None:
            if self.script is None and self.executable is None:
                raise ValueError("give exactly one of 'script', 'executable' or 'job_type'")
            if self.job_params:
                raise ValueError("job_params go with a job_type")
        if self.key is not None and self.idempotency_key is None:  # one key, one job
            self.idempotency_key = self.key
        return self

    @property
    def built(self) -> bool:
        """A job type's spec after its builder ran (script and files filled in)."""
        return self.job_type is not None and self.script is not None

    def as_request(self) -> JobSpec:
        """What was asked, without what a job type's builder added: two submissions with
        one key are the same job when these are equal."""
        if not self.built:
            return self
        return self.model_copy(update={"script": None, "input_files": []})

    @classmethod
    def parse(cls, data: Any) -> JobSpec:
        """Validate, turning pydantic's errors into one SpecError naming the field."""
        try:
            return data if isinstance(data, cls) else cls.model_validate(data)
        except ValidationError as exc:
            raise spec_error(exc) from None


class JobRecord(BaseModel):
    """A job as stored: its spec plus everything the gateway learned about it."""

    id: str
    name: str | None
    owner: str
    destination: str
    state: JobState
    native_id: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    reason_code: str | None = None  # states.ReasonCode: why it ended, for programs
    native_state: str | None = None  # the scheduler's last word on it (OUT_OF_MEMORY, ...)
    pending_reason: str | None = None  # why the scheduler keeps it waiting (BeginTime, ...)
    attempt: int = 1  # retried: the attempt it is on
    host: str | None = None
    run_dir: str | None = None  # absolute, as the destination sees it; None until known
    labels: dict[str, str] = Field(default_factory=dict)
    spec: JobSpec
    resources: Resources | None = None  # effective: the spec's with the destination's defaults
    stop_reason: StopReason | None = None  # once the gateway decided to stop the job
    backend_data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    queued_at: datetime | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobEvent(BaseModel):
    seq: int
    job_id: str
    time: datetime
    type: str
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
