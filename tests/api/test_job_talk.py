"""A running job's own words, live: `@event=[...]` and `$JOBGATE_EVENTS` lines reach the
events stream (SSE) while the job still runs, on local and on Slurm, namespaced so they
change no state; `@var` values become the job's results."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.conftest import CONFIG, Gate, Server, running_server
from conftest import need, service_env, slurm_answers


def _slurm() -> str:
    partition = service_env().get("JOBGATE_TEST_SLURM_PARTITION")
    defaults = f'defaults = {{ partition = "{partition}" }}\n' if partition else ""
    return f'\n[destinations.slurm]\nscheduler = "slurm"\npoll_interval_s = 0.5\n{defaults}'


@pytest.fixture(scope="module")
def talking(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = CONFIG + (_slurm() if slurm_answers() else "")
    with running_server(tmp_path_factory.mktemp("talk"), database_url, config) as srv:
        yield srv


@pytest.mark.parametrize("dest", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_what_a_job_says_is_seen_while_it_runs(talking: Server, gates: object, dest: str) -> None:
    if dest == "slurm":
        need(slurm_answers(), "no Slurm test cluster (run scripts/slurm-up.sh as root)")
    gate: Gate = gates()  # type: ignore[operator]
    script = (
        "echo '@event=[JOB_INITIALIZED:ready]'\n"
        "echo '@event=[COMPLETED:not really]'\n"
        'echo \'{"type": "STEP", "message": "1 of 2", "data": {"n": 1}}\' >> "$JOBGATE_EVENTS"\n'
        "echo '@var=[score:42]'\n"
        f"{gate.wait}\n"
        "echo '@var=[last:true]'\n"
    )
    job = talking.submit("alice", script=script, destination=dest)
    seen = talking.follow("alice", job["id"], until=lambda e: e[0] == "job.STEP")
    kinds = [e[0] for e in seen]
    assert {"job.JOB_INITIALIZED", "job.COMPLETED", "job.STEP"} <= set(kinds), kinds
    assert talking.job("alice", job["id"])["state"] == "RUNNING"  # said, and still running
    gate.open()
    done = talking.wait("alice", job["id"])
    assert done["state"] == "COMPLETED", done
    events = talking.client("alice").get(f"/jobs/{job['id']}/events").json()
    step = next(e for e in events if e["type"] == "job.STEP")
    assert (step["message"], step["data"]["n"]) == ("1 of 2", 1)
    assert [e["type"] for e in events].count("COMPLETED") == 1
    results = talking.client("alice").get(f"/jobs/{job['id']}/results").json()
    assert results["data"] == {"score": 42, "last": True}, results  # last words too
