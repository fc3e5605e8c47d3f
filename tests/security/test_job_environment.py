"""Through a real `jobgate serve`: a variable exported to the server never reaches a job's
environment, nor does the server's own configuration (JOBGATE_HOME, the database URL);
a refused directive is a 422 naming it, before anything runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.conftest import Server, is_problem, running_server

MARKER = "JOBGATE_TEST_MARKER_SECRET"
CONFIG = """\
[destinations.local]
capacity = 4
pass_env = ["JOBGATE_TEST_PASSED"]

# Never submitted to here: only refused.
[destinations.cluster]
scheduler = "slurm"
"""


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {MARKER: "leak", "JOBGATE_TEST_PASSED": "yes"}
    with running_server(tmp_path_factory.mktemp("env"), database_url, CONFIG, env) as srv:
        yield srv


def test_a_job_gets_none_of_the_servers_environment(server: Server) -> None:
    job_id = server.submit("alice", script="env -0", environment={"MINE": "1"})["id"]
    job = server.wait("alice", job_id)
    assert job["state"] == "COMPLETED"
    out = server.client("alice").get(f"/jobs/{job_id}/logs/stdout").text
    env = dict(item.split("=", 1) for item in out.split("\0") if item)
    assert MARKER in server.env  # the server had it...
    assert MARKER not in env and "leak" not in env.values()  # ...the job does not
    for own in ("JOBGATE_HOME", "JOBGATE_DATABASE_URL", "JOBGATE_CONFIG"):
        assert own not in env
    assert (env["MINE"], env["JOBGATE_TEST_PASSED"], env["JOBGATE_JOB_ID"]) == ("1", "yes", job_id)
    assert Path(env["JOBGATE_RUN_DIR"]).name == job_id and env["PATH"] and env["HOME"]


def test_a_refused_directive_is_a_422_naming_it(server: Server) -> None:
    alice = server.client("alice")
    for directive in ("--outp=/tmp/x", "-a0-3", "--time=99-00:00:00"):
        spec = {
            "script": "true",
            "destination": "cluster",
            "resources": {"directives": ["--mail-type=END", directive]},
        }
        body = is_problem(alice.post("/jobs", json=spec), 422, "resources.directives.1")
        assert "is set by jobgate itself" in str(body), body
    assert alice.get("/jobs", params={"destination": "cluster"}).json()["items"] == []
