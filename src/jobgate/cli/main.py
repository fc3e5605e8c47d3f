"""`jobgate`: submit, watch, cancel and collect jobs. Every flag has a JOBGATE_* variable
(JOBGATE_HOME, JOBGATE_DEST, ..., or JOBGATE_<COMMAND>_<FLAG>). Errors are one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from jobgate.cli import render
from jobgate.cli.options import json_option, pairs, spec_of, submit_options
from jobgate.cli.tokens import token
from jobgate.client import Client
from jobgate.errors import ConfigError, JobgateError, SpecError
from jobgate.sdk import Gateway, Job
from jobgate.states import JobState

F = TypeVar("F", bound=Callable[..., Any])


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JobgateError as exc:
            _fail(str(exc), 2 if isinstance(exc, SpecError | ConfigError) else 1)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as exc:
            if os.environ.get("JOBGATE_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (JOBGATE_DEBUG=1 shows more)", 70)


def _fail(message: str, code: int) -> None:
    click.echo(f"jobgate: error: {message}", err=True)
    sys.exit(code)


@click.group(
    cls=_Group,
    context_settings={"auto_envvar_prefix": "JOBGATE", "help_option_names": ["-h", "--help"]},
)
@click.option("--home", envvar="JOBGATE_HOME", help="Where jobgate keeps its store and runs.")
@click.option("--config", "config_path", envvar="JOBGATE_CONFIG", help="Path to jobgate.toml.")
@click.option("--database-url", envvar="JOBGATE_DATABASE_URL", help="SQLAlchemy URL of the store.")
@click.option("--server", envvar="JOBGATE_SERVER", help="URL of a jobgate server to use instead.")
@click.option("--token", envvar="JOBGATE_TOKEN", help="API token for --server.")
@click.pass_context
def cli(
    ctx: click.Context,
    home: str | None,
    config_path: str | None,
    database_url: str | None,
    server: str | None,
    token: str | None,
) -> None:
    """jobgate: one gateway for batch jobs."""
    ctx.obj = {"home": home, "config_path": config_path, "database_url": database_url}
    ctx.meta["server"] = (server, token)


def gateway(ctx: click.Context, supervise: bool | None = None) -> Gateway | Client:
    """A remote server's client (--server), or the embedded gateway, which supervises jobs
    only while no `jobgate serve` is alive."""
    server, token = ctx.find_root().meta["server"]
    gw: Gateway | Client = (
        Client(server, token) if server else Gateway(supervise=supervise, **ctx.find_root().obj)
    )
    ctx.call_on_close(gw.close)
    return gw


@cli.command()
@submit_options
@click.option("-w", "--wait", is_flag=True, help="Wait for the job to end; exit with its code.")
@json_option
@click.pass_context
def submit(
    ctx: click.Context,
    /,
    script: str,
    args: tuple[str, ...],
    is_exec: bool,
    wait: bool,
    as_json: bool,
    **opts: Any,
) -> None:
    """Submit SCRIPT (a file, or - for stdin) and print the job id."""
    gw = gateway(ctx)
    job = gw.submit(spec_of(script, args, is_exec, opts))
    if wait:
        job.wait()
        _print_job(job, as_json)
        sys.exit(_exit_code(job))
    if gw.supervising:  # no `jobgate serve` is running: hand the job over before exiting
        job.wait(timeout=10, until=lambda s: s not in (JobState.QUEUED, JobState.STAGING_IN))
    if as_json:
        render.print_json(render.public(job.record))
    else:
        click.echo(job.id)


@cli.command()
@submit_options
@click.pass_context
def run(
    ctx: click.Context, /, script: str, args: tuple[str, ...], is_exec: bool, **opts: Any
) -> None:
    """Submit SCRIPT, stream its output live, and exit with its exit code."""
    job = gateway(ctx).submit(spec_of(script, args, is_exec, opts))
    try:
        _follow(job)
    except KeyboardInterrupt:
        job.cancel()
        _fail(f"interrupted: cancelled job {job.id}", 130)
    if job.state != JobState.COMPLETED and job.exit_code is None:
        click.echo(f"jobgate: job {job.id} ended {job.state.value}: {job.record.reason}", err=True)
    sys.exit(_exit_code(job))


def _follow(job: Job) -> None:
    """Print new stdout and stderr until the job ends (waking at once when it does)."""
    streams = ("stdout", "stderr")
    offsets = dict.fromkeys(streams, 0)
    while True:
        final = job.wait(timeout=0.1).final
        for name in streams:
            data = job.read_log(name, offsets[name])
            if data:
                offsets[name] += len(data)
                out = sys.stdout if name == "stdout" else sys.stderr
                out.buffer.write(data)
                out.flush()
        if final:
            return


def _exit_code(job: Job) -> int:
    record = job.record
    if record.exit_code is not None:
        return record.exit_code
    return 0 if record.state == JobState.COMPLETED else 1


def _print_job(job: Job, as_json: bool) -> None:
    if as_json:
        render.print_json(render.public(job.record))
    else:
        render.job_detail(job.record)


@cli.command("ls")
@click.option("-s", "--state", multiple=True, help="Only these states (repeatable).")
@click.option("-d", "--dest", envvar="JOBGATE_DEST")
@click.option("-l", "--label", multiple=True, help="K=V (repeatable).")
@click.option("-n", "--name")
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@click.pass_context
def ls(
    ctx: click.Context,
    state: tuple[str, ...],
    dest: str | None,
    label: tuple[str, ...],
    name: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List jobs, newest first."""
    jobs = gateway(ctx).list(
        state=list(state) or None,
        destination=dest,
        label=pairs(label, "labels") or None,
        name=name,
        limit=limit,
    )
    records = [j.record for j in jobs]
    if as_json:
        render.print_json([render.public(r) for r in records])
    else:
        render.jobs_table(records)


@cli.command()
@click.argument("job_id")
@json_option
@click.pass_context
def show(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show one job."""
    _print_job(gateway(ctx).get(job_id), as_json)


@cli.command()
@click.argument("job_id")
@click.option("--stderr", "use_stderr", is_flag=True, help="Show stderr instead of stdout.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
@click.pass_context
def logs(ctx: click.Context, job_id: str, use_stderr: bool, follow: bool) -> None:
    """Print a job's stdout (or stderr)."""
    job = gateway(ctx).get(job_id)
    stream = "stderr" if use_stderr else "stdout"
    if follow:
        for chunk in job.follow_log(stream):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
    else:
        sys.stdout.buffer.write(job.read_log(stream))


@cli.command()
@click.argument("job_id")
@json_option
@click.pass_context
def events(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show a job's event log."""
    evs = gateway(ctx).get(job_id).events()
    if as_json:
        render.print_json([e.model_dump(mode="json") for e in evs])
    else:
        render.events_table(evs)


@cli.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.pass_context
def cancel(ctx: click.Context, job_ids: tuple[str, ...]) -> None:
    """Cancel jobs (a finished job is left as it is)."""
    gw = gateway(ctx)
    for job_id in job_ids:
        job = gw.cancel(job_id)
        if isinstance(gw, Gateway) and gw.supervising:  # this process does the stopping
            job.wait(timeout=gw.config.destination(job.record.destination).cancel_grace_s + 5)
        state = job.state
        click.echo(f"{job_id} {state.value if state.final else 'cancel requested'}")


@cli.command("wait")
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 124).")
@json_option
@click.pass_context
def wait_cmd(
    ctx: click.Context, job_ids: tuple[str, ...], timeout: float | None, as_json: bool
) -> None:
    """Wait for jobs to end; exit 0 if all COMPLETED, 1 if not, 124 on timeout."""
    from jobgate.cli.waiting import wait_all

    records = wait_all(gateway(ctx), list(job_ids), timeout, progress=not as_json)
    if as_json:
        render.print_json([render.public(r) for r in records])
    elif len(records) > 1:
        render.jobs_table(records)
    if not all(r.state.final for r in records):
        sys.exit(124)
    sys.exit(0 if all(r.state == JobState.COMPLETED for r in records) else 1)


@cli.command()
@json_option
@click.pass_context
def destinations(ctx: click.Context, as_json: bool) -> None:
    """List destinations with their capacity and load."""
    rows = gateway(ctx, supervise=False).destinations()
    if as_json:
        render.print_json(rows)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in rows[0] if rows else []:
        table.add_column(col.upper())
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    render.console.print(table)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the REST API.")
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--no-api", is_flag=True, help="Only supervise jobs; no REST API.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, no_api: bool) -> None:
    """Run the gateway: supervise every destination and serve the REST API until stopped."""
    from jobgate.cli.serving import serve_forever

    serve_forever(ctx.find_root().obj, host, port, api=not no_api)


cli.add_command(token)


def main() -> None:
    cli(prog_name="jobgate")
