"""`jobgate submit` and `jobgate run`: a job from a script or a program, and its end as the
command's exit status."""

from __future__ import annotations

import sys
from typing import Any

import click

from jobgate.cli import render
from jobgate.cli.context import exit_status, gateway
from jobgate.cli.options import JobCommand, json_option, spec_of, submit_options
from jobgate.errors import SpecError
from jobgate.handle import Job
from jobgate.states import JobState

HANDED_OVER_S = 10  # without `jobgate serve`, submit waits this long for the hand-over


@click.command(cls=JobCommand)
@submit_options
@click.option("-w", "--wait", is_flag=True, help="Wait for the job to end; exit with its code.")
@json_option
@click.pass_context
def submit(
    ctx: click.Context,
    /,
    script: str | None,
    args: tuple[str, ...],
    is_exec: bool,
    wait: bool,
    as_json: bool,
    **opts: Any,
) -> None:
    """Submit SCRIPT (a file, or - for stdin) and print the job id."""
    gw = gateway(ctx)
    job = gw.submit(spec_of(script, args, is_exec, opts))
    _warn(job)
    if wait:
        try:
            job.wait()
        except KeyboardInterrupt:  # a batch job: stop waiting, leave it be (`run` cancels)
            click.echo(
                f"jobgate: interrupted: job {job.id} goes on (jobgate cancel {job.id})", err=True
            )
            sys.exit(130)
        record = job.record
        if as_json:
            render.print_json(render.public(record))
        else:
            render.job_detail(record)
        sys.exit(exit_status(record))
    if gw.supervising:  # no `jobgate serve` is running: hand the job over before exiting
        job.wait(HANDED_OVER_S, until=lambda s: s not in (JobState.QUEUED, JobState.STAGING_IN))
    if as_json:
        render.print_json(render.public(job.record))
    else:
        click.echo(job.id)


@click.command(cls=JobCommand)
@submit_options
@click.pass_context
def run(
    ctx: click.Context, /, script: str | None, args: tuple[str, ...], is_exec: bool, **opts: Any
) -> None:
    """Submit SCRIPT, stream its output live, and exit with its exit code."""
    job = gateway(ctx).submit(spec_of(script, args, is_exec, opts))
    _warn(job)
    try:
        _follow(job)
    except KeyboardInterrupt:
        job.cancel()
        click.echo(f"jobgate: interrupted: job {job.id} cancelled", err=True)
        sys.exit(130)
    record = job.record
    if record.state != JobState.COMPLETED:
        click.echo(f"jobgate: job {job.id} ended {record.state.value}: {record.reason}", err=True)
    sys.exit(exit_status(record))


def _warn(job: Job) -> None:
    for warning in job.warnings:
        click.echo(f"jobgate: warning: {warning}", err=True)


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


@click.command()
@click.argument("job_id")
@click.option("--failed-tasks", is_flag=True, help="Of an array: only the tasks that failed.")
@json_option
@click.pass_context
def resubmit(ctx: click.Context, job_id: str, failed_tasks: bool, as_json: bool) -> None:
    """Submit a new job from JOB_ID's spec (its key left out: a new job); print its id."""
    gw = gateway(ctx)
    old = gw.get(job_id)
    spec = old.record.spec.as_request().model_copy(update={"idempotency_key": None, "key": None})
    labels = {**spec.labels, "resubmitted_from": old.id}
    if failed_tasks:
        array = spec.resources.array
        failed = [str(t.index) for t in old.tasks() if t.state != JobState.COMPLETED]
        if not array or not failed:
            raise SpecError("failed-tasks", f"job {old.id} has no failed array tasks")
        limit = f"%{array.split('%', 1)[1]}" if "%" in array else ""
        resources = spec.resources.model_copy(update={"array": ",".join(failed) + limit})
        spec = spec.model_copy(update={"resources": resources})
    job = gw.submit(spec.model_copy(update={"labels": labels}))
    _warn(job)
    if gw.supervising:  # as submit: hand it over before exiting
        job.wait(HANDED_OVER_S, until=lambda s: s not in (JobState.QUEUED, JobState.STAGING_IN))
    if as_json:
        render.print_json(render.public(job.record))
    else:
        click.echo(job.id)
