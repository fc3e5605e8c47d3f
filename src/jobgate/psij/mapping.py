"""PSI/J's model in jobgate's terms: a PSI/J JobSpec becomes a jobgate JobSpec, and a
jobgate JobRecord becomes the PSI/J JobStatus changes it implies.

Pure functions: no gateway, no threads, so every rule here is unit-tested on its own.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psij
from pydantic import ValidationError

from jobgate.errors import SpecError, spec_error
from jobgate.spec import JobRecord, JobSpec, Resources
from jobgate.states import JobState

PSIJ_STATE: dict[JobState, psij.JobState] = {
    JobState.NEW: psij.JobState.QUEUED,
    JobState.QUEUED: psij.JobState.QUEUED,
    JobState.STAGING_IN: psij.JobState.QUEUED,
    JobState.SUBMITTED: psij.JobState.QUEUED,
    JobState.RUNNING: psij.JobState.ACTIVE,
    JobState.STAGING_OUT: psij.JobState.ACTIVE,
    JobState.COMPLETED: psij.JobState.COMPLETED,
    JobState.FAILED: psij.JobState.FAILED,
    JobState.TIMEOUT: psij.JobState.FAILED,
    JobState.LOST: psij.JobState.FAILED,
    JobState.REJECTED: psij.JobState.FAILED,
    JobState.CANCELLED: psij.JobState.CANCELED,
}
LAUNCHERS = ("single", "multiple", "srun", "mpirun")
_RESOURCE_KEYS = set(Resources.model_fields) | {
    "walltime",
    "time",
    "memory",
    "mem",
    "queue",
    "cpus",
}
_SPEC_KEYS = {"name", "idempotency_key", "callback_url"}
SchedulerOf = Callable[[str | None], str]


def psij_state(state: JobState) -> psij.JobState:
    return PSIJ_STATE[state]


# -- statuses ------------------------------------------------------------------------------


def statuses(record: JobRecord) -> list[psij.JobStatus]:
    """The PSI/J statuses that bring a job up to `record`, in order. A job seen only once
    it had ended still passes through ACTIVE if it ever ran, so callbacks see every state
    it went through (PSI/J itself fills in QUEUED and, before COMPLETED, ACTIVE)."""
    state = psij_state(record.state)
    meta = metadata(record)
    out = []
    if state.final and record.started_at is not None:
        out.append(psij.JobStatus(psij.JobState.ACTIVE, time=_ts(record.started_at), metadata=meta))
    if state == psij.JobState.QUEUED:
        when = record.queued_at or record.created_at
    elif state == psij.JobState.ACTIVE:
        when = record.started_at or record.created_at
    else:
        when = record.finished_at or record.created_at
    out.append(
        psij.JobStatus(
            state,
            time=_ts(when),
            message=message(record) if state.final else None,
            exit_code=record.exit_code if state.final else None,
            metadata=meta,
        )
    )
    return out


def message(record: JobRecord) -> str | None:
    """Why the job ended as it did: jobgate's reason, naming states PSI/J folds into FAILED."""
    reason = record.reason
    if record.state in (JobState.TIMEOUT, JobState.LOST, JobState.REJECTED):
        return f"{record.state.value}: {reason}" if reason else record.state.value
    return reason


def metadata(record: JobRecord) -> dict[str, object]:
    meta: dict[str, object] = {
        "nativeId": record.id,  # what PSI/J's own executors call it
        "jobgate_state": record.state.value,
        "destination": record.destination,
    }
    if record.native_id:
        meta["scheduler_id"] = record.native_id  # the Slurm/PBS id or pid
    if record.host:
        meta["host"] = record.host
    if record.reason_code:
        meta["reason_code"] = record.reason_code  # retry it, or fix it
    return meta


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


# -- the job spec ----------------------------------------------------------------------------


def to_spec(spec: psij.JobSpec, destination: str | None, scheduler_of: SchedulerOf) -> JobSpec:
    """A jobgate JobSpec for a PSI/J JobSpec; psij.InvalidJobException for what cannot be
    mapped. `scheduler_of(destination)` names the destination's scheduler: custom
    attributes and some resources are translated for that scheduler only."""
    try:
        return _to_spec(spec, destination, scheduler_of)
    except SpecError as exc:
        raise psij.InvalidJobException(f"jobgate cannot run this job: {exc}") from None
    except ValidationError as exc:
        err = spec_error(exc)
        raise psij.InvalidJobException(f"jobgate cannot run this job: {err}") from None


def _to_spec(spec: psij.JobSpec, destination: str | None, scheduler_of: SchedulerOf) -> JobSpec:
    if not spec.executable:
        raise SpecError("executable", "the PSI/J job spec has no executable")
    custom = dict((spec.attributes.custom_attributes or {}) if spec.attributes else {})
    own = {k.split(".", 1)[1]: v for k, v in custom.items() if k.lower().startswith("jobgate.")}
    destination = str(own.pop("destination", None) or destination or "") or None
    scheduler = scheduler_of(destination)
    resources = resources_of(spec, scheduler)
    fields: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for key, value in own.items():
        if key.startswith("label."):
            labels[key.removeprefix("label.")] = str(value)
        elif key in _RESOURCE_KEYS:
            resources[key] = value
        elif key in _SPEC_KEYS:
            fields[key] = value
        else:
            raise SpecError(f"custom_attributes.jobgate.{key}", "not a jobgate job setting")
    environment = dict(spec.environment or {})
    fields.update(_command(spec, environment, scheduler, resources))
    return JobSpec.model_validate(
        {
            "name": spec.name,
            "environment": environment,
            "directory": _path(spec.directory),
            "stdin": _path(spec.stdin_path),
            "stdout": _path(spec.stdout_path),
            "stderr": _path(spec.stderr_path),
            "destination": destination,
            "labels": labels,
            "resources": resources,
            **fields,
        }
    )


def resources_of(spec: psij.JobSpec, scheduler: str) -> dict[str, Any]:
    """Resources (as Resources' input) from ResourceSpecV1 and JobAttributes. Only what the
    job asked for is set, so the destination's defaults fill the rest."""
    out: dict[str, Any] = {}
    directives: list[str] = []
    res = spec.resources
    if res is not None:
        if not isinstance(res, psij.ResourceSpecV1):
            raise SpecError("resources", f"resource spec version {res.version} is not supported")
        if res.node_count is not None or res.processes_per_node is not None:
            out["nodes"] = res.computed_node_count
        if any(v is not None for v in (res.node_count, res.process_count, res.processes_per_node)):
            out["tasks"] = res.computed_process_count
        if res.processes_per_node is not None and scheduler == "slurm":
            directives.append(f"--ntasks-per-node={res.processes_per_node}")
        if res.cpu_cores_per_process:
            out["cpus_per_task"] = res.cpu_cores_per_process
        if res.gpu_cores_per_process:
            if scheduler == "slurm":  # exactly PSI/J's own Slurm directive
                directives.append(f"--gpus-per-task={res.gpu_cores_per_process}")
            else:  # jobgate's gpus count per node
                out["gpus"] = res.gpu_cores_per_process * res.computed_processes_per_node
        if res.exclusive_node_use:
            out["exclusive"] = True
        if res.memory:
            out["memory_mb"] = max(1, math.ceil(res.memory / 2**20))  # bytes in PSI/J
    attrs = spec.attributes
    if attrs is not None:
        duration = attrs.duration
        if isinstance(duration, timedelta) and duration.total_seconds() > 0:
            out["walltime_s"] = math.ceil(duration.total_seconds())
        for name, field in (
            ("queue_name", "partition"),
            ("account", "account"),
            ("reservation_id", "reservation"),
        ):
            if getattr(attrs, name, None):
                out[field] = str(getattr(attrs, name))
        for key, value in (attrs.custom_attributes or {}).items():
            directive = _custom(key, value, scheduler, out)
            if directive:
                directives.append(directive)
    if directives:
        out["directives"] = directives
    return out


def _custom(key: str, value: object, scheduler: str, out: dict[str, Any]) -> str | None:
    """`slurm.qos`, `slurm.<option>`, `pbs.<letter>`: PSI/J's batch executors' convention.
    Another scheduler's attributes are ignored, as PSI/J does, so one job runs anywhere."""
    prefix, _, name = key.partition(".")
    if not name or prefix.lower() != scheduler or scheduler not in ("slurm", "pbs"):
        return None
    if scheduler == "slurm":
        if name in ("qos", "constraint"):
            out[name] = str(value)
            return None
        return f"--{name}={value}"
    return f"-{name} {value}"


def _command(
    spec: psij.JobSpec, environment: dict[str, str], scheduler: str, resources: dict[str, Any]
) -> dict[str, Any]:
    """executable + arguments, or a bash script when PSI/J asks for more than one plain
    run: pre/post-launch scripts, a launcher, or an empty environment."""
    launcher = spec.launcher or "single"
    if launcher not in LAUNCHERS:
        raise SpecError(
            "launcher", f"{launcher!r} is not supported (jobgate runs {', '.join(LAUNCHERS)})"
        )
    if launcher == "srun" and scheduler != "slurm":
        raise SpecError("launcher", "srun needs a Slurm destination")
    argv = [str(spec.executable), *[str(a) for a in spec.arguments or []]]
    if not spec.inherit_environment:  # env -i: only the job's own variables reach it
        argv = ["env", "-i", *[f"{k}={v}" for k, v in sorted(environment.items())], *argv]
    plain = launcher == "single" and not spec.pre_launch and not spec.post_launch
    if plain:
        return {"executable": argv[0], "arguments": argv[1:]}
    count = int(resources.get("tasks") or 1)
    return {"script": _script(spec, argv, launcher, count)}


def _script(spec: psij.JobSpec, argv: list[str], launcher: str, count: int) -> str:
    """Like PSI/J's launcher scripts: pre-launch is sourced (it may set the job's
    environment) and a failure there fails the job; the job's code is the command's."""
    cmd = " ".join(shlex.quote(a) for a in argv)
    lines = ["#!/bin/bash", "# jobgate PSI/J executor: pre-launch, launcher, post-launch", "set -e"]
    if spec.pre_launch:
        lines.append(f"source {shlex.quote(str(spec.pre_launch))}")
    lines.append("set +e")
    if launcher == "multiple":
        lines += [
            "_jg_pids=",
            f"for _jg_i in $(seq 1 {count}); do",
            f'  _PSI_J_PROCESS_INDEX_="$_jg_i" {cmd} &',
            '  _jg_pids="$_jg_pids $!"',
            "done",
            "_jg_ec=0",
            'for _jg_pid in $_jg_pids; do wait "$_jg_pid" || _jg_ec=$?; done',
        ]
    else:
        if launcher == "srun":
            cmd = f"srun {cmd}"
        elif launcher == "mpirun":
            lines.append(
                '_jg_mpi=(mpirun); mpirun --version 2>&1 | grep -q "Open MPI" '
                "&& _jg_mpi+=(--oversubscribe)"
            )
            cmd = f'"${{_jg_mpi[@]}}" -n {count} {cmd}'
        lines += [cmd, "_jg_ec=$?"]
    lines.append("set -e")
    if spec.post_launch:
        lines.append(f"source {shlex.quote(str(spec.post_launch))}")
    lines.append('exit "$_jg_ec"')
    return "\n".join(lines) + "\n"


def _path(value: object) -> str | None:
    return None if value is None else str(value)
