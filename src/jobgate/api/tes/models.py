"""TES 1.1 task documents as a client sends them (openapi.json beside this module, from
ga4gh/task-execution-schemas v1.1). Read-only fields a client may echo back (id, state,
logs, creation_time) are accepted and ignored; unknown fields are ignored, as the
schema allows; a wrong type or a missing required field is a 400 naming it."""

from __future__ import annotations

import posixpath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

VIEWS = ("MINIMAL", "BASIC", "FULL")
STATES = (
    "UNKNOWN", "QUEUED", "INITIALIZING", "RUNNING", "PAUSED", "COMPLETE",
    "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED", "CANCELING",
)  # fmt: skip
FileType = Literal["FILE", "DIRECTORY"]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        """Clients send `null` for what they leave out (pydantic-tes does): absent."""
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


def _absolute(v: str | None) -> str | None:
    if v is None:
        return v
    if not v.startswith("/") or "\0" in v or ".." in v.split("/"):
        raise ValueError(f"{v!r} must be an absolute path without '..'")
    if posixpath.normpath(v) == "/":
        raise ValueError(f"{v!r} names the whole file system")
    return v


class Input(_In):
    name: str | None = None
    description: str | None = None
    url: str | None = None
    path: str
    type: FileType = "FILE"
    content: str | None = None
    streamable: bool = False

    check_path = field_validator("path")(_absolute)


class Output(_In):
    name: str | None = None
    description: str | None = None
    url: str
    path: str
    path_prefix: str | None = None
    type: FileType = "FILE"

    check_path = field_validator("path")(_absolute)


class Executor(_In):
    image: str
    command: list[str] = Field(min_length=1)
    workdir: str | None = None
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    ignore_error: bool = False

    check_paths = field_validator("workdir", "stdin", "stdout", "stderr")(_absolute)

    @field_validator("env")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not name.replace("_", "a").isalnum() or name[0].isdigit():
                raise ValueError(f"{name!r} is not an environment variable name")
        return v


class TaskResources(_In):
    cpu_cores: int | None = Field(default=None, ge=1)
    preemptible: bool | None = None
    ram_gb: float | None = Field(default=None, gt=0)
    disk_gb: float | None = Field(default=None, gt=0)
    zones: list[str] = Field(default_factory=list)
    backend_parameters: dict[str, str] = Field(default_factory=dict)
    backend_parameters_strict: bool = False


class Task(_In):
    name: str | None = None
    description: str | None = None
    inputs: list[Input] = Field(default_factory=list)
    outputs: list[Output] = Field(default_factory=list)
    resources: TaskResources = Field(default_factory=TaskResources)
    executors: list[Executor] = Field(min_length=1)
    volumes: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)

    check_volumes = field_validator("volumes")(lambda v: [_absolute(p) or p for p in v])
