"""The job directory a job type builds, at submit: its builder writes `work_dir/` (with
the entrypoint) in a scratch folder on the gateway's host; each file becomes an input of
the job (kept like an upload, by content), beside `JOBGATE_JOB.json` (the metadata), and
the job's script runs the entrypoint. So the directory reaches any destination the way
inputs do, and a builder's error fails the submission before anything is stored."""

from __future__ import annotations

import json
import os
import shlex
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from jobgate.errors import SpecError
from jobgate.service.jobtypes.registry import JobType
from jobgate.spec import FileStage, JobSpec

WORK_DIR = "work_dir"
METADATA = "JOBGATE_JOB.json"


def expand(
    spec: JobSpec,
    job_type: JobType,
    job_id: str,
    owner: str,
    keep: Callable[[bytes], str],
    max_bytes: int,
) -> JobSpec:
    """The spec to run: `spec` with the built directory as inputs and a script that runs
    its entrypoint. `keep(data)` stores a file's bytes and returns its path."""
    if spec.input_files:
        raise SpecError("input_files", "a job type builds the job directory: pass files as params")
    params = job_type.check(spec.job_params)
    with tempfile.TemporaryDirectory(prefix="jobgate-build-") as scratch:
        work = Path(scratch, WORK_DIR)
        work.mkdir()
        built = _run_builder(job_type, params, work, {"key": spec.key, "job_params": params})
        folder, entry = _where(built, work, job_type.name)
        files = _files(folder, max_bytes, job_type.name)
    if entry not in files:
        raise SpecError("job_type", f"{job_type.name!r}: the builder made no {entry!r}")
    meta = {
        "id": job_id,
        "owner": owner,
        "key": spec.key,
        "job_type": spec.job_type,
        "job_params": params,
        "spec": spec.model_dump(mode="json", exclude_defaults=True),
    }
    inputs = [
        FileStage(source=keep(data), target=f"{WORK_DIR}/{rel}") for rel, data in files.items()
    ]
    inputs.append(FileStage(source=keep(json.dumps(meta, indent=2).encode()), target=METADATA))
    entry_q = shlex.quote(f"./{entry}")
    script = f"cd {WORK_DIR} && chmod +x {entry_q} && exec {entry_q}\n"
    return spec.model_copy(update={"job_params": params, "input_files": inputs, "script": script})


def _run_builder(job_type: JobType, params: dict[str, Any], work: Path, job: dict[str, Any]) -> Any:
    try:
        return job_type.build_work_dir(params=params, output_dir=str(work), job=job)
    except SpecError:
        raise
    except Exception as exc:  # the builder is the job type's code: any error is its own
        raise SpecError(
            "job_params", f"job type {job_type.name!r} could not build the job: {exc!r}"
        ) from None


def _where(built: Any, work: Path, name: str) -> tuple[Path, str]:
    """The folder the builder filled and its entrypoint, as its return dict says."""
    if not isinstance(built, dict) or not isinstance(built.get("entrypoint_name"), str):
        raise SpecError(
            "job_type", f"{name!r}: build_work_dir must return {{'dir', 'entrypoint_name'}}"
        )
    folder = Path(str(built.get("dir") or work))
    entry = PurePosixPath(built["entrypoint_name"])
    if entry.is_absolute() or ".." in entry.parts or not entry.parts:
        raise SpecError("job_type", f"{name!r}: entrypoint_name must be a path in its dir")
    return folder, str(entry)


def _files(folder: Path, max_bytes: int, name: str) -> dict[str, bytes]:
    """Regular files under `folder`, by relative path; links and special files are left
    out (never followed), and the whole may not pass `max_bytes`."""
    found: dict[str, bytes] = {}
    total = 0
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not Path(root, d).is_symlink()]
        for entry in names:
            path = Path(root, entry)
            if not stat.S_ISREG(path.lstat().st_mode):
                continue
            data = path.read_bytes()
            total += len(data)
            if total > max_bytes:
                raise SpecError("job_params", f"{name!r} built more than {max_bytes:,} bytes")
            found[path.relative_to(folder).as_posix()] = data
    return found
