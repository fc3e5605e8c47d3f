"""What every command shares: the gateway it talks to, and how a job's end becomes the
command's exit status (the table in README.md)."""

from __future__ import annotations

import click

from jobgate.client import Client
from jobgate.sdk import Gateway
from jobgate.spec import JobRecord
from jobgate.states import JobState

# A final state without an exit code of the job's own (or with 0: e.g. FAILED for missing
# output files) exits with these; COMPLETED with 0; any other with the job's own code.
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
    gw: Gateway | Client = (
        Client(server, token) if server else Gateway(supervise=supervise, **ctx.find_root().obj)
    )
    ctx.call_on_close(gw.close)
    return gw


def exit_status(record: JobRecord) -> int:
    """The exit status a command returns for a job that ended this way."""
    if record.state == JobState.COMPLETED:
        return 0
    if record.exit_code:
        return record.exit_code if 0 < record.exit_code < 256 else 1
    return STATE_EXIT.get(record.state, 1)


def exit_status_of_all(records: list[JobRecord]) -> int:
    """0 if every job COMPLETED; else the status of the first one (in the order given)
    that did not; GAVE_UP if some have not ended."""
    if not all(r.state.final for r in records):
        return GAVE_UP
    return next((exit_status(r) for r in records if r.state != JobState.COMPLETED), 0)
