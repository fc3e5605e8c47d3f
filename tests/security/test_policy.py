"""Raw scheduler directives cannot override what jobgate decides (time, name, output,
array, partition, export, ...), in any spelling sbatch or qsub would read; and a job that
gives no walltime is held to its destination's limit all the same."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.conftest import Server, is_problem, running_server

CONFIG = """\
[destinations.slurm]
scheduler = "slurm"
capacity = 4
max_walltime_s = 3600
partitions = ["debug"]

[destinations.pbs]
scheduler = "pbs"
capacity = 4

[destinations.short]
capacity = 2
max_walltime_s = 3
"""

SLURM = [
    "--time=99-00:00:00",  # past max_walltime_s
    "-t 99-00:00:00",
    "--outp=/tmp/elsewhere",  # an abbreviation sbatch accepts for --output
    "--output=x",
    "-o x",
    "-J renamed",  # the name jobgate finds its jobs by
    "-Jrenamed",
    "--job-nam=renamed",
    "-a0-3",  # an array, attached
    "--array=0-3",
    "--partition=secret",  # past the partitions list
    "-p secret",
    "--export=ALL,LD_PRELOAD=/tmp/x.so",
    "--chdir=/",
    "--dependency=afterok:1",
    "--wrap=id",
    "--comment=x",
    "--mail-type=END --time=99-00:00:00",  # a second option hidden in one directive
    "#SBATCH --time=99-00:00:00",
]
PBS = [
    "-N renamed",
    "-o /tmp/elsewhere",
    "-e /tmp/elsewhere",
    "-j oe",
    "-J 0-3",
    "-t 0-3",
    "-l walltime=999:00:00",
    "-l cput=999:00:00",  # becomes the time limit on Slurm's wrappers
    "-V",  # exports the gateway's whole environment
    "-v LD_PRELOAD=/tmp/x.so",
    "-W depend=afterok:1",
    "-q secret",
    "#PBS -l walltime=999:00:00",
]


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("policy"), database_url, CONFIG) as srv:
        yield srv


@pytest.mark.parametrize(
    ("destination", "directive"),
    [("slurm", d) for d in SLURM] + [("pbs", d) for d in PBS],
)
def test_a_directive_that_overrides_jobgate_is_refused(
    server: Server, destination: str, directive: str
) -> None:
    before = server.client("alice").get("/jobs").json()["items"]
    spec = {
        "script": "true",
        "destination": destination,
        "resources": {
            "directives": ["--mail-type=END" if destination == "slurm" else "-m e", directive]
        },
    }
    res = server.client("alice").post("/jobs", json=spec)
    is_problem(res, 422, "resources.directives.1")
    assert server.client("alice").get("/jobs").json()["items"] == before


def test_a_job_without_walltime_is_stopped_at_the_destinations_limit(server: Server) -> None:
    job = server.submit("alice", script="exec sleep 300", destination="short")
    assert job["resources"]["walltime_s"] == 3  # stored with the job at submit
    done = server.wait("alice", job["id"])
    assert (done["state"], done["reason"]) == ("TIMEOUT", "walltime exceeded")
