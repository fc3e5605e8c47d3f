"""Several `jobgate serve` processes on one PostgreSQL: capacity holds across all of them,
a killed one's jobs are taken over by another, and nothing runs twice."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from conftest import peak_overlap, serve_env
from jobgate import Gateway, JobState

Serve = Callable[..., subprocess.Popen[str]]


def test_two_gateways_share_capacity_and_take_over(
    home: Path, tmp_path: Path, serve: Serve, pg_database: str
) -> None:
    config = tmp_path / "jobgate.toml"
    env = serve_env(home, pg_database, config, "[destinations.local]\ncapacity = 6\n")
    spans, go = tmp_path / "spans", tmp_path / "go"
    spans.mkdir()
    # Each job logs its start, holds until the test says go, then logs its end.
    script = (
        f'echo "start $EPOCHREALTIME" > {spans}/$N\n'
        f"while [ ! -e {go} ]; do sleep 0.05; done\n"
        f'echo "end $EPOCHREALTIME" >> {spans}/$N\n'
    )
    procs = {p.pid: p for p in (serve(env, "--no-api"), serve(env, "--no-api"))}
    with Gateway(
        config_path=str(config), home=home, database_url=pg_database, supervise=None
    ) as client:
        jobs = [client.submit(script=script, environment={"N": str(i)}) for i in range(20)]
        running = jobs[:6]  # admission is oldest first, whichever gateway admits
        assert [j.wait(60, until=_running) for j in running] == [JobState.RUNNING] * 6
        # The capacity is shared: the others wait, though each gateway alone has room.
        assert {j.state for j in jobs[6:]} == {JobState.QUEUED}
        before = {_owner(client, j.id) for j in running}
        dead = sorted(before)[0]  # kill a gateway that holds running jobs
        doomed = procs[_pid_of_gateway(client, dead)]
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        go.touch()
        assert [j.wait(120) for j in jobs] == [JobState.COMPLETED] * 20
        after = {_owner(client, j.id) for j in running}
    assert len(after) == 1 and dead not in after  # the survivor took over the dead one's jobs
    assert sorted(int(p.name) for p in spans.iterdir()) == list(range(20))  # each ran, once
    assert all(len(p.read_text().splitlines()) == 2 for p in spans.iterdir())
    assert peak_overlap(spans) <= 6


def _running(state: JobState) -> bool:
    return state == JobState.RUNNING


def _scalar(client: Gateway, query: str, **params: str) -> object:
    """A value straight from the store's database (what no door shows: which gateway)."""
    engine = sa.create_engine(client.config.database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query), params).scalar_one()
    finally:
        engine.dispose()


def _owner(client: Gateway, job_id: str) -> str:
    return str(_scalar(client, "SELECT gateway_id FROM jobs WHERE id = :i", i=job_id))


def _pid_of_gateway(client: Gateway, gateway_id: str) -> int:
    return int(str(_scalar(client, "SELECT pid FROM gateways WHERE id = :g", g=gateway_id)))
