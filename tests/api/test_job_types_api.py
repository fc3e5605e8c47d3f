"""Job types through a real `jobgate serve`: only the types its configuration names (a
server does not import what a caller names), keys, bad params as 422 naming the param,
results per job and as pages, and whose results a user may see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.conftest import CONFIG, Server, is_problem, running_server
from jobgate import Client, JobState

REPO = Path(__file__).parents[2]
TYPES = """
[job_types]
echo = "examples.jobtypes.echo"
sweep = "examples.jobtypes.sweep"
"""


@pytest.fixture(scope="module")
def typed(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"PYTHONPATH": f"{REPO}:{REPO / 'tests' / 'data' / 'jobtypes'}"}
    with running_server(tmp_path_factory.mktemp("typed"), database_url, CONFIG + TYPES, env) as srv:
        yield srv


def test_submit_by_type_with_a_key(typed: Server) -> None:
    alice = typed.client("alice")
    body = {"job_type": "echo", "job_params": {"message": "hi"}, "key": "first"}
    res = alice.post("/jobs", json=body)
    assert res.status_code == 201, res.text
    job = res.json()
    again = alice.post("/jobs", json=body)
    assert (again.status_code, again.json()["id"]) == (200, job["id"])
    other = alice.post("/jobs", json={**body, "job_params": {"message": "ho"}})
    assert job["id"] in is_problem(other, 409)["detail"]
    bobs = typed.client("bob").post("/jobs", json=body)  # keys are per owner
    assert bobs.status_code == 201 and bobs.json()["id"] != job["id"]

    assert typed.wait("alice", job["id"])["state"] == "COMPLETED"
    res = alice.get(f"/jobs/{job['id']}/results")
    assert res.status_code == 200 and res.json()["data"] == {"output": "hi\n"}, res.text
    assert typed.client("bob").get(f"/jobs/{job['id']}/results").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"job_type": "sweep", "job_params": {"x": "far"}}, "job_params.x"),
        ({"job_type": "sweep"}, "job_params.x"),
        ({"job_type": "faulty_build", "job_params": {"what": "x"}}, "job_type"),  # not named
        ({"job_type": "os"}, "job_type"),
        ({"job_type": "echo", "script": "true"}, "job_type"),
        ({"job_type": "echo", "job_params": {}}, "job_params"),  # the builder's KeyError
        ({"script": "true", "job_params": {"a": 1}}, "spec"),
    ],
)
def test_bad_typed_submissions_are_422_naming_the_field(
    typed: Server, body: dict[str, object], field: str
) -> None:
    label = {"labels": {"bad": "typed"}}
    is_problem(typed.client("alice").post("/jobs", json={**body, **label}), 422, field)
    assert typed.client("alice").get("/jobs", params={"label": "bad=typed"}).json()["items"] == []


def test_results_pages_and_the_client(typed: Server) -> None:
    with Client(typed.base_url, typed.tokens["bob"]) as gw:
        jobs = [gw.submit(job_type="sweep", job_params={"x": x}, key=f"p{x}") for x in range(5)]
        assert {j.wait(60) for j in jobs} == {JobState.COMPLETED}
        assert (jobs[0].results() or {})["data"]["x"] == 0
        first = gw.results(job_type="sweep", limit=3)
        rest = gw.results(job_type="sweep", limit=3, cursor=first[-1]["job_id"])
    seen = [r["job_id"] for r in first + rest]
    assert seen == [j.id for j in reversed(jobs)]  # newest first, nothing twice
    page = typed.client("bob").get("/results", params={"job_type": "sweep", "limit": 3}).json()
    assert [r["job_id"] for r in page["items"]] == seen[:3] and page["next_cursor"] == seen[2]
    alices = typed.client("alice").get("/results", params={"job_type": "sweep"}).json()
    assert alices["items"] == []  # bob's results are bob's
    admins = typed.client("admin").get("/results", params={"job_type": "sweep"}).json()
    assert {r["job_id"] for r in admins["items"]} >= set(seen)
