"""A user's paths stay in the user's area: a file outside the run directory, named through
any path a request can carry, or reached through a link a job made, is never read,
written or served by the gateway - refused at submit with the field named, or confined."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from api.conftest import Gate, Server, is_problem
from security.conftest import Canary


def _no_new_jobs(server: Server, user: str, before: list[str]) -> None:
    after = [j["id"] for j in server.client(user).get("/jobs").json()["items"]]
    assert after == before, "a refused request created a job"


def _ids(server: Server, user: str) -> list[str]:
    return [j["id"] for j in server.client(user).get("/jobs").json()["items"]]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"stdout": "{canary}"}, "stdout"),
        ({"stderr": "{canary}"}, "stderr"),
        ({"stdin": "{canary}"}, "stdin"),
        ({"directory": "{folder}"}, "directory"),
        ({"directory": "/nonexistent", "stdout": "{canary}"}, "directory"),
        ({"stdout": "../../../{name}"}, "stdout"),
        ({"directory": "../other-job", "stdout": "x"}, "directory"),
        ({"output_files": ["../{name}"]}, "output_files.0"),
        ({"output_files": ["{canary}"]}, "output_files.0"),
    ],
)
def test_a_canary_named_through_a_path_field_is_refused_at_submit(
    server: Server, canary: Canary, spec: dict[str, Any], field: str
) -> None:
    filled = json.loads(
        json.dumps(spec)
        .replace("{canary}", str(canary.path))
        .replace("{folder}", str(canary.folder))
        .replace("{name}", canary.path.name)
    )
    before = _ids(server, "alice")
    res = server.client("alice").post("/jobs", json={"script": "cat; echo hi", **filled})
    is_problem(res, 422, field)
    _no_new_jobs(server, "alice", before)
    assert canary.intact()


def test_joblauncher_paths_stay_in_the_jobdir(server: Server, canary: Canary) -> None:
    jobdir = server.home / "jobdirs" / "alice"
    jobdir.mkdir(parents=True, exist_ok=True)
    base = {"executable": "/bin/true", "jobdir": str(jobdir)}
    cases = [
        ({"jobdir": str(canary.folder)}, "jobdir"),
        ({"stdout": str(canary.path)}, "stdout"),
        ({"stderr": f"../../../{canary.path.name}"}, "stderr"),
        ({"poststaged": ["../canary.txt"]}, "poststaged.0"),
        ({"prestaged": [str(canary.path)]}, "prestaged.0"),
    ]
    url = f"{server.base_url}/compat/joblauncher/job"
    for change, field in cases:
        res = httpx.post(url, json={**base, **change}, headers=server.auth("alice"))
        is_problem(res, 422, field)
    assert canary.intact()


def test_cybergis_bodies_name_no_path_and_bad_text_creates_no_job(
    server: Server, canary: Canary
) -> None:
    url = f"{server.base_url}/compat/cybergis/supervisor"
    headers = {**server.auth("alice"), "Content-Type": "application/json"}
    before = _ids(server, "alice")
    upload = {"dest": "local", "file": str(canary.path), "payload": {"scripts": ["true"]}}
    is_problem(httpx.post(url, json=upload, headers=headers), 422, "file")
    surrogate = b'{"dest": "local", "payload": {"scripts": ["echo \\ud800"]}}'
    is_problem(httpx.post(url, content=surrogate, headers=headers), 422)
    nul = b'{"dest": "local", "env": {"A": "x\\u0000y"}, "payload": {"scripts": ["true"]}}'
    is_problem(httpx.post(url, content=nul, headers=headers), 422)
    _no_new_jobs(server, "alice", before)
    assert canary.intact()


def test_links_a_job_makes_are_never_followed(server: Server, canary: Canary) -> None:
    """Its files route, its logs and its stage-out refuse a link wherever it stands."""
    script = (
        f"ln -s {canary.path} leak1 && ln -s {canary.folder} leakdir && mkdir -p sub && "
        f"ln -s {canary.path} sub/leak2 && exec >&- && rm -f stdout && ln -s {canary.path} stdout"
    )
    job = server.submit("alice", script=script, output_files=["leak1"])
    done = server.wait("alice", job["id"])
    assert done["state"] == "FAILED" and "leak1" in done["reason"], done
    client = server.client("alice")
    listed = client.get(f"/jobs/{job['id']}/files").json()
    assert not {"leak1", "leakdir", "sub/leak2", "stdout"} & set(listed), listed
    for path in ("leak1", "leakdir/canary.txt", "sub/leak2", "outputs/leak1", "stdout"):
        is_problem(client.get(f"/jobs/{job['id']}/files/{path}"), 404)
    is_problem(client.get(f"/jobs/{job['id']}/logs/stdout"), 404)
    assert not (server.home / "runs" / job["id"] / "outputs" / "leak1").exists()
    assert canary.intact()


def test_a_swap_to_a_link_never_wins_the_race(
    server: Server, canary: Canary, gates: Callable[[], Gate]
) -> None:
    """The job swaps `x` between a file of its own and a link to the canary as fast as it
    can; the files route opens once and serves what it opened: 0 of 400 reads leak."""
    gate = gates()
    script = (
        "echo mine > x; " + gate.wait + "; "
        f"while :; do ln -sfn {canary.path} x.new; mv -fT x.new x; "
        "echo mine > x.new; mv -fT x.new x; done"
    )
    job = server.submit("alice", script=script)
    gate.open()  # the swapping loop starts now
    client = server.client("alice")
    answers = [client.get(f"/jobs/{job['id']}/files/x") for _ in range(400)]
    client.delete(f"/jobs/{job['id']}")
    leaked = [a for a in answers if canary.text in a.text]
    assert leaked == []
    assert {a.status_code for a in answers} <= {200, 404}
    assert any(a.status_code == 200 and a.text == "mine\n" for a in answers)  # it did serve
    assert canary.intact()


def test_a_fifo_for_stdout_hangs_no_request(server: Server, gates: Callable[[], Gate]) -> None:
    """The job replaces its stdout with a FIFO: reading the log answers at once (it is not
    a regular file), and another user's request is answered within a second."""
    gate = gates()
    script = f"exec >&- && rm -f stdout && mkfifo stdout && {gate.wait} && exec sleep 300"
    job = server.submit("alice", script=script)
    gate.open()  # the FIFO is in place
    quick = httpx.Timeout(1.0)
    alice, bob = server.client("alice"), server.client("bob")
    is_problem(alice.get(f"/jobs/{job['id']}/logs/stdout", timeout=quick), 404)
    assert bob.get("/jobs", timeout=quick).status_code == 200
    assert httpx.get(f"{server.api}/healthz", timeout=quick).status_code == 200
    with alice.stream(
        "GET", f"/jobs/{job['id']}/logs/stdout", params={"follow": "true"}, timeout=quick
    ) as res:
        assert res.status_code in (200, 404)
        body = res.read()
    assert b'"text"' not in body  # nothing served from the FIFO
    alice.delete(f"/jobs/{job['id']}")
    assert server.wait("alice", job["id"])["state"] == "CANCELLED"


@pytest.mark.parametrize("make", ["mkfifo out", "mkdir out", "ln -s /dev/zero out"])
def test_an_output_that_is_no_regular_file_fails_the_job_and_frees_its_slot(
    server: Server, make: str
) -> None:
    job = server.submit("alice", script=make, output_files=["out"], destination="tiny")
    done = server.wait("alice", job["id"])
    assert done["state"] == "FAILED" and "output file out" in done["reason"], done
    after = server.submit("alice", script="echo next", destination="tiny")  # the one slot
    assert server.wait("alice", after["id"])["state"] == "COMPLETED"
