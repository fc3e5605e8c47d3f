"""What a job may ask of its destination, checked at submit before anything is stored: the
environment it sets, its resources against the destination's limits and scheduler, its
input files and interpreter on this host."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from jobgate.config import Destination
from jobgate.errors import SpecError
from jobgate.policies import KINDS, Dependencies
from jobgate.spec import JobRecord, JobSpec, Resources
from jobgate.units import format_walltime


def check_spec(
    spec: JobSpec, dest: Destination, scheduler_check: Callable[[Resources], None]
) -> Resources:
    """Refuse what the destination would refuse (its scheduler: `scheduler_check`);
    returns the job's effective resources."""
    for name in spec.environment:
        if not dest.env_allowed(name):
            raise SpecError(f"environment.{name}", f"not allowed on destination {dest.name!r}")
    res = _held_to_max_walltime(dest.effective(spec.resources), dest)
    scheduler_check(res)
    if dest.partitions is not None and res.partition and res.partition not in dest.partitions:
        raise SpecError(
            "resources.partition",
            f"unknown partition {res.partition!r} (known: {', '.join(dest.partitions)})",
        )
    for i, stage in enumerate(spec.input_files):
        if dest.transport == "local" and not os.path.isfile(stage.source):
            why = "is a directory" if os.path.isdir(stage.source) else "no such file"
            raise SpecError(f"input_files.{i}.source", f"{why}: {stage.source}")
    if dest.transport == "local":
        check_interpreter(spec)
    return res


def _held_to_max_walltime(res: Resources, dest: Destination) -> Resources:
    """A walltime over the destination's limit is refused; a job that gives none gets the
    limit as its walltime, so every backend enforces it."""
    limit = dest.max_walltime_s
    if not limit:
        return res
    if res.walltime_s is None:
        return res.model_copy(update={"walltime_s": limit})
    if res.walltime_s > limit:
        raise SpecError(
            "resources.walltime",
            f"{format_walltime(res.walltime_s)} is over {dest.name!r}'s limit of "
            f"{format_walltime(limit)}",
        )
    return res


def absolute_inputs(spec: JobSpec) -> JobSpec:
    """Input files named relative to the submitting process's working directory, made
    absolute now: a gateway elsewhere stages them in later."""
    if all(os.path.isabs(stage.source) for stage in spec.input_files):
        return spec
    staged = [
        stage.model_copy(update={"source": os.path.abspath(stage.source)})
        for stage in spec.input_files
    ]
    return spec.model_copy(update={"input_files": staged})


def check_interpreter(spec: JobSpec) -> None:
    """A script's #! line names an interpreter this host has (a typo is said at submit,
    about the script, not later about the wrapper that runs it)."""
    if spec.script is None:
        return
    first = spec.script.splitlines()[0] if spec.script.startswith("#!") else spec.shebang
    interpreter = first[2:].strip().split(" ", 1)[0]
    if interpreter.startswith("/") and not os.access(interpreter, os.X_OK):
        field = "script" if spec.script.startswith("#!") else "shebang"
        raise SpecError(field, f"line 1: #!{interpreter}: no such interpreter on this host")


def check_dependencies(deps: Dependencies, owner: str, found: Sequence[JobRecord | None]) -> None:
    """Each job waited for exists and is the owner's (a cycle cannot be made: what a job
    waits for exists before it does)."""
    mine = {r.id for r in found if r is not None and r.owner == owner}
    for kind in KINDS:
        for job_id in getattr(deps, kind):
            if job_id not in mine:
                raise SpecError(f"depends_on.{kind}", f"no job {job_id!r} of yours to wait for")


@contextmanager
def in_batch(i: int) -> Iterator[None]:
    """A SpecError of the i-th job of a batch names it: `jobs[i].field`."""
    try:
        yield
    except SpecError as exc:
        raise SpecError(f"jobs[{i}].{exc.field}", exc.message) from None
