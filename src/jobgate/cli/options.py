"""The options that describe a job (submit, run) and how they become a JobSpec."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from jobgate.errors import SpecError
from jobgate.policies import Dependencies

F = TypeVar("F", bound=Callable[..., Any])


def json_option(f: F) -> F:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        envvar="JOBGATE_JSON",
        help="Print JSON instead of a table.",
    )(f)


def pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError(what, f"{item!r} is not KEY=VALUE")
        out[key] = value
    return out


class JobCommand(click.Command):
    """`--exec PROG ARGS...`: everything after PROG is the program's, as after `--` (so
    `--exec /bin/echo -n hi` gives echo `-n`); jobgate's own options go before `--exec`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--exec" in args:
            i = args.index("--exec")
            if "--" not in args[:i] and args[i + 1 : i + 2] != ["--"]:
                args = [*args[:i], "--exec", "--", *args[i + 1 :]]
        return super().parse_args(ctx, args)


def _script(script: str) -> tuple[str, str | None]:
    """The script's text, and its name (None for stdin)."""
    if script == "-":
        return sys.stdin.read(), None
    path = Path(script)
    if path.is_dir():
        raise SpecError("script", f"{script} is a directory (give the script file in it)")
    if not path.is_file():
        raise SpecError("script", f"no such file: {script}")
    try:
        return path.read_text(), path.name
    except UnicodeDecodeError:
        raise SpecError(
            "script", f"{script} is not a text file (use --exec for a program)"
        ) from None


# Reserved for dependencies and arrays task by task; until then, what works instead.
def _typed(script: str | None, opts: dict[str, Any]) -> dict[str, Any]:
    """--type T --param k=v (values JSON where they parse as JSON) --params-file F --key K."""
    if script is not None:
        raise SpecError("job_type", "give a script or --type, not both")
    params: dict[str, Any] = {}
    if opts["params_file"]:
        try:
            params = json.loads(Path(opts["params_file"]).read_text())
        except (OSError, ValueError) as exc:
            raise SpecError("params_file", f"{opts['params_file']}: {exc}") from None
        if not isinstance(params, dict):
            raise SpecError("params_file", "must hold a JSON object")
    for key, text in pairs(opts["param"], "job_params").items():
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text  # a plain word: the string itself
    spec = {"job_type": opts["job_type"], "job_params": params, "key": opts["key"]}
    return {k: v for k, v in spec.items() if v}


def spec_of(
    script: str | None, args: tuple[str, ...], is_exec: bool, opts: dict[str, Any]
) -> dict[str, Any]:
    spec: dict[str, Any] = {"arguments": list(args)}
    if opts["job_type"]:
        spec.update(_typed(script, opts))
    elif script is None:
        raise SpecError("script", "give a script, --exec PROG, or --type T (a job type)")
    elif is_exec:
        spec["executable"] = script
    else:
        spec["script"], name = _script(script)
        if name:
            spec["name"] = name
    resources = {
        k: v
        for k, v in {
            "walltime": opts["time"],
            "cpus_per_task": opts["cpus"],
            "memory": opts["mem"],
            "gpus": opts["gpus"],
            "nodes": opts["nodes"],
            "tasks": opts["tasks"],
            "partition": opts["partition"],
            "account": opts["account"],
            "array": opts["array"],
        }.items()
        if v is not None
    }
    inputs = [dict(zip(("source", "target"), i.split(":", 1), strict=False)) for i in opts["input"]]
    spec.update(
        {
            "destination": opts["dest"],
            "environment": pairs(opts["env"], "environment"),
            "labels": pairs(opts["label"], "labels"),
            "input_files": inputs,
            "output_files": list(opts["output"]),
            "resources": resources,
            "directory": opts["workdir"],
            "idempotency_key": opts["idempotency_key"],
        }
    )
    if opts["name"]:
        spec["name"] = opts["name"]
    if opts["dependency"]:
        try:
            spec["depends_on"] = Dependencies.parse_sbatch(opts["dependency"]).model_dump()
        except ValueError as exc:
            raise SpecError("dependency", str(exc)) from None
    return {k: v for k, v in spec.items() if v not in (None, [], {})}


def submit_options(f: F) -> F:
    options = [
        click.argument("script", required=False),
        click.argument("args", nargs=-1),
        click.option(
            "--exec",
            "is_exec",
            is_flag=True,
            help="SCRIPT is a program to run with ARGS, not a script file; everything after "
            "it is the program's (give jobgate's options first).",
        ),
        click.option("-d", "--dest", envvar="JOBGATE_DEST", help="Destination name."),
        click.option("-J", "--name", help="The job's name."),
        click.option(
            "-t", "--time", help="Walltime: 90 (minutes), 1:30:00, 2-00:00:00, 30s, 1h30m."
        ),
        click.option("-c", "--cpus", type=int, help="CPUs per task."),
        click.option("--mem", help="Memory: 512M, 32G."),
        click.option("--gpus", type=int),
        click.option("--nodes", type=int),
        click.option("-n", "--tasks", type=int, help="Tasks (sbatch's --ntasks)."),
        click.option("-a", "--array", help="Array tasks: 0-9, 1,3,5, 0-99%10 (10 at once)."),
        click.option("--dependency", help="afterok:ID[:ID],afterany:ID (as sbatch writes it)."),
        click.option("-p", "--partition", help="Partition or queue."),
        click.option("-A", "--account"),
        click.option("-e", "--env", multiple=True, help="K=V (repeatable)."),
        click.option(
            "-i",
            "--input",
            multiple=True,
            help="File to copy in: SRC[:TARGET] (SRC relative to here).",
        ),
        click.option("-o", "--output", multiple=True, help="File to collect after the job."),
        click.option("-l", "--label", multiple=True, help="K=V (repeatable)."),
        click.option("--workdir", help="Working directory (default: the run directory)."),
        click.option("--idempotency-key", help="Submitting twice with one key makes one job."),
        click.option("--type", "job_type", help="A job type instead of a script (its params:)"),
        click.option("-P", "--param", multiple=True, help="K=V for --type (V as JSON if it is)."),
        click.option("--params-file", help="A JSON object of params for --type."),
        click.option("--key", help="The job's key: unique per user (same key, same job)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f
