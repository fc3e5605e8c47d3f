"""One TES task is one jobgate job: its executors run in order in the job's script
(script.py), its inputs become the job's inputs, its resources and backend parameters
the job's resources, its tags the job's labels. The task document (inputs' content
left out) is kept in the run directory as `.tes/task.json` for the views; outputs are
written when the job ends (`finish`, before its final state)."""

from __future__ import annotations

import asyncio
import json
import math
import os
from typing import Any

from jobgate.api.tes.models import Task
from jobgate.api.tes.script import render
from jobgate.api.tes.staging import Storage, output_matches, stage_inputs
from jobgate.config import Config, Destination
from jobgate.errors import JobgateError, SpecError
from jobgate.service import JobService
from jobgate.service.paths import check_path, user_roots
from jobgate.spec import JobRecord

LABEL = "tes"  # every task's job carries tes=1
TASK_FILE = ".tes/task.json"
TAG_DESTINATION = "jobgate_destination"  # a tag (or backend parameter) naming the destination
TAG_CALLBACK = "jobgate_callback_url"  # beyond the spec: called back, no polling needed
# backend_parameters a destination takes unless it names its own (`tes_parameters`).
SCHEDULER_PARAMETERS = {
    "slurm": [
        "partition", "account", "qos", "constraint", "reservation", "walltime", "nodes",
        "gpus", "exclusive",
    ],
    "pbs": ["queue", "account", "walltime", "nodes", "gpus"],
    "local": ["walltime"],
    "process": ["walltime"],
}  # fmt: skip
CHUNK = 1 << 20


def parameters(dest: Destination) -> list[str]:
    if dest.tes_parameters is not None:
        return dest.tes_parameters
    return [TAG_DESTINATION, *SCHEDULER_PARAMETERS[dest.scheduler]]


def job_spec(task: Task, config: Config, owner: str, storage: Storage, keep: Any) -> dict[str, Any]:
    """The job to submit for `task` (blocking: inputs are fetched here)."""
    params = dict(task.resources.backend_parameters)
    dest = config.destination(params.pop(TAG_DESTINATION, None) or task.tags.get(TAG_DESTINATION))
    notes: list[str] = []
    resources = _resources(task, dest, params, notes)
    roots = user_roots(dest, owner)
    inputs = stage_inputs(task, storage, roots, keep, config.limits.max_body_mb << 20)
    for i, out in enumerate(task.outputs):
        scheme = storage.scheme(f"outputs[{i}].url", out.url)
        if scheme == "file":
            check_path(f"outputs[{i}].url", out.url.split("://", 1)[1], roots)
    if dest.containers == "host":
        notes += [
            f"image {e.image!r} not used: {dest.name} runs commands on the host"
            for e in task.executors
        ]
    doc = task.model_dump(mode="json", exclude_none=True)
    for item in doc.get("inputs", []):
        item.pop("content", None)  # the FULL view's content is read from the input itself
    doc["system_logs"] = notes
    inputs.append({"source": keep(json.dumps(doc).encode()), "target": TASK_FILE})
    labels = {**{k[:200]: v[:1000] for k, v in task.tags.items()}, LABEL: "1"}
    return {
        "name": (task.name or "tes-task")[:200],
        "script": render(task, dest.containers, dest.container_command),
        "shebang": "#!/bin/sh",
        "input_files": inputs,
        "destination": dest.name,
        "labels": labels,
        "resources": resources,
        "callback_url": task.tags.get(TAG_CALLBACK),
    }


def _resources(
    task: Task, dest: Destination, params: dict[str, str], notes: list[str]
) -> dict[str, Any]:
    res = task.resources
    out: dict[str, Any] = {}
    if res.cpu_cores:
        out["cpus_per_task"] = res.cpu_cores
    if res.ram_gb:
        out["memory_mb"] = math.ceil(res.ram_gb * 1024)
    if res.disk_gb:
        notes.append(f"disk_gb {res.disk_gb} not reserved: {dest.name} has no disk request")
    if res.preemptible or res.zones:
        notes.append("preemptible and zones do not apply to this destination")
    accepted = parameters(dest)
    for key, value in params.items():
        if key not in accepted:
            if res.backend_parameters_strict:
                raise SpecError(
                    f"resources.backend_parameters.{key}",
                    f"{dest.name} takes {', '.join(accepted)} (see service-info)",
                )
            notes.append(f"backend parameter {key!r} ignored: {dest.name} does not take it")
        elif key in ("nodes", "gpus"):
            out[key] = _int(key, value)
        elif key == "exclusive":
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = value
    return out


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SpecError(
            f"resources.backend_parameters.{key}", f"{value!r} is not a number"
        ) from None


class Outputs:
    """The supervisor's `finishing` for TES jobs: each output written from the job's
    files; what was written (sizes) and what failed go into the job's results."""

    def __init__(self, service: JobService, storage: Storage) -> None:
        self.service, self.storage = service, storage

    def wants(self, job: JobRecord) -> bool:
        return job.labels.get(LABEL) == "1"

    async def __call__(self, job: JobRecord) -> dict[str, Any]:
        try:
            task = Task.model_validate(json.loads(await self._read(job, TASK_FILE)))
        except (JobgateError, ValueError) as exc:
            return {"tes_errors": [f"the task document is unreadable: {exc}"]}
        written, errors = [], []
        files = await self.service.files.list(job)
        roots = user_roots(self.service.config.destination(job.destination), job.owner)
        for i, out in enumerate(task.outputs):
            try:
                for path, url in output_matches(out, files):
                    data = await self._read(job, path)
                    await asyncio.to_thread(self._write, url, data, roots)
                    written.append(
                        {
                            "url": url,
                            "path": "/" + path.split("/", 1)[1],
                            "size_bytes": str(len(data)),
                        }
                    )
            except (OSError, JobgateError, ValueError) as exc:
                errors.append(f"outputs[{i}] {out.url}: {exc}")
        return {"tes_outputs": written, "tes_errors": errors}

    async def _read(self, job: JobRecord, path: str) -> bytes:
        reader = await self.service.files.open(job, path)
        chunks, offset = [], 0
        try:
            while chunk := await reader.read(offset, CHUNK):
                chunks.append(chunk)
                offset += len(chunk)
        finally:
            await reader.close()
        return b"".join(chunks)

    def _write(self, url: str, data: bytes, roots: list[str]) -> None:
        scheme = self.storage.scheme("outputs.url", url)
        if scheme != "file":
            fs = self.storage.fs(scheme)
            fs.pipe_file(url, data)
            return
        path = url.split("://", 1)[1]
        check_path("outputs.url", path, roots)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(path, flags, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
