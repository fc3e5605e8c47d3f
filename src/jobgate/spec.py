"""The job model: what to run (JobSpec), with what (Resources), and what happened (JobRecord).

Values are parsed from what people type ("1:30:00", "32G") and kept with their
unit in the field name (`walltime_s`, `memory_mb`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
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

from jobgate.errors import SpecError
from jobgate.states import JobState, StopReason

_NAME_RE = re.compile(r"^[A-Za-z0-9_.+:@-]+$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ARRAY_RE = re.compile(r"^\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_UNITS_MB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
# Bounds on what a job may ask for: far past any real machine, well within every
# integer column and scheduler option (1e400 or a 400-digit number is bad input).
MAX_WALLTIME_S = 10 * 366 * 86400
MAX_MEMORY_MB = 1 << 40
MAX_COUNT = 10_000_000


def parse_walltime(value: str | int | float) -> int:
    """Seconds from Slurm-style text: "90" (minutes), "MM:SS", "H:MM:SS", "D-HH[:MM[:SS]]",
    or with units: "90s", "30m", "2h", "1d", "1h30m", "1d2h". Numbers given as int are
    seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > MAX_WALLTIME_S:
            raise ValueError(f"must be at most {MAX_WALLTIME_S} seconds")
        seconds = int(value)
    else:
        text = value.strip().lower()
        if len(text) > 40:  # no duration needs more; int() of thousands of digits is slow
            raise ValueError(f"cannot parse {value[:40]!r}... as a duration")
        units = re.fullmatch(r"(?:(\d+(?:\.\d+)?)\s*[smhd]\s*)+", text)
        if units:  # "90s", "30m", "1h30m", "1d2h"
            factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}
            parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text)
            seconds = int(sum(float(n) * factor[u] for n, u in parts))
        else:
            seconds = _parse_clock(text)
    if seconds <= 0:
        raise ValueError("must be positive")
    if seconds > MAX_WALLTIME_S:
        raise ValueError(f"must be at most {MAX_WALLTIME_S // 86400} days")
    return seconds


def _parse_clock(text: str) -> int:
    days = 0
    if "-" in text:
        day_part, text = text.split("-", 1)
        if not day_part.isdigit():
            raise ValueError(f"cannot parse {text!r} as a duration")
        days = int(day_part)
    parts = text.split(":")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(
            f"cannot parse {text!r} as a duration (try '90', '1:30:00', '2-00:00:00' or '1h30m')"
        )
    nums = [int(p) for p in parts]
    if days:  # D-HH, D-HH:MM, D-HH:MM:SS
        nums += [0] * (3 - len(nums))
        h, m, s = nums
    elif len(nums) == 1:  # minutes, as sbatch reads it
        h, m, s = 0, nums[0], 0
    elif len(nums) == 2:  # MM:SS
        h, m, s = 0, nums[0], nums[1]
    else:
        h, m, s = nums
    return days * 86400 + h * 3600 + m * 60 + s


def parse_memory(value: str | int | float) -> int:
    """Megabytes from "512M", "32G", "1.5T", "100mb"; a bare number is megabytes."""
    if isinstance(value, bool):
        raise ValueError("must be a size, not a boolean")
    if isinstance(value, int | float):
        mb = float(value)
    else:
        if len(value) > 40:
            raise ValueError(f"cannot parse {value[:40]!r}... as a size")
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?", value.strip().lower())
        if not m:
            raise ValueError(f"cannot parse {value!r} as a size (try '512M' or '32G')")
        mb = float(m.group(1)) * _UNITS_MB[(m.group(2) or "m").upper()]
    if not math.isfinite(mb) or mb > MAX_MEMORY_MB:
        raise ValueError(f"must be at most {MAX_MEMORY_MB} MB")
    if mb <= 0:
        raise ValueError("must be positive")
    return max(1, round(mb))


def format_walltime(seconds: int) -> str:
    """HH:MM:SS with hours unbounded: what both sbatch and qsub accept."""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


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
    nodes: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    tasks: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    cpus_per_task: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    memory_mb: int | None = Field(default=None, ge=1, le=MAX_MEMORY_MB)
    gpus: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    walltime_s: int | None = Field(default=None, ge=1, le=MAX_WALLTIME_S)
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    reservation: str | None = None
    array: str | None = None
    exclusive: bool = False
    directives: list[str] = Field(default_factory=list)

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
    """A file copied into the run directory before the job (source on the gateway's host)."""

    source: str
    target: str | None = None

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        return None if v is None else _relative_path(v)

    @property
    def target_path(self) -> str:
        return self.target or PurePosixPath(self.source).name


class JobSpec(_Model):
    name: str | None = Field(default=None, max_length=200)
    script: str | None = None
    executable: str | None = None
    arguments: list[str] = Field(default_factory=list)
    shebang: str = "#!/bin/bash"
    environment: dict[str, str] = Field(default_factory=dict)
    directory: str | None = None
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    input_files: list[FileStage] = Field(default_factory=list)
    output_files: list[RelativePath] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    destination: str | None = None
    resources: Resources = Field(default_factory=Resources)
    idempotency_key: str | None = Field(default=None, max_length=200)
    callback_url: str | None = Field(default=None, pattern=r"^https?://\S+$")

    @field_validator(
        "name",
        "directory",
        "stdin",
        "stdout",
        "stderr",
        "executable",
        "callback_url",
        "idempotency_key",
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
        if (self.script is None) == (self.executable is None):
            raise ValueError("give exactly one of 'script' or 'executable'")
        return self

    @classmethod
    def parse(cls, data: Any) -> JobSpec:
        """Validate, turning pydantic's errors into one SpecError naming the field."""
        try:
            return data if isinstance(data, cls) else cls.model_validate(data)
        except ValidationError as exc:
            raise spec_error(exc) from None


def spec_error(exc: ValidationError) -> SpecError:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "spec"
    message = str(err["msg"]).removeprefix("Value error, ")
    if ":" in message and err["type"] == "value_error" and field == "resources":
        alias, _, rest = message.partition(":")  # an alias parse error: name the alias
        field, message = f"resources.{alias}", rest.strip()
    return SpecError(field, message)


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


def ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)
