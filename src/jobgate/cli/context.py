"""What every command shares: the gateway it talks to, and how a job's end becomes the
command's exit status (the table in README.md)."""

from __future__ import annotations

import sys

import click

from jobgate.client import Client
from jobgate.sdk import Gateway
from jobgate.spec import JobRecord
from jobgate.states import JobState

# COMPLETED exits with 0. CANCELLED and TIMEOUT always exit with theirs: the job's code
# there is only the signal that stopped it (143), which would hide which of the two it was.
# Other final states exit with the job's own code, or with theirs when it has none (or 0:
# FAILED for missing output files).
STATE_EXIT = {
    JobState.FAILED: 1,
    JobState.LOST: 1,
    JobState.REJECTED: 2,
    JobState.CANCELLED: 130,
    JobState.TIMEOUT: 142,
}
GAVE_UP = 124  # `wait --timeout`: not all jobs ended in time


def gateway(ctx: click.Context, supervise: bool | None = None) -> Gateway | Client:
    """A remote server's client (--server), or the embedded gateway, which supervises jobs
    only while no `jobgate serve` is alive."""
    server, token = ctx.find_root().meta["server"]
    if not server and "" not in sys.path:  # job types by module, as `python -m` finds them
        sys.path.insert(0, "")
    gw: Gateway | Client = (
        Client(server, token) if server else Gateway(supervise=supervise, **ctx.find_root().obj)
    )
    ctx.call_on_close(gw.close)
    return gw


def exit_status(record: JobRecord) -> int:
    """The exit status a command returns for a job that ended this way."""
    if record.state == JobState.COMPLETED:
        return 0
    if record.exit_code and record.state not in (JobState.CANCELLED, JobState.TIMEOUT):
        return record.exit_code if 0 < record.exit_code < 256 else 1
    return STATE_EXIT.get(record.state, 1)


def exit_status_of_all(records: list[JobRecord]) -> int:
    """0 if every job COMPLETED; else the status of the first one (in the order given)
    that did not; GAVE_UP if some have not ended."""
    if not all(r.state.final for r in records):
        return GAVE_UP
    return next((exit_status(r) for r in records if r.state != JobState.COMPLETED), 0)
