"""The drop-in APIs against a real `jobgate serve`, on SQLite and PostgreSQL: the
joblauncher README's curl flow run as written (tests/data/compat/joblauncher_readme.sh),
and a CyberGIS job-supervisor client's flow (secret token, submit, list, events, logs)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import running_server
from conftest import make_config, which
from jobgate.api.compat.joblauncher import JobSubmitRequest, jobdir_roots, status_of, to_spec
from jobgate.errors import SpecError
from jobgate.spec import JobRecord, JobSpec
from jobgate.states import JobState

README_FLOW = Path(__file__).parent.parent / "data" / "compat" / "joblauncher_readme.sh"
TIMEOUT = httpx.Timeout(60.0)  # a safety net against a hung server, never a pass condition
JL = "/compat/joblauncher"
CG = "/compat/cybergis"


@dataclass
class Server:
    url: str
    tokens: dict[str, str]
    jobdirs: Path  # JOBGATE_COMPAT_JOBDIRS is jobdirs/{user}
    log: list[str] = field(default_factory=list)

    def client(self, user: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT)

    def jobdir(self, user: str, name: str) -> Path:
        path = self.jobdirs / user / name
        path.mkdir(parents=True)
        return path


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    """`jobgate serve` on this store (api.conftest.running_server), with tokens for alice
    and bob."""
    jobdirs = {"JOBGATE_COMPAT_JOBDIRS": str(tmp_path / "jobdirs" / "{user}")}
    config = "[destinations.local]\ncapacity = 8\n"
    with running_server(tmp_path, database_url, config, jobdirs) as srv:
        yield Server(srv.base_url, srv.tokens, tmp_path / "jobdirs", srv.log)


def problem(res: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert res.status_code == status, (res.status_code, res.text)
    assert res.headers["content-type"].startswith("application/problem+json"), res.headers
    body: dict[str, Any] = res.json()
    if field is not None:
        assert body.get("field") == field, body
    return body


# -- joblauncher -----------------------------------------------------------------------------


def test_joblauncher_readme_flow_verbatim(server: Server) -> None:
    if not which("curl"):
        pytest.skip("no curl")
    workdir = server.jobdirs / "alice"
    workdir.mkdir(parents=True)
    env = {
        **os.environ,
        "BASE": server.url + JL,
        "TOKEN": server.tokens["alice"],
        "WORKDIR": str(workdir),
    }
    run = subprocess.run(
        ["bash", str(README_FLOW)], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr

    head, _, body = (workdir / "submit.txt").read_bytes().decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {k.lower(): v for k, _, v in (x.partition(": ") for x in lines[1:])}
    assert lines[0] == "HTTP/1.1 201 Created"
    assert headers["location"].startswith(f"{server.url}{JL}/job/")
    assert headers["content-length"] == "0" and body == ""
    assert headers["content-type"] == "application/json"

    myjob = workdir / "myjob"
    done = json.loads((workdir / "status.json").read_text())
    assert done["status"] == {
        "state": "DONE",
        "exitCode": 0,
        "exception": None,
        "running": False,
        "done": True,
        "schedulerSpecficInformation": done["status"]["schedulerSpecficInformation"],
    }
    query = json.loads((myjob / "query.json").read_text())
    assert {k: done["request"][k] for k in query} == query
    # The job ran in jobdir: its stdout and output file are where the client looks.
    stdout = (myjob / "stdout.txt").read_text().splitlines()
    assert stdout[0] == socket.gethostname() and len(stdout) == 2  # hostname; date
    assert (myjob / "output_file").read_text() == "1 input_file\n"
    assert (myjob / "stderr.txt").read_text() == ""

    assert (workdir / "cancel.txt").read_text() == "204"
    killed = json.loads((workdir / "killed.json").read_text())["status"]
    assert killed["state"] == "KILLED" and killed["exception"] == "Process cancelled by user."
    assert killed["done"] is True and killed["running"] is False and killed["exitCode"] is None


def test_joblauncher_owner_list_and_refusals(server: Server) -> None:
    alice, bob, anon = server.client("alice"), server.client("bob"), server.client(None)
    jobdir = server.jobdir("alice", "j1")
    (jobdir / "in.txt").write_text("x\n")
    request = {
        "jobdir": str(jobdir) + "/",  # joblauncher's docs say it must end with '/'
        "executable": "/bin/sh",
        "arguments": ["-c", "cat in.txt; exit 3"],
        "prestaged": ["in.txt"],
        "max_time": 5,
    }
    res = alice.post(f"{JL}/job", json=request)
    assert res.status_code == 201, res.text
    url = res.headers["location"]
    job_id = url.rsplit("/", 1)[1]

    assert alice.get(f"{JL}/job").json() == [url]
    assert bob.get(f"{JL}/job").json() == []
    problem(bob.get(url), 404)  # not 403: others' jobs do not exist for you
    problem(bob.delete(url), 404)
    problem(anon.get(url), 401)
    problem(anon.post(f"{JL}/job", json=request), 401)

    # A program that exits non-zero is DONE with its exitCode, as Xenon reported it.
    status = _poll_done(alice, url)
    assert status["status"]["state"] == "DONE" and status["status"]["exitCode"] == 3
    assert status["request"]["jobdir"] == request["jobdir"]  # echoed as written
    assert status["request"]["max_time"] == 5 and status["request"]["prestaged"] == ["in.txt"]
    assert (jobdir / "stdout.txt").read_text() == "x\n"
    # The same job through the native API: one job, two views.
    native = alice.get(f"/api/v1/jobs/{job_id}").json()
    assert native["state"] == "FAILED" and native["labels"]["compat"] == "joblauncher"

    outside = server.jobdirs / "bob"
    outside.mkdir()
    (server.jobdirs / "alice" / "link").symlink_to(outside)
    canary = server.jobdirs.parent / "canary"  # outside every user's area; never a host file
    canary.write_text("canary\n")
    (jobdir / "secret").symlink_to(canary)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"jobdir": str(outside)}, "jobdir"),  # bob's root, not alice's
        ({"jobdir": str(server.jobdirs / "alice" / "link")}, "jobdir"),  # leads out
        ({"prestaged": ["secret"]}, "prestaged.0"),  # leads out
        ({"jobdir": "relative/dir"}, "jobdir"),
        ({"jobdir": str(jobdir / "nope")}, "jobdir"),
        ({"prestaged": ["in.txt", "missing"]}, "prestaged.1"),
        ({"prestaged": [str(canary)]}, "prestaged.0"),  # joblauncher read any path
        ({"poststaged": ["../escape"]}, "poststaged.0"),
        ({"stdout": str(server.jobdirs.parent / "written")}, "stdout"),
        ({"launcher": "nowhere"}, "launcher"),
        ({"status_callback_url": "ftp://x"}, "status_callback_url"),
        ({"max_time": 0}, "max_time"),
        ({"arguments": ["a\x00b"]}, "arguments.0"),  # PostgreSQL text cannot hold NUL
        ({"status_callback_url": "http://x/\x00"}, "status_callback_url"),
        ({"unknown": 1}, "unknown"),
    ]
    for bad, name in cases:
        body = problem(alice.post(f"{JL}/job", json={**request, **bad}), 422, name)
        assert body["detail"], body
    assert not (server.jobdirs.parent / "written").exists()  # refused: nothing ran


def test_joblauncher_needs_a_destination_sharing_files(tmp_path: Path) -> None:
    """jobdir is a path on the gateway's host: a job elsewhere could not run in it."""
    config = make_config(
        tmp_path, "sqlite://", local={}, far={"scheduler": "ssh", "host": "far.example"}
    )
    (tmp_path / "jobdirs" / "alice").mkdir(parents=True)
    body = JobSubmitRequest(
        jobdir=str(tmp_path / "jobdirs" / "alice"), executable="/bin/true", launcher="far"
    )
    with pytest.raises(SpecError) as err:
        to_spec(body, config, "alice")
    assert err.value.field == "launcher"
    assert to_spec(body.model_copy(update={"launcher": "local"}), config, "alice")
    assert jobdir_roots(config, "..") == []  # a user name never leads out of the root


@pytest.mark.parametrize(
    ("state", "exit_code", "expected"),
    [
        (JobState.QUEUED, None, ("PENDING", None, False, False)),
        (JobState.SUBMITTED, None, ("PENDING", None, False, False)),
        (JobState.RUNNING, None, ("RUNNING", None, True, False)),
        (JobState.STAGING_OUT, 0, ("RUNNING", None, True, False)),
        (JobState.COMPLETED, 0, ("DONE", 0, False, True)),
        (JobState.FAILED, 2, ("DONE", 2, False, True)),  # the program said so: Xenon's DONE
        (JobState.FAILED, 0, ("ERROR", None, False, True)),  # e.g. an output file missing
        (JobState.CANCELLED, None, ("KILLED", None, False, True)),
        (JobState.TIMEOUT, None, ("KILLED", None, False, True)),
        (JobState.LOST, None, ("ERROR", None, False, True)),
        (JobState.REJECTED, None, ("ERROR", None, False, True)),
    ],
)
def test_joblauncher_states(
    state: JobState, exit_code: int | None, expected: tuple[str, int | None, bool, bool]
) -> None:
    job = JobRecord(
        id="01J",
        name=None,
        owner="alice",
        destination="local",
        state=state,
        exit_code=exit_code,
        reason="why",
        spec=JobSpec(executable="/bin/true"),
        created_at=datetime.now(UTC),
    )
    status = status_of(job)
    assert (status["state"], status["exitCode"], status["running"], status["done"]) == expected
    assert (status["exception"] is not None) == (status["state"] in ("KILLED", "ERROR"))


def _poll_done(client: httpx.Client, url: str) -> dict[str, Any]:
    """Bounded polling of a joblauncher status URL, as its clients do."""
    for _ in range(600):
        body: dict[str, Any] = client.get(url).json()
        if body["status"]["done"]:
            return body
        threading.Event().wait(0.1)
    raise AssertionError(f"not done: {body}")


# -- CyberGIS job-supervisor -----------------------------------------------------------------


def test_cybergis_flow(server: Server) -> None:
    token = server.tokens["alice"]
    anon = server.client(None)
    # A job-supervisor client's login, with the jobgate token as its password.
    res = anon.post(
        f"{CG}/guard/secretToken",
        json={"destination": "local", "user": "alice", "password": token},
    )
    assert res.status_code == 200, res.text
    assert res.json() == {"secretToken": token}
    alice = server.client("alice")
    assert alice.post(f"{CG}/guard/secretToken", json={"destination": "local"}).json() == {
        "secretToken": token
    }

    manifest = {
        "dest": "local",
        "env": {"A": 1, "B": "B", "C": True},
        "payload": {"scripts": ['echo "A=$A B=$B C=$C"', "echo second"]},
    }
    res = alice.post(f"{CG}/supervisor", json=manifest)
    assert res.status_code == 201, res.text
    job = res.json()
    assert job == {**manifest, "uid": "alice", "id": job["id"]}
    assert res.headers["location"] == f"{server.url}{CG}/supervisor/{job['id']}"
    # The token in `aT`, where job-supervisor clients put their access token (GET body).
    failing = anon.post(
        f"{CG}/supervisor",
        json={"aT": token, "dest": "local", "payload": {"scripts": ["false", "echo never"]}},
    ).json()

    ok = _poll_ended(anon, job["id"], token)
    assert [e["type"] for e in ok["events"]] == [
        "JOB_QUEUED",
        "JOB_REGISTERED",
        "JOB_INITIALIZED",
        "JOB_ENDED",
    ]
    assert all(e["at"].endswith("Z") and f"[{job['id']}]" in e["message"] for e in ok["events"])
    assert [log["message"] for log in ok["logs"]] == ["A=1 B=B C=true", "second"]

    bad = _poll_ended(anon, failing["id"], token)
    assert bad["events"][-1]["type"] == "JOB_FAILED" and bad["logs"] == []

    listed = alice.get(f"{CG}/supervisor").json()
    assert list(listed["events"]) == [job["id"], failing["id"]]
    assert listed["events"][job["id"]] == ok["events"] and listed["logs"][job["id"]] == ok["logs"]
    assert server.client("bob").get(f"{CG}/supervisor").json() == {"events": {}, "logs": {}}
    assert "local" in alice.get(f"{CG}/supervisor/destination").json()["destinations"]


def test_cybergis_refusals(server: Server) -> None:
    alice, bob, anon = server.client("alice"), server.client("bob"), server.client(None)
    job = alice.post(
        f"{CG}/supervisor", json={"dest": "local", "payload": {"scripts": ["true"]}}
    ).json()
    body = problem(bob.get(f"{CG}/supervisor/{job['id']}"), 404)
    assert body["error"] and body["messages"]  # what job-supervisor clients read
    # Its own hourly access token needs the secret in clear text on the server: refused.
    jat = "bWQ1.eyJkYXRlIjoyMDIwMDgxMjAyfQ==.af415c396e9a21cb725c1a8e1e79e049"
    body = problem(anon.request("GET", f"{CG}/supervisor", json={"aT": jat}), 401)
    assert "access tokens are not accepted" in body["error"]
    problem(anon.get(f"{CG}/supervisor"), 401)
    problem(
        anon.post(f"{CG}/guard/secretToken", json={"destination": "local", "password": "x"}), 401
    )
    problem(
        alice.post(f"{CG}/guard/secretToken", json={"destination": "local", "user": "bob"}), 401
    )
    problem(alice.post(f"{CG}/guard/secretToken", json={"destination": "mars"}), 422, "destination")
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({"dest": "mars", "payload": {"scripts": ["true"]}}, "dest"),
        ({"dest": "local", "payload": {}}, "payload.scripts"),
        ({"dest": "local", "payload": {"scripts": "true"}}, "payload.scripts"),
        ({"dest": "local", "file": "upload-1", "payload": {"scripts": ["true"]}}, "file"),
        ({"dest": "local", "env": {"A": {"x": 1}}, "payload": {"scripts": ["true"]}}, None),
        ({"dest": "local", "env": {"1A": "x"}, "payload": {"scripts": ["true"]}}, "env"),
        ({"dest": "local", "payload": {"scripts": ["true", "a\x00"]}}, "payload.scripts.1"),
    ]
    for bad, name in cases:
        body = problem(alice.post(f"{CG}/supervisor", json=bad), 422, name)
        assert body["error"], body


def _poll_ended(client: httpx.Client, job_id: str, token: str) -> dict[str, Any]:
    """Bounded polling, as job-supervisor clients do: until the last event ends the job."""
    for _ in range(600):
        body: dict[str, Any] = client.request(
            "GET", f"{CG}/supervisor/{job_id}", json={"aT": token}
        ).json()
        if body["events"] and body["events"][-1]["type"] in ("JOB_ENDED", "JOB_FAILED"):
            return body
        threading.Event().wait(0.1)
    raise AssertionError(f"not ended: {body}")
