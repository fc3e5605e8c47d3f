"""Job scripts: the wrapper templates (Jinja2, beside this module) and the command that
runs the user's script or executable. Every value from the user is shell-quoted."""

from __future__ import annotations

import shlex
from functools import cache
from typing import Any

import jinja2

from jobgate.backends.arrays import driver
from jobgate.backends.environment import JobEnvironment
from jobgate.backends.layout import EXITCODE, JobFiles
from jobgate.config import Hooks
from jobgate.spec import JobRecord


def user_command(
    job: JobRecord, files: JobFiles, hooks: Hooks | None = None, own_arrays: bool = False
) -> str:
    """The shell command that runs the user's script or executable; with a destination's
    runner, the runner instead, given the job file, an output folder, role and cluster;
    `own_arrays` (no scheduler): an array's tasks, run by a driver (backends/arrays.py)."""
    spec = job.spec
    if hooks is not None and hooks.runner is not None:
        job_file = files.marker("script.sh") if spec.script is not None else spec.executable
        cluster = hooks.cluster or job.destination
        argv = [hooks.runner, job_file or "", "output", hooks.role, cluster]
    elif spec.script is None:
        argv = [spec.executable or ""]
    else:
        # The script's interpreter, run as the kernel would run it (interpreter, its one
        # optional argument, the script): executing a file that was just written can fail
        # with ETXTBSY while another thread's forked child still holds it open for writing.
        text = script_text(job) or ""
        interpreter, _, arg = text.splitlines()[0][2:].strip().partition(" ")
        argv = [interpreter, *([arg.strip()] if arg.strip() else []), files.marker("script.sh")]
    command = " ".join(shlex.quote(a) for a in [*argv, *spec.arguments])
    array = (job.resources or spec.resources).array
    return driver(command, array) if own_arrays and array else command


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


def render(
    template: str,
    job: JobRecord,
    files: JobFiles,
    env: JobEnvironment,
    hooks: Hooks | None = None,
    **extra: Any,
) -> str:
    """Render a job script: `|q` shell-quotes every value that comes from the user; the
    wrapper exports the job's environment (`env`); `hooks`: the destination's (a runner)."""
    extra.setdefault("atomic_sidecar", True)  # rename into place: readers may look any time
    return (
        _templates()
        .get_template(template)
        .render(
            job=job,
            spec=job.spec,
            files=files,
            command=user_command(job, files, hooks, extra.pop("own_arrays", False)),
            runner=hooks.runner if hooks is not None else None,
            environment=list(env.values.items()),
            env_defaults=list(env.defaults.items()),
            exitcode=files.marker(EXITCODE),
            **extra,
        )
    )


def render_pack(template: str, members: list[tuple[str, str]], **extra: Any) -> str:
    """A pack's script: an array whose task N runs the wrapper in members[N]'s run
    directory as that job ((run directory, job name) each, quoted like every value)."""
    return (
        _templates()
        .get_template(template)
        .render(
            run_dirs=[run_dir for run_dir, _ in members],
            names=[job_name for _, job_name in members],
            **extra,
        )
    )
