"""Configuration: `jobgate.toml` declares destinations; with none, there is one: `local`.

Looked up in order: an explicit path, `$JOBGATE_CONFIG`, `./jobgate.toml`,
`~/.config/jobgate/jobgate.toml`. Built lazily, never at import.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from jobgate.errors import ConfigError, SpecError, spec_error
from jobgate.policies import Retry
from jobgate.spec import Resources
from jobgate.units import parse_walltime

# local: detached processes on this host, watched through pidfds; process: detached
# processes on the transport's host, watched by one status command per interval; slurm,
# pbs: batch schedulers. "ssh" (older configs) is the process scheduler over SSH.
SchedulerName = Literal["local", "process", "slurm", "pbs"]


class Hooks(BaseModel):
    """`[destinations.NAME.hooks]`: the site's say on every job sent to the destination,
    from any door (docs/queues.md#hooks)."""

    model_config = ConfigDict(extra="forbid")

    validator: str | None = None  # on the gateway's host: VALIDATOR JOB OUTPUT_DIR, 0 = valid
    runner: str | None = None  # on the job's host, instead: RUNNER JOB OUTPUT_DIR ROLE CLUSTER
    # Entry point names (group `jobgate.hooks`) or "module:function": validate(spec) -> reason
    python: list[str] = Field(default_factory=list)
    role: str = "compute"  # the runner's third argument
    cluster: str | None = None  # its fourth (default: the destination's name)

    @field_validator("validator", "runner")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("/") or any(c in v for c in "\t\n\0")):
            raise ValueError(f"{v!r} must be an absolute path")
        return v

    @property
    def any(self) -> bool:
        return bool(self.validator or self.python)


class Destination(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    scheduler: SchedulerName = "local"
    transport: Literal["local", "ssh"] = "local"
    capacity: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    defaults: Resources = Field(default_factory=Resources)
    # Glob patterns of environment variable names a job may set; ["*"] allows all.
    allowed_env: list[str] = Field(default_factory=lambda: ["*"])
    # Names (globs) of the gateway's own environment variables its jobs get, e.g.
    # ["MODULEPATH", "LMOD_*"]: nothing else of the gateway's environment reaches a job.
    pass_env: list[str] = Field(default_factory=list)
    max_walltime_s: int | None = None  # also the walltime of jobs that give none
    # Scheduler options a job's raw `directives` may give besides the scheduler's own
    # allow-list (docs/configuration.md): e.g. ["--hold"] for Slurm, ["-h"] for PBS.
    allowed_directives: list[str] = Field(default_factory=list)
    partitions: list[str] | None = None  # when set, the only partitions a job may ask for
    flavor: Literal["pbspro", "torque"] = "torque"
    # SSH transport settings (used when transport = "ssh" or scheduler = "ssh")
    host: str | None = None
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    max_channels: int = Field(default=8, ge=1)
    remote_dir: str | None = None  # run directories on the remote host
    poll_interval_s: float = Field(default=2.0, gt=0)
    cancel_grace_s: float = Field(default=5.0, ge=0)
    max_submits: int = Field(default=8, ge=1)  # submit commands (sbatch, qsub) at once
    # Most jobs in one pack: jobs handed over together with the same options go in as one
    # job array (Slurm; backends/packs.py). 1: every job alone.
    pack_jobs: int = Field(default=100, ge=1, le=1000)
    # Where API users' jobs may name absolute paths (`{user}`: the jobgate user), e.g.
    # ["/scratch/{user}"]; elsewhere their paths stay inside the run directory.
    work_roots: list[str] = Field(default_factory=list)
    # Run each jobgate user's jobs as an OS account (local scheduler; the gateway as root):
    # "{user}" is the account of the same name; run_as_users maps names that differ.
    run_as: str | None = None
    run_as_users: dict[str, str] = Field(default_factory=dict)
    # A scheduler command as this site runs it: {"sbatch" = "/opt/slurm/bin/sbatch"}.
    commands: dict[str, str] = Field(default_factory=dict)
    hooks: Hooks = Field(default_factory=Hooks)
    retry: Retry | None = None  # for jobs that give none, e.g. {max = 2} (NODE_FAIL, ...)
    # How a TES task's container `image` is run (docs/tes.md); "host": the command as is.
    containers: Literal["host", "apptainer", "podman", "docker"] = "host"
    # Its command instead, e.g. "apptainer exec --nv {binds} {env} {workdir} {image}"
    container_command: str | None = None
    # TES backend_parameters this destination takes (default: its scheduler's options).
    tes_parameters: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _ssh_scheduler(cls, data: Any) -> Any:
        """`scheduler = "ssh"`, from configs written before the process scheduler had its
        name, means that scheduler over the SSH transport."""
        if isinstance(data, dict) and data.get("scheduler") == "ssh":
            data = {**data, "scheduler": "process", "transport": "ssh"}
        return data

    @field_validator("max_walltime_s", mode="before")
    @classmethod
    def _walltime(cls, v: Any) -> Any:
        return None if v is None else parse_walltime(v)

    @field_validator("remote_dir")
    @classmethod
    def _remote_dir(cls, v: str | None) -> str | None:
        if v is not None and (not v or any(c in v for c in "\t\n\0")):
            raise ValueError("must be a non-empty path without tabs, newlines or NUL")
        return v

    @field_validator("work_roots")
    @classmethod
    def _roots(cls, v: list[str]) -> list[str]:
        for root in v:
            if not root.startswith("/") or ".." in root.split("/") or "\0" in root:
                raise ValueError(f"{root!r} must be an absolute path without '..'")
        return v

    @model_validator(mode="after")
    def _composable(self) -> Destination:
        if self.scheduler == "local" and self.transport != "local":
            raise ValueError(
                "scheduler 'local' watches processes of this host: use scheduler = 'process' "
                "to run jobs directly on an SSH host"
            )
        if self.transport == "ssh" and not self.host:
            raise ValueError("an SSH destination needs a host")
        if (self.run_as or self.run_as_users) and self.scheduler != "local":
            raise ValueError(
                "run_as is for scheduler 'local' (over SSH, jobs run as the destination's "
                "user: a community account, or one destination per account)"
            )
        return self

    def os_account(self, user: str) -> str | None:
        """The OS account `user`'s jobs run as, or None: as the gateway's own."""
        if user in self.run_as_users:
            return self.run_as_users[user]
        return None if self.run_as is None else self.run_as.replace("{user}", user)

    def effective(self, resources: Resources) -> Resources:
        """A job's resources with this destination's defaults filled in."""
        defaults = self.defaults.model_dump(exclude_unset=True)
        if not defaults:
            return resources
        return Resources.model_validate(defaults | resources.model_dump(exclude_unset=True))

    def env_allowed(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.allowed_env)

    def passes_env(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.pass_env)


class CallbackSettings(BaseModel):
    """`[callbacks]`: how job callbacks are delivered (see docs/callbacks.md)."""

    model_config = ConfigDict(extra="forbid")

    # Host-name globs, IPs or CIDRs that may be called even though they are loopback,
    # private, link-local, ...: by default only public addresses are.
    allowed_hosts: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=10.0, gt=0)  # one whole attempt, connect to response
    max_age_s: float = Field(default=86400.0, gt=0)  # retried this long, then failed
    initial_backoff_s: float = Field(default=1.0, gt=0)
    max_backoff_s: float = Field(default=3600.0, gt=0)
    concurrency: int = Field(default=16, ge=1)  # requests in flight per gateway

    @field_validator("allowed_hosts")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for entry in v:
            if "/" in entry:  # a CIDR must parse; anything else is a host glob or an IP
                ipaddress.ip_network(entry, strict=False)
        return v


class Limits(BaseModel):
    """`[limits]`: how much the gateway takes or gives at once (MB = 2**20 bytes)."""

    model_config = ConfigDict(extra="forbid")

    max_body_mb: int = Field(default=100, ge=1)  # a request body, uploads included
    max_stream_mb: int = Field(default=1024, ge=1)  # one log followed over SSE
    max_download_mb: int = Field(default=10240, ge=1)  # one file of a job's
    # Uploaded input files no unfinished job needs are removed once this old (hours).
    upload_max_age_h: float = Field(default=24.0, gt=0)
    # Finished jobs older than this (days) are deleted, with their run directories on
    # this host; None keeps them all.
    keep_finished_days: float | None = Field(default=None, gt=0)

    @property
    def body_bytes(self) -> int:
        return self.max_body_mb << 20


class TesSettings(BaseModel):
    """`[tes]`: the GA4GH TES door (docs/tes.md)."""

    model_config = ConfigDict(extra="forbid")

    # URL schemes a task's inputs and outputs may name; file:// stays inside the user's
    # work roots, http(s):// reaches only public hosts or allowed_hosts.
    storage: list[str] = Field(default_factory=lambda: ["file", "s3", "http", "https"])
    allowed_hosts: list[str] = Field(default_factory=list)  # as [callbacks] allowed_hosts
    s3: dict[str, Any] = Field(default_factory=dict)  # fsspec's S3 options (endpoint_url, ...)


class QueueConfig(BaseModel):
    """A drop-box queue (docs/queues.md): job files put in `<url>/pending/` run as jobs;
    their logs and exit status land in `<url>/completed/<job id>/`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    url: str = Field(min_length=1)  # any fsspec URL: file:///srv/q, s3://bucket/prefix
    destination: str | None = None
    owner: str | None = None  # the jobgate user its jobs belong to (default: the gateway's)
    role: str = "compute"  # the job file's first argument
    cluster: str | None = None  # its second (default: the folder after job-queue.d/)
    runner: str | None = None  # runs instead: RUNNER JOB OUTPUT_DIR ROLE CLUSTER
    validator: str | None = None  # VALIDATOR JOB OUTPUT_DIR: exit 0 = valid
    poll_interval_s: float = Field(default=5.0, gt=0)
    max_job_bytes: int = Field(default=1 << 20, ge=1)
    claim_timeout_s: float = Field(default=30.0, gt=0)  # a claim this old with no job: redone
    storage_options: dict[str, Any] = Field(default_factory=dict)  # fsspec's (S3: endpoint_url)

    @property
    def cluster_name(self) -> str:
        if self.cluster:
            return self.cluster
        parts = self.url.rstrip("/").split("/")
        if "job-queue.d" in parts and parts.index("job-queue.d") + 1 < len(parts):
            return parts[parts.index("job-queue.d") + 1]
        return parts[-1] or self.name


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    home: Path
    database_url: str
    destinations: dict[str, Destination]
    default_destination: str = "local"
    path: Path | None = None
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    limits: Limits = Field(default_factory=Limits)
    # [job_types]: name -> "module" or "module:attribute" (docs/job-types.md)
    job_types: dict[str, str] = Field(default_factory=dict)
    # [gateway] any_job_module: API users may name any importable module as a job type
    any_job_module: bool = False
    queues: dict[str, QueueConfig] = Field(default_factory=dict)
    tes: TesSettings = Field(default_factory=TesSettings)

    def destination(self, name: str | None) -> Destination:
        key = name or self.default_destination
        try:
            return self.destinations[key]
        except KeyError:
            known = ", ".join(sorted(self.destinations))
            raise SpecError(
                "destination", f"unknown destination {key!r} (known: {known})"
            ) from None


def default_home() -> Path:
    env = os.environ.get("JOBGATE_HOME")
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "jobgate"


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError("config", f"no such file: {path}")
        return path
    env = os.environ.get("JOBGATE_CONFIG")
    if env:
        return find_config_file(env)
    for candidate in (Path.cwd() / "jobgate.toml", Path.home() / ".config/jobgate/jobgate.toml"):
        if candidate.is_file():
            return candidate
    return None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    database_url: str | None = None,
) -> Config:
    file = find_config_file(path)
    raw: dict[str, Any] = {}
    if file is not None:
        try:
            raw = tomllib.loads(file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError("config", f"{file}: {exc}") from None
    gateway = raw.get("gateway", {})
    home_path = Path(home or gateway.get("home") or default_home()).expanduser()
    url = (
        database_url
        or os.environ.get("JOBGATE_DATABASE_URL")
        or gateway.get("database_url")
        or f"sqlite:///{home_path / 'jobgate.db'}"
    )
    dests = _named(Destination, raw.get("destinations") or {"local": {}}, "destinations")
    default = gateway.get("default_destination") or (
        "local" if "local" in dests else next(iter(dests))
    )
    if default not in dests:
        raise ConfigError("gateway.default_destination", f"unknown destination {default!r}")
    callbacks = _table(CallbackSettings, raw.get("callbacks") or {}, "callbacks")
    limits = _table(Limits, raw.get("limits") or {}, "limits")
    job_types = raw.get("job_types") or {}
    bad = [k for k, v in job_types.items() if not isinstance(v, str) or not v]
    if bad:
        raise ConfigError(f"job_types.{bad[0]}", 'give a module path: name = "package.module"')
    queues = _named(QueueConfig, raw.get("queues") or {}, "queues")
    for name, q in queues.items():
        if q.destination and q.destination not in dests:
            raise ConfigError(f"queues.{name}.destination", "unknown destination")
    return Config(
        queues=queues,
        job_types=job_types,
        any_job_module=bool(gateway.get("any_job_module", False)),
        home=home_path,
        database_url=url,
        destinations=dests,
        default_destination=default,
        path=file,
        callbacks=callbacks,
        limits=limits,
        tes=_table(TesSettings, raw.get("tes") or {}, "tes"),
    )


M = TypeVar("M", bound=BaseModel)


def _table(model: type[M], body: dict[str, Any], table: str) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _config_error(table, exc) from None


def _named(model: type[M], tables: dict[str, Any], prefix: str) -> dict[str, M]:
    """`[prefix.NAME]` tables, each with its name."""
    return {n: _table(model, {**b, "name": n}, f"{prefix}.{n}") for n, b in tables.items()}


def _config_error(table: str, exc: ValidationError) -> ConfigError:
    err = spec_error(exc)
    field = table if err.field == "spec" else f"{table}.{err.field}"  # a whole-table check
    return ConfigError(field, err.message)
