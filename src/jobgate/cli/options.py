"""The options that describe a job (submit, run) and how they become a JobSpec."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from jobgate.errors import SpecError

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


def spec_of(
    script: str, args: tuple[str, ...], is_exec: bool, opts: dict[str, Any]
) -> dict[str, Any]:
    spec: dict[str, Any] = {"arguments": list(args)}
    if is_exec:
        spec["executable"] = script
    elif script == "-":
        spec["script"] = sys.stdin.read()
    else:
        path = Path(script)
        if not path.is_file():
            raise SpecError("script", f"no such file: {script}")
        spec["script"] = path.read_text()
        spec.setdefault("name", path.name)
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
    return {k: v for k, v in spec.items() if v not in (None, [], {})}


def submit_options(f: F) -> F:
    options = [
        click.argument("script"),
        click.argument("args", nargs=-1),
        click.option(
            "--exec",
            "is_exec",
            is_flag=True,
            help="SCRIPT is an executable to run with ARGS, not a script file.",
        ),
        click.option("-d", "--dest", envvar="JOBGATE_DEST", help="Destination name."),
        click.option("-n", "--name"),
        click.option("-t", "--time", help="Walltime: 90 (minutes), 1:30:00, 2-00:00:00, 30s."),
        click.option("-c", "--cpus", type=int, help="CPUs per task."),
        click.option("--mem", help="Memory: 512M, 32G."),
        click.option("--gpus", type=int),
        click.option("--nodes", type=int),
        click.option("--tasks", type=int),
        click.option("-p", "--partition", help="Partition or queue."),
        click.option("-A", "--account"),
        click.option("-e", "--env", multiple=True, help="K=V (repeatable)."),
        click.option("-i", "--input", multiple=True, help="File to copy in: SRC[:TARGET]."),
        click.option("-o", "--output", multiple=True, help="File to collect after the job."),
        click.option("-l", "--label", multiple=True, help="K=V (repeatable)."),
        click.option("--workdir", help="Working directory (default: the run directory)."),
        click.option("--idempotency-key", help="Submitting twice with one key makes one job."),
    ]
    for option in reversed(options):
        f = option(f)
    return f
