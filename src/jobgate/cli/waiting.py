"""`jobgate wait`: many jobs, one progress bar."""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from jobgate.cli.render import console
from jobgate.client import Client
from jobgate.sdk import Gateway
from jobgate.spec import JobRecord


def wait_all(
    gw: Gateway | Client, job_ids: list[str], timeout: float | None, progress: bool
) -> list[JobRecord]:
    jobs = [gw.get(i) for i in job_ids]  # unknown ids fail before any waiting
    deadline = None if timeout is None else time.monotonic() + timeout
    show = progress and len(jobs) > 1
    bar = Progress(
        TextColumn("waiting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show,
    )
    records = []
    with bar:
        task = bar.add_task("jobs", total=len(jobs))
        for job in jobs:  # jobs end in any order; waiting in turn still ends with the last
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            job.wait(left)
            records.append(job.snapshot)  # as wait left it
            bar.advance(task)
    return records
