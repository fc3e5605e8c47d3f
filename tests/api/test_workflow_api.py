"""Reason codes, dependencies and arrays through the REST API: a job's reason_code, a
dependency on an unknown or someone else's job as 422 naming the field, the dependent
job waiting (NEW) then running, and an array's tasks at GET /jobs/{id}/tasks."""

from __future__ import annotations

from api.conftest import Server, is_problem


def test_dependencies_and_reason_codes(server: Server) -> None:
    first = server.submit("alice", script="exit 3")
    then = server.submit("alice", script="true", depends_on={"afterany": [first["id"]]})
    assert then["state"] in ("NEW", "QUEUED", "STAGING_IN", "RUNNING", "COMPLETED")
    assert server.wait("alice", then["id"])["state"] == "COMPLETED"
    ended = server.job("alice", first["id"])
    assert (ended["state"], ended["reason_code"], ended["exit_code"]) == ("FAILED", "EXIT_CODE", 3)
    unknown = server.client("alice").post(
        "/jobs", json={"script": "true", "depends_on": {"afterok": ["01M8Y1ECY17PHVSQGEVM8YCXER"]}}
    )
    is_problem(unknown, 422, "depends_on.afterok")
    theirs = server.client("bob").post(
        "/jobs", json={"script": "true", "depends_on": {"afterok": [first["id"]]}}
    )
    assert "of yours" in is_problem(theirs, 422, "depends_on.afterok")["detail"]


def test_an_arrays_tasks(server: Server) -> None:
    job = server.submit(
        "alice", script='[ "$JOBGATE_ARRAY_TASK_ID" != 1 ]', resources={"array": "0-2"}
    )
    assert server.wait("alice", job["id"])["state"] == "FAILED"
    res = server.client("alice").get(f"/jobs/{job['id']}/tasks")
    assert res.status_code == 200
    assert [(t["index"], t["state"], t["exit_code"]) for t in res.json()] == [
        (0, "COMPLETED", 0), (1, "FAILED", 1), (2, "COMPLETED", 0),
    ]  # fmt: skip
    assert server.client("bob").get(f"/jobs/{job['id']}/tasks").status_code == 404


def test_a_batch_is_one_request_and_all_or_nothing(server: Server) -> None:
    client = server.client("alice")
    res = client.post("/jobs:batch", json={"jobs": [{"script": f"echo {i}"} for i in range(50)]})
    assert res.status_code == 201, res.text
    jobs = res.json()["jobs"]
    assert len({j["id"] for j in jobs}) == 50 and all(j["owner"] == "alice" for j in jobs)
    assert server.wait("alice", jobs[49]["id"])["state"] == "COMPLETED"
    before = client.get("/jobs", params={"limit": 1}).json()["items"][0]["id"]
    bad = client.post(
        "/jobs:batch", json={"jobs": [{"script": "true"}, {"script": "true", "shebang": "no"}]}
    )
    is_problem(bad, 422, "jobs[1].shebang")
    assert (
        client.get("/jobs", params={"limit": 1}).json()["items"][0]["id"] == before
    )  # none stored
    is_problem(client.post("/jobs:batch", json={"jobs": []}), 422, "jobs")
