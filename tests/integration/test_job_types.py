"""Job types end to end through a real Gateway: MissionControl's echo module (as written
for MissionControl) builds, runs and leaves the documented job directory on local, Slurm
and Slurm over SSH, on both stores; keys; the python type; a sweep as one table; and each
way it can go wrong (bad params, a builder or a parser that raises) losing nothing."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_slurm import slurm_destination
from test_ssh import open_remote, remote_dir, sshd

from conftest import JOBGATE, install_entry_points, make_config, need, slurm_answers
from jobgate import Gateway, JobState
from jobgate.errors import ConflictError, SpecError
from jobgate.sdk import Job

__all__ = ["open_remote", "remote_dir", "sshd"]  # fixtures, shared with test_ssh
REPO = Path(__file__).parents[2]
ECHO = "examples.jobtypes.echo"
SWEEP = "examples.jobtypes.sweep"
WAIT = 90


@pytest.fixture(autouse=True)
def importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples and the faulty test modules, importable as a user's own would be."""
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.syspath_prepend(str(REPO / "tests" / "data" / "jobtypes"))


def echo_job_ran(job: Job, message: str, key: str) -> None:
    """The echo job COMPLETED, left the documented directory, and its results came back."""
    assert job.wait(WAIT) == JobState.COMPLETED, (job.record.reason, job.stderr())
    assert job.stdout() == f"{message}\n"
    names = set(job.files())
    assert {"JOBGATE_JOB.json", "work_dir/entrypoint.sh", "work_dir/echo_job.out"} <= names
    results = job.results()
    assert results is not None and results["data"] == {"output": f"{message}\n"}, results
    assert results["error"] is None and results["job_type"] == ECHO
    meta = json.loads(b"".join(job.download("JOBGATE_JOB.json")))
    assert (meta["id"], meta["key"], meta["job_type"]) == (job.id, key, ECHO)
    assert meta["job_params"] == {"message": message}


def test_mission_control_echo_on_local(gateway: Gateway) -> None:
    job = gateway.submit(job_type=ECHO, job_params={"message": "Tacos are delicious."}, key="e1")
    echo_job_ran(job, "Tacos are delicious.", "e1")
    kinds = [e.type for e in job.events()]
    assert job.record.name == ECHO and kinds[-3:] == ["STAGING_OUT", "results", "COMPLETED"]


@pytest.mark.slurm
def test_mission_control_echo_on_slurm(home: Path, database_url: str) -> None:
    need(slurm_answers(), "no Slurm test cluster (run scripts/slurm-up.sh as root)")
    with Gateway(make_config(home, database_url, slurm=slurm_destination())) as gw:
        job = gw.submit(job_type=ECHO, job_params={"message": "on slurm"}, key="s1")
        echo_job_ran(job, "on slurm", "s1")
        assert job.native_id and job.native_id.isdigit()


@pytest.mark.slurm
@pytest.mark.ssh
def test_mission_control_echo_on_slurm_over_ssh(open_remote: Callable[..., Gateway]) -> None:
    from test_over_ssh import scheduler

    gw = open_remote(**scheduler("slurm"))
    job = gw.submit(job_type=ECHO, job_params={"message": "over ssh"}, key="r1")
    echo_job_ran(job, "over ssh", "r1")


def test_one_key_one_job(gateway: Gateway) -> None:
    first = gateway.submit(job_type=ECHO, job_params={"message": "a"}, key="k")
    again = gateway.submit(job_type=ECHO, job_params={"message": "a"}, key="k")
    assert again.id == first.id
    with pytest.raises(ConflictError, match=first.id):
        gateway.submit(job_type=ECHO, job_params={"message": "b"}, key="k")
    assert [j.id for j in gateway.list()] == [first.id]


def test_bad_params_and_a_failing_builder_store_nothing(gateway: Gateway) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"job_type": SWEEP, "job_params": {"x": "far"}}, "job_params.x"),
        ({"job_type": SWEEP, "job_params": {}}, "job_params.x"),
        ({"job_type": SWEEP, "job_params": {"x": 1, "steps": 0}}, "job_params.steps"),
        ({"job_type": "faulty_build", "job_params": {"what": "tacos"}}, "job_params"),
        ({"job_type": "no_such_module_here"}, "job_type"),
        ({"job_type": ECHO, "script": "true"}, "job_type"),
    ]
    for spec, field in cases:
        with pytest.raises(SpecError) as err:
            gateway.submit(**spec)
        assert err.value.field == field, (spec, err.value)
    assert "cannot build for tacos" in str(err_of(gateway, cases[3][0]))
    assert gateway.list() == []


def err_of(gateway: Gateway, spec: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as err:
        gateway.submit(**spec)
    return err.value


def test_a_failing_parser_keeps_the_job_and_says_why(gateway: Gateway) -> None:
    job = gateway.submit(job_type="faulty_parse")
    assert job.wait(WAIT) == JobState.COMPLETED and job.stdout() == "ran\n"
    results = job.results()
    assert results is not None and results["data"] == {}
    assert results["error"] == "ValueError: no value in ran"
    noted = [e for e in job.events() if e.type == "results"]
    assert [e.data for e in noted] == [{"error": "ValueError: no value in ran"}]


def test_python_type_keeps_the_return_value(gateway: Gateway) -> None:
    job = gateway.submit(
        job_type="python", job_params={"function": "statistics:mean", "kwargs": {"data": [1, 2, 6]}}
    )
    assert job.wait(WAIT) == JobState.COMPLETED, job.stderr()
    assert (job.results() or {})["data"] == {"value": 3}
    with pytest.raises(SpecError) as err:
        gateway.submit(job_type="python", job_params={"function": "not a function"})
    assert err.value.field == "job_params.function"


def jobgate(home: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI on this test's home and store, run from the repository (where the examples'
    dotted paths resolve, as `python -m` would find them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBGATE_")}
    env |= {"JOBGATE_HOME": str(home), "JOBGATE_DATABASE_URL": database_url, "JOBGATE_CONFIG": ""}
    return subprocess.run(
        [JOBGATE, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_sweep_of_20_is_one_table(gateway: Gateway, home: Path, database_url: str) -> None:
    jobs = [
        gateway.submit(job_type=SWEEP, job_params={"x": x / 4}, key=f"sweep-{x}", labels={"s": "1"})
        for x in range(20)
    ]
    assert {j.wait(WAIT) for j in jobs} == {JobState.COMPLETED}
    rows = gateway.results(job_type=SWEEP)
    assert sorted(r["data"]["x"] for r in rows) == [x / 4 for x in range(20)]
    assert all(r["error"] is None and "area" in r["data"] for r in rows)

    out = jobgate(home, database_url, "results", "--job-type", SWEEP, "--csv").stdout
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == 20 and {r["job_id"] for r in table} == {j.id for j in jobs}
    assert sorted(float(r["x"]) for r in table) == [x / 4 for x in range(20)]


def test_taco_by_the_cli_with_a_params_file(home: Path, database_url: str, tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"wrapper": "soft_corn", "fillings": ["carne", "salsa"]}))
    run = jobgate(
        home, database_url, "submit", "--wait", "--json", "--type", "examples.jobtypes.taco",
        "--params-file", str(params), "--key", "lunch",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    shown = jobgate(home, database_url, "results", "--json", json.loads(run.stdout)["id"])
    assert json.loads(shown.stdout)["data"] == {
        "wrapper": "soft_corn",
        "fillings": ["carne", "salsa"],
    }
    bad = jobgate(home, database_url, "submit", "--type", SWEEP, "-P", "x=far")
    assert bad.returncode == 2 and bad.stderr.startswith("jobgate: error: job_params.x: ")


def test_entry_points_register_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package names its types in the `jobgate.job_types` entry-point group."""
    from jobgate.service.jobtypes import JobTypes

    install_entry_points(
        tmp_path, "labtypes", "[jobgate.job_types]\nlab-echo = examples.jobtypes.echo\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    types = JobTypes({}, any_module=False)
    assert "lab-echo" in types.names()
    assert types.get("lab-echo").parse_results is not None  # MissionControl's parse_work_dir
    with pytest.raises(SpecError, match=r"unknown job type 'examples\.jobtypes\.echo'"):
        types.get("examples.jobtypes.echo")  # a server imports only what is registered
