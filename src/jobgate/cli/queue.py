"""`jobgate queue put NAME FILE...` and `jobgate queue ls NAME`: the drop-box queues of
jobgate.toml, as Alces' `customize job-queue put` and a look at what they hold."""

from __future__ import annotations

import posixpath
from pathlib import Path

import click

from jobgate.cli import render
from jobgate.cli.options import json_option
from jobgate.config import QueueConfig
from jobgate.errors import SpecError
from jobgate.queues.watcher import open_queue
from jobgate.sdk import Gateway


@click.group()
def queue() -> None:
    """Drop-box queues: job files put in pending/ run as jobs (docs/queues.md)."""


def _config(ctx: click.Context, name: str) -> tuple[Gateway, QueueConfig]:
    """The embedded gateway (queues are the gateway host's configuration, as tokens)."""
    gw = Gateway(supervise=False, **ctx.find_root().obj)
    ctx.call_on_close(gw.close)
    queues = gw.config.queues
    if name not in queues:
        known = ", ".join(sorted(queues)) or "none configured"
        raise SpecError("queue", f"unknown queue {name!r} (known: {known})")
    return gw, queues[name]


@queue.command("put")
@click.argument("name")
@click.argument("files", nargs=-1, required=True)
@click.pass_context
def put(ctx: click.Context, name: str, files: tuple[str, ...]) -> None:
    """Put job files in the queue's pending/ (each under its own file name)."""
    _, q = _config(ctx, name)
    fs, root = open_queue(q)
    for file in files:
        path = Path(file)
        if not path.is_file():
            raise SpecError("files", f"{file}: not a file")
        target = f"{root.rstrip('/')}/pending/{path.name}"
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        fs.pipe_file(target, path.read_bytes())
        click.echo(f"{name}: {path.name}")


@queue.command("ls")
@click.argument("name")
@json_option
@click.pass_context
def ls(ctx: click.Context, name: str, as_json: bool) -> None:
    """What the queue holds: pending files, and claimed ones with their jobs."""
    gw, q = _config(ctx, name)
    fs, root = open_queue(q)
    try:
        pending = sorted(posixpath.basename(p) for p in fs.ls(f"{root.rstrip('/')}/pending"))
    except FileNotFoundError:
        pending = []
    claimed = gw.service.queue_items.items_now(q.name)
    rows = [{"key": k, "state": "pending", "job_id": ""} for k in pending]
    rows += [{"key": i.key, "state": i.state, "job_id": i.job_id} for i in claimed]
    if as_json:
        render.print_json(rows)
    else:
        render.rows_table(rows)
