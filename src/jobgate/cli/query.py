"""Looking at jobs and acting on many: ls, show, logs, events, files, get, cancel, wait."""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath
from typing import Any

import click

from jobgate.cli import render
from jobgate.cli.context import exit_status_of_all, gateway
from jobgate.cli.options import json_option, pairs
from jobgate.errors import SpecError
from jobgate.handle import Job
from jobgate.sdk import Gateway
from jobgate.states import JobState
from jobgate.views import parse_states

CONFIRM_OVER = 10  # cancelling more jobs than this by a filter asks first


def _filter_options(f: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        [
            click.option("-s", "--state", multiple=True, help="Only these states (repeatable)."),
            click.option("-d", "--dest", envvar="JOBGATE_DEST", help="Only this destination."),
            click.option("-l", "--label", multiple=True, help="K=V (repeatable)."),
            click.option("-n", "-J", "--name", help="Only jobs of this name."),
        ]
    ):
        f = option(f)
    return f


def _filters(
    state: tuple[str, ...], dest: str | None, label: tuple[str, ...], name: str | None
) -> dict[str, Any]:
    return {
        "state": parse_states(state) or None,  # here: a server would name its query field
        "destination": dest,
        "label": pairs(label, "labels") or None,
        "name": name,
    }


@click.command("ls")
@_filter_options
@click.option("--limit", type=int, default=50, show_default=True, help="0: all of them.")
@click.option("--all", "everything", is_flag=True, help="All of them (as --limit 0).")
@click.option("--cursor", help="Where the page before ended (printed in the footer).")
@click.option("--array", "array_of", metavar="ID", help="The tasks of array job ID instead.")
@json_option
@click.pass_context
def ls(
    ctx: click.Context,
    state: tuple[str, ...],
    dest: str | None,
    label: tuple[str, ...],
    name: str | None,
    limit: int,
    everything: bool,
    cursor: str | None,
    array_of: str | None,
    as_json: bool,
) -> None:
    """List jobs, newest first, a page at a time."""
    if array_of:
        render.tasks_of(gateway(ctx).get(array_of).tasks(), as_json)
        return
    if limit < 0:
        raise SpecError("limit", "must be 0 (all) or more")
    gw, filters = gateway(ctx), _filters(state, dest, label, name)
    if everything or limit == 0:
        jobs, total, after = gw.list(limit=0, **filters), None, None
        if cursor:
            raise SpecError("cursor", "goes with --limit N, not with --all")
    else:
        page = gw.page(limit=limit, cursor=cursor, count=True, **filters)
        jobs, total, after = page.jobs, page.total, page.next_cursor
    records = [j.snapshot for j in jobs]  # one query for the page, not one per job
    if as_json:
        render.print_json([render.public(r) for r in records])
        return
    render.jobs_table(records)
    render.footer(len(records), total if total is not None else len(records), after)


@click.command()
@click.argument("job_id")
@click.option("--tasks", is_flag=True, help="An array's tasks, task by task.")
@json_option
@click.pass_context
def show(ctx: click.Context, job_id: str, tasks: bool, as_json: bool) -> None:
    """Show one job: where it runs, what it asked for and got, how it went."""
    job = gateway(ctx).get(job_id)
    if tasks:
        render.tasks_of(job.tasks(), as_json)
        return
    record = job.record
    if as_json:
        render.print_json({**render.public(record), "waiting": job.waiting()})
    else:
        render.job_detail(record, job.waiting())


@click.command()
@click.argument("job_id")
@click.option("--stderr", "use_stderr", is_flag=True, help="Show stderr instead of stdout.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
@click.pass_context
def logs(ctx: click.Context, job_id: str, use_stderr: bool, follow: bool) -> None:
    """Print a job's stdout (or stderr), whole."""
    job = gateway(ctx).get(job_id)
    stream = "stderr" if use_stderr else "stdout"
    if follow:
        for chunk in job.follow_log(stream):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
    else:
        sys.stdout.buffer.write(job.read_log(stream))


@click.command()
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


@click.command()
@click.argument("job_id")
@json_option
@click.pass_context
def files(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """List the files of a job's run directory."""
    names = gateway(ctx).get(job_id).files()
    if as_json:
        render.print_json(names)
    else:
        for name in names:
            click.echo(name)


@click.command()
@click.argument("job_id")
@click.argument("paths", nargs=-1)
@click.option("-o", "--output", "into", help="Folder to put them in (default: ./JOB_ID).")
@click.pass_context
def get(ctx: click.Context, job_id: str, paths: tuple[str, ...], into: str | None) -> None:
    """Download a job's files (all of them, or PATHS), keeping their folders."""
    job = gateway(ctx).get(job_id)
    wanted = list(paths) or job.files()
    folder = Path(into or job_id)
    for path in wanted:
        rel = PurePosixPath(path)
        if rel.is_absolute() or ".." in rel.parts:
            raise SpecError("paths", f"{path!r}: name a file of the run directory, relatively")
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            for chunk in job.download(path):
                out.write(chunk)
        click.echo(str(target))


@click.command()
@click.argument("job_ids", nargs=-1)
@_filter_options
@click.option("--all", "everything", is_flag=True, help="Every unfinished job of yours.")
@click.option("-y", "--yes", is_flag=True, help=f"Do not ask, even for over {CONFIRM_OVER} jobs.")
@click.pass_context
def cancel(
    ctx: click.Context,
    job_ids: tuple[str, ...],
    state: tuple[str, ...],
    dest: str | None,
    label: tuple[str, ...],
    name: str | None,
    everything: bool,
    yes: bool,
) -> None:
    """Cancel jobs by id, or every unfinished one a filter picks (as scancel does)."""
    gw = gateway(ctx)
    filtered = everything or any((state, dest, label, name))
    if job_ids and filtered:
        raise SpecError("job_ids", "give job ids or filters (--state, --name, ...), not both")
    if not job_ids and not filtered:
        raise SpecError("job_ids", "give job ids, or filters (--state, --name, --label, --all)")
    if filtered:
        states = state or tuple(s.value for s in JobState if not s.final)
        picked = gw.list(limit=0, **_filters(states, dest, label, name))
        if len(picked) > CONFIRM_OVER and not yes:
            click.confirm(f"cancel {len(picked)} jobs?", abort=True, err=True)
        job_ids = tuple(j.id for j in picked)
    for job_id in job_ids:
        job = gw.cancel(job_id)
        _settle(gw, job)
        state_now = job.state
        click.echo(f"{job_id} {state_now.value if state_now.final else 'cancel requested'}")


def _settle(gw: object, job: Job) -> None:
    """Where this process does the stopping (no `jobgate serve`), let it happen."""
    if isinstance(gw, Gateway) and gw.supervising:
        job.wait(timeout=gw.config.destination(job.record.destination).cancel_grace_s + 5)


@click.command("wait")
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 124).")
@json_option
@click.pass_context
def wait_cmd(
    ctx: click.Context, job_ids: tuple[str, ...], timeout: float | None, as_json: bool
) -> None:
    """Wait for jobs to end; exit 0 if all COMPLETED, else as the first that did not (see
    the README's table); 124 if they had not all ended by the timeout."""
    from jobgate.cli.waiting import wait_all

    records = wait_all(gateway(ctx), list(job_ids), timeout, progress=not as_json)
    if as_json:
        render.print_json([render.public(r) for r in records])
    elif len(records) > 1:
        render.jobs_table(records)
    sys.exit(exit_status_of_all(records))


@click.command()
@json_option
@click.pass_context
def destinations(ctx: click.Context, as_json: bool) -> None:
    """List destinations with their capacity and load."""
    rows = gateway(ctx, supervise=False).destinations()
    if as_json:
        render.print_json(rows)
    else:
        render.rows_table(rows)


COMMANDS = [ls, show, logs, events, files, get, cancel, wait_cmd, destinations]
