"""The REST API of a real `jobgate serve`, on SQLite and on PostgreSQL: submit (JSON and
multipart), idempotency, listing, cancel, events and logs (JSON, byte offsets, SSE),
files, the system routes, OpenAPI, and errors as problem+json."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import Gate, Server, is_problem, sse
from jobgate.states import JobState

STATES = list(JobState.__members__)
MB = 1024 * 1024


def tag() -> str:
    return uuid.uuid4().hex[:12]


# -- submit ---------------------------------------------------------------------------------


def test_submit_gives_201_with_location_and_the_job_runs_to_its_end(server: Server) -> None:
    alice = server.client("alice")
    res = alice.post("/jobs", json={"script": "echo hello\nexit 3", "name": "three"})
    assert res.status_code == 201, res.text
    job = res.json()
    assert res.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert (job["owner"], job["state"], job["destination"]) == ("alice", "QUEUED", "local")
    assert not {"backend_data", "stop_reason", "gateway_id"} & set(job)  # internal fields
    assert job["run_dir"].endswith(f"/runs/{job['id']}")  # named at submit, stored once
    again = httpx.get(server.base_url + res.headers["location"], headers=server.auth("alice"))
    assert again.status_code == 200 and again.json()["id"] == job["id"]

    failed = server.wait("alice", job["id"])
    assert (failed["state"], failed["exit_code"]) == ("FAILED", 3)
    assert failed["finished_at"] and failed["started_at"] and failed["native_id"]
    ok = server.wait("alice", server.submit("alice", executable="/bin/true")["id"])
    assert (ok["state"], ok["exit_code"]) == ("COMPLETED", 0)


def test_idempotency_key(server: Server) -> None:
    alice, bob = server.client("alice"), server.client("bob")
    key = tag()
    spec = {"script": "true", "labels": {"t": key}}
    first = alice.post("/jobs", json=spec, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    job_id = first.json()["id"]

    again = alice.post("/jobs", json=spec, headers={"Idempotency-Key": key})
    assert again.status_code == 200 and again.json()["id"] == job_id
    assert again.headers["location"] == first.headers["location"]
    in_body = alice.post("/jobs", json={**spec, "idempotency_key": key})
    assert in_body.status_code == 200 and in_body.json()["id"] == job_id

    other = alice.post("/jobs", json={"script": "false"}, headers={"Idempotency-Key": key})
    assert job_id in is_problem(other, 409)["detail"]

    bobs = bob.post("/jobs", json=spec, headers={"Idempotency-Key": key})
    assert bobs.status_code == 201
    assert bobs.json()["id"] != job_id and bobs.json()["owner"] == "bob"
    listed = alice.get("/jobs", params={"label": f"t={key}"}).json()["items"]
    assert [j["id"] for j in listed] == [job_id]  # one job, however often it was sent


def test_idempotency_key_under_concurrent_requests(server: Server) -> None:
    key, spec = tag(), {"script": "true"}
    results: list[httpx.Response] = []

    def send() -> None:  # each thread its own connection: the requests really overlap
        with httpx.Client(headers=server.auth("alice"), timeout=60) as c:
            results.append(
                c.post(f"{server.api}/jobs", json=spec, headers={"Idempotency-Key": key})
            )

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in results}) == 1


def test_concurrent_submissions_are_each_stored_once_with_their_event(server: Server) -> None:
    """Concurrent POSTs share commits (group commit): each still gets its own job, stored
    and visible once the 201 is back, with its first event."""
    label = tag()
    results: list[httpx.Response] = []

    def send(i: int) -> None:
        with httpx.Client(headers=server.auth("alice"), timeout=60) as c:
            spec = {"executable": "/bin/true", "name": f"c{i}", "labels": {"batch": label}}
            res = c.post(f"{server.api}/jobs", json=spec)
            results.append(res)
            if res.status_code == 201:  # readable at once: committed before the answer
                results.append(c.get(f"{server.api}/jobs/{res.json()['id']}"))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200] * 24 + [201] * 24
    ids = {r.json()["id"] for r in results}
    assert len(ids) == 24
    alice = server.client("alice")
    listed = alice.get("/jobs", params={"label": f"batch={label}", "limit": 100}).json()["items"]
    assert sorted(j["name"] for j in listed) == sorted(f"c{i}" for i in range(24))
    for job_id in ids:  # each with its own first event, once
        types = [e["type"] for e in alice.get(f"/jobs/{job_id}/events").json()]
        assert types[0] == "QUEUED" and types.count("QUEUED") == 1


def test_multipart_submit_stages_the_uploaded_files(server: Server) -> None:
    blob = bytes(range(256)) * 4
    spec = {"script": "cat data.txt\nwc -c < conf/blob.bin\n", "name": "upload"}
    files = [("files", ("data.txt", b"hello upload\n")), ("files", ("conf/blob.bin", blob))]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    alice = server.client("alice")
    res = alice.post("/jobs", data={"spec": json.dumps(spec)}, files=files, headers=key)
    assert res.status_code == 201, res.text
    targets = [f["target"] for f in res.json()["spec"]["input_files"]]
    assert targets == ["data.txt", "conf/blob.bin"]
    job = server.wait("alice", res.json()["id"])
    assert job["state"] == "COMPLETED", job
    assert alice.get(f"/jobs/{job['id']}/logs/stdout").text == "hello upload\n1024\n"
    # A retry with the same key and the same files is the same job, not a conflict.
    again = alice.post("/jobs", data={"spec": json.dumps(spec)}, files=files, headers=key)
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    files[1] = ("files", ("conf/blob.bin", blob[::-1]))
    other = alice.post("/jobs", data={"spec": json.dumps(spec)}, files=files, headers=key)
    is_problem(other, 409)


@pytest.mark.parametrize(
    ("data", "files", "field"),
    [
        ({}, [("files", ("a.txt", b"x"))], "spec"),  # no spec part
        ({"spec": "{nope"}, [], "spec"),
        ({"spec": '{"script": "true", "input_files": [{"source": "/etc/passwd"}]}'}, [], "spec"),
        ({"spec": '{"script": 7}'}, [], "script"),
        ({"spec": '{"script": "true"}'}, [("files", ("../evil", b"x"))], "input_files.0.target"),
        ({"spec": '{"script": "true"}'}, [("files", ("CANARY", b"x"))], "input_files.0.target"),
    ],
    ids=["no-spec", "bad-json", "server-paths", "wrong-type", "dotdot-name", "absolute-name"],
)
def test_multipart_errors_name_the_field(
    server: Server, data: dict[str, str], files: list[Any], field: str, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"  # an absolute target: in a temporary folder, never the host's
    files = [(k, (str(canary) if n == "CANARY" else n, b)) for k, (n, b) in files]
    res = server.client("alice").post("/jobs", data=data, files=files or {"": ("", b"")})
    is_problem(res, 422, field)
    assert not canary.exists()


def _raw_post(server: Server, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
    """POST /api/v1/jobs with exactly these headers and (partial) body bytes."""
    host, port = server.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest("POST", "/api/v1/jobs")
        for name, value in {**server.auth("alice"), **headers}.items():
            conn.putheader(name, value)
        conn.endheaders()
        conn.send(body)
        res = conn.getresponse()
        return res.status, res.getheader("content-type", ""), res.read()
    finally:
        conn.close()


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=xyz", "application/json"])
def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(
    server: Server, content_type: str
) -> None:
    """The limit is 100 MB; the client says 101 MB and sends only a few bytes: the answer
    comes at once (the server does not wait for, or store, the rest)."""
    status, answer_type, body = _raw_post(
        server,
        {"Content-Type": content_type, "Content-Length": str(101 * MB)},
        b'--xyz\r\nContent-Disposition: form-data; name="spec"\r\n\r\n{}',
    )
    assert (status, answer_type) == (413, "application/problem+json")
    assert str(100 * MB) in json.loads(body)["detail"]


def test_a_chunked_upload_over_the_limit_is_refused_as_it_arrives(server: Server) -> None:
    """No Content-Length to check up front: the server counts while it reads, and answers
    once the limit is passed (here the client stops sending right after the limit)."""
    head = (
        b'--xyz\r\nContent-Disposition: form-data; name="spec"\r\n\r\n{"script": "true"}\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="big"\r\n\r\n'
    )
    chunk = b"x" * MB
    body = b"%x\r\n%s\r\n" % (len(head), head)
    body += b"%x\r\n%s\r\n" % (len(chunk), chunk) * 101
    status, answer_type, answer = _raw_post(
        server,
        {"Content-Type": "multipart/form-data; boundary=xyz", "Transfer-Encoding": "chunked"},
        body,
    )
    assert (status, answer_type) == (413, "application/problem+json")
    assert json.loads(answer)["title"] == "Request body too large"


def test_a_client_leaving_mid_body_is_not_a_server_error(server: Server) -> None:
    """(What wrk's connections do when it stops.) The module's server fixture fails its
    teardown if the server logged an error for it."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in server.auth("alice").items())
        sock.sendall(
            f"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n{head}"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
        )
    assert server.client("alice").get("/healthz").status_code == 200


# -- list -----------------------------------------------------------------------------------


def test_list_filters(server: Server) -> None:
    t = tag()
    alice = server.client("alice")

    def made(labels: dict[str, str] | None = None, **spec: Any) -> str:
        job_id: str = server.submit("alice", **spec, labels={"t": t, **(labels or {})})["id"]
        return job_id

    a = made(script="true", name="alpha", labels={"kind": "ok"})
    b = made(script="exit 4", name="beta", labels={"kind": "bad"})
    c = made(script="true", name="alpha", destination="tiny")
    jobs = {i: server.wait("alice", i) for i in (a, b, c)}
    assert [jobs[i]["state"] for i in (a, b, c)] == ["COMPLETED", "FAILED", "COMPLETED"]

    def ids(user: str = "alice", **params: Any) -> list[str]:
        labels = [f"t={t}", *params.pop("label", [])]
        res = server.client(user).get("/jobs", params={"label": labels, **params})
        assert res.status_code == 200, res.text
        return [j["id"] for j in res.json()["items"]]

    assert ids() == [c, b, a]  # newest first
    assert ids(state="FAILED") == [b]
    assert ids(state=["COMPLETED", "FAILED"]) == [c, b, a]
    # states are the enum's own spelling; a wrong one names the field and the valid states
    bad = alice.get("/jobs", params={"state": "completed"})
    assert bad.status_code == 422 and bad.json()["field"] == "query.state.0"
    assert "'COMPLETED'" in bad.json()["detail"]
    assert ids(destination="", name="", label=[""]) == [c, b, a]  # empty filters: no filter
    assert ids(state="QUEUED") == []
    assert ids(destination="tiny") == [c]
    assert ids(name="alpha") == [c, a]
    assert ids(label=["kind=bad"]) == [b]
    assert ids(name="alpha", destination="local", state="COMPLETED") == [a]
    # created_since: between a's and b's creation (timestamps are floats: no exact match)
    ta = datetime.fromisoformat(jobs[a]["created_at"])
    tb = datetime.fromisoformat(jobs[b]["created_at"])
    assert ids(created_since=(ta + (tb - ta) / 2).isoformat()) == [c, b]
    assert ids(created_since=ta.replace(year=ta.year + 1).isoformat()) == []
    assert ids("bob") == []  # not bob's
    assert ids("admin") == [c, b, a]
    assert alice.get("/jobs", params={"owner": "bob", "label": f"t={t}"}).json()["items"]


def test_cursor_pagination_is_newest_first_without_duplicates_or_gaps(server: Server) -> None:
    t = tag()
    made = [server.submit("alice", executable="/bin/true", labels={"p": t})["id"] for _ in range(7)]
    for limit, sizes in ((3, [3, 3, 1]), (7, [7, 0]), (100, [7])):
        seen: list[str] = []
        pages = []
        cursor = None
        while True:
            params: dict[str, Any] = {"label": f"p={t}", "limit": limit}
            if cursor:
                params["cursor"] = cursor
            page = server.client("alice").get("/jobs", params=params).json()
            pages.append(len(page["items"]))
            seen += [j["id"] for j in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == made[::-1]
        assert pages == sizes
    # A job created while paging does not shift the pages after it (cursors are ids).
    first = server.client("alice").get("/jobs", params={"label": f"p={t}", "limit": 3}).json()
    newer = server.submit("alice", executable="/bin/true", labels={"p": t})["id"]
    rest = server.client("alice").get(
        "/jobs", params={"label": f"p={t}", "limit": 100, "cursor": first["next_cursor"]}
    )
    assert [j["id"] for j in rest.json()["items"]] == made[::-1][3:]
    assert newer not in [j["id"] for j in rest.json()["items"]]
    for job_id in [*made, newer]:
        server.wait("alice", job_id)


# -- cancel ---------------------------------------------------------------------------------


def test_delete_cancels_a_running_job_which_keeps_its_record(
    server: Server, gates: Callable[[], Gate]
) -> None:
    alice = server.client("alice")
    job = server.submit("alice", script=f"echo started\n{gates().wait}\necho never\n")
    server.wait_state("alice", job["id"], "RUNNING")
    res = alice.delete(f"/jobs/{job['id']}")
    assert res.status_code == 202, res.text
    assert res.json()["id"] == job["id"]

    done = server.wait("alice", job["id"])
    assert (done["state"], done["reason"]) == ("CANCELLED", "cancelled on request")
    types = [e["type"] for e in alice.get(f"/jobs/{job['id']}/events").json()]
    assert "cancel_requested" in types and types[-1] == "CANCELLED"
    assert "never" not in alice.get(f"/jobs/{job['id']}/logs/stdout").text
    again = alice.delete(f"/jobs/{job['id']}")  # cancelling a final job changes nothing
    assert again.status_code == 202 and again.json()["state"] == "CANCELLED"
    assert alice.get(f"/jobs/{job['id']}").json()["state"] == "CANCELLED"


def test_a_queued_job_waits_for_capacity_and_is_cancelled_at_once(
    server: Server, gates: Callable[[], Gate]
) -> None:
    alice = server.client("alice")
    gate = gates()
    holder = server.submit("alice", script=gate.wait, destination="tiny")["id"]
    server.wait_state("alice", holder, "RUNNING")
    queued = server.submit("alice", script="true", destination="tiny")["id"]

    job = alice.get(f"/jobs/{queued}").json()
    assert job["state"] == "QUEUED"
    assert job["waiting"] == "gateway capacity: 1 of 1 slots in use"
    tiny = {d["name"]: d for d in alice.get("/destinations").json()}["tiny"]
    assert (tiny["capacity"], tiny["active"], tiny["queued"]) == (1, 1, 1)

    res = alice.delete(f"/jobs/{queued}")
    assert res.status_code == 202 and res.json()["state"] == "CANCELLED"
    gate.open()
    assert server.wait("alice", holder)["state"] == "COMPLETED"
    assert alice.get(f"/jobs/{queued}").json()["state"] == "CANCELLED"  # never ran
    assert alice.get(f"/jobs/{queued}/logs/stdout").content == b""


# -- events and logs ------------------------------------------------------------------------


def test_events_and_logs_as_json_with_byte_offsets(server: Server) -> None:
    alice = server.client("alice")
    job_id = server.submit("alice", script="printf 'hello\\nwörld\\n'\necho oops >&2\n")["id"]
    server.wait("alice", job_id)

    events = alice.get(f"/jobs/{job_id}/events").json()
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    states = [e["type"] for e in events if e["type"] in STATES]
    assert states[0] == "QUEUED" and states[-1] == "COMPLETED"
    assert [STATES.index(s) for s in states] == sorted(STATES.index(s) for s in states)
    later = alice.get(f"/jobs/{job_id}/events", params={"after": seqs[0]}).json()
    assert later == events[1:]

    data = "hello\nwörld\n".encode()
    log = alice.get(f"/jobs/{job_id}/logs/stdout")
    assert log.status_code == 200 and log.content == data
    assert log.headers["content-type"].startswith("text/plain")
    assert int(log.headers["x-next-offset"]) == len(data)
    part = alice.get(f"/jobs/{job_id}/logs/stdout", params={"offset": 6, "limit": 2})
    assert part.content == data[6:8] and part.headers["x-next-offset"] == "8"
    rest = alice.get(f"/jobs/{job_id}/logs/stdout", params={"offset": 8})
    assert rest.content == data[8:] and int(rest.headers["x-next-offset"]) == len(data)
    end = alice.get(f"/jobs/{job_id}/logs/stdout", params={"offset": len(data) + 5})
    assert end.content == b"" and int(end.headers["x-next-offset"]) == len(data) + 5
    assert alice.get(f"/jobs/{job_id}/logs/stderr").text == "oops\n"
    is_problem(alice.get(f"/jobs/{job_id}/logs/jobgate.log"), 404)


def test_event_stream_follows_the_job_until_it_ends(
    server: Server, gates: Callable[[], Gate]
) -> None:
    gate = gates()
    job_id = server.submit("alice", script=gate.wait)["id"]
    events = []
    with server.client("alice").stream(
        "GET", f"/jobs/{job_id}/events", params={"follow": "true"}
    ) as res:
        assert res.status_code == 200
        assert res.headers["content-type"].startswith("text/event-stream")
        for event in sse(res):
            events.append(event)
            if event[0] == "RUNNING":
                gate.open()  # the job is live and the stream still open: let it end
            if event[0] == "end":
                break
    kinds = [e[0] for e in events]
    assert kinds[-1] == "end" and "RUNNING" in kinds
    states = [k for k in kinds if k in STATES]
    assert states[0] == "QUEUED" and states[-1] == "COMPLETED"
    assert [STATES.index(s) for s in states] == sorted(STATES.index(s) for s in states)
    for kind, data, seq in events[:-1]:
        body = json.loads(data)
        assert body["type"] == kind and str(body["seq"]) == seq
    # Resuming with Last-Event-ID replays only what came after it.
    running = next(e for e in events if e[0] == "RUNNING")
    with server.client("alice").stream(
        "GET",
        f"/jobs/{job_id}/events",
        headers={"Accept": "text/event-stream", "Last-Event-ID": str(running[2])},
    ) as res:
        resumed = [e[0] for e in sse(res)]
    assert resumed == kinds[kinds.index("RUNNING") + 1 :]


def test_log_stream_follows_until_the_job_ends(server: Server, gates: Callable[[], Gate]) -> None:
    gate = gates()
    script = f"echo first\nprintf 'a\\rb\\n'\n{gate.wait}\necho second\n"
    job_id = server.submit("alice", script=script)["id"]
    text, offsets, end = "", [], None
    with server.client("alice").stream(
        "GET", f"/jobs/{job_id}/logs/stdout", headers={"Accept": "text/event-stream"}
    ) as res:
        assert res.headers["content-type"].startswith("text/event-stream")
        for kind, data, last_id in sse(res):
            if kind == "end":
                end = json.loads(data)
                break
            assert kind == "log"
            chunk = json.loads(data)
            assert chunk["offset"] == len(text.encode())  # where this chunk starts
            text += chunk["text"]
            offsets.append(int(last_id or 0))
            if text == "first\na\rb\n":
                gate.open()  # seen live before the job could end
    assert text == "first\na\rb\nsecond\n"
    assert offsets[-1] == len(text.encode())  # ids are byte offsets to resume from
    assert end == {"state": "COMPLETED"}
    # Resuming from an offset (Last-Event-ID) gives the rest.
    with server.client("alice").stream(
        "GET",
        f"/jobs/{job_id}/logs/stdout",
        params={"follow": "true"},
        headers={"Last-Event-ID": "6"},
    ) as res:
        rest = "".join(json.loads(d)["text"] for k, d, _ in sse(res) if k == "log")
    assert rest == text[6:]


# -- files ----------------------------------------------------------------------------------


def test_files_download_and_no_path_leaves_the_run_dir(server: Server) -> None:
    alice = server.client("alice")
    secret = server.home.parent / "secret.txt"
    secret.write_text("top secret\n")
    other = server.wait("bob", server.submit("bob", script="echo bobs")["id"])["id"]
    script = (
        "echo result > result.txt\nmkdir -p sub\necho deep > sub/deep.txt\n"
        f"ln -s {secret} leak\nln -s .. up\nln -s / root\n"
    )
    job_id = server.submit("alice", script=script, output_files=["result.txt"])["id"]
    assert server.wait("alice", job_id)["state"] == "COMPLETED"

    listed = alice.get(f"/jobs/{job_id}/files").json()
    assert {"result.txt", "outputs/result.txt", "sub/deep.txt", "stdout"} <= set(listed)
    assert "leak" not in listed  # a link out of the run directory is not one of its files
    for path, body in [("result.txt", b"result\n"), ("outputs/result.txt", b"result\n")]:
        res = alice.get(f"/jobs/{job_id}/files/{path}")
        assert res.status_code == 200 and res.content == body
    assert alice.get(f"/jobs/{job_id}/files/sub/deep.txt").content == b"deep\n"

    base = f"/api/v1/jobs/{job_id}/files"
    attempts = [
        f"{base}/../../../secret.txt",
        f"{base}/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        f"{base}/%2E%2E%2F%2E%2E%2F%2E%2E%2Fsecret.txt",
        f"{base}/sub/../../../../secret.txt",
        f"{base}/{secret}",  # absolute: .../files//tmp/.../secret.txt
        f"{base}/%2F{str(secret).lstrip('/')}",
        f"{base}/leak",  # a symlink the job made, pointing out
        f"{base}/up/{other}/stdout",  # through a link to the runs dir: bob's job
        f"{base}/root/etc/hostname",
        f"{base}/../{other}/stdout",
        f"{base}/sub",  # a directory
        f"{base}/missing.txt",
        f"{base}/result.txt%00.png",  # a NUL byte
        f"{base}/{'x' * 300}",  # a name longer than the file system allows
    ]
    for path in attempts:
        status, content_type, body = server.raw_get(path, "alice")
        assert (status, content_type) == (404, "application/problem+json"), (path, body)
        assert b"top secret" not in body and b"bobs" not in body


# -- system routes --------------------------------------------------------------------------


def test_me_shows_each_user_their_own_callback_secret(server: Server) -> None:
    seen = {}
    for user in ("alice", "bob", "admin"):
        me = server.client(user).get("/me").json()
        assert (me["user"], me["admin"]) == (user, user == "admin")
        assert len(me["callback_secret"]) >= 32
        assert server.client(user).get("/me").json() == me  # stable, not made per call
        seen[user] = me["callback_secret"]
    assert len(set(seen.values())) == 3


def test_healthz_destinations_and_metrics(server: Server, gates: Callable[[], Gate]) -> None:
    health = httpx.get(f"{server.api}/healthz")  # no token needed
    assert health.json() == {"status": "ok", "store": {"reads": True, "writes": True}}
    dests = {d["name"]: d for d in server.client("bob").get("/destinations").json()}
    assert {n: d["capacity"] for n, d in dests.items()} == {"local": 8, "tiny": 1, "counted": 4}
    assert all(d["scheduler"] == "local" and d["transport"] == "local" for d in dests.values())

    gate = gates()
    ids = [
        server.submit("alice", script=s, destination="counted")["id"]
        for s in ("true", "true", "exit 1", gate.wait)
    ]
    for job_id in ids[:3]:
        server.wait("alice", job_id)
    server.wait_state("alice", ids[3], "RUNNING")
    counts = _metrics(server)
    assert counts == {"COMPLETED": 2, "FAILED": 1, "RUNNING": 1}
    server.client("alice").delete(f"/jobs/{ids[3]}")
    server.wait("alice", ids[3])
    assert _metrics(server) == {"COMPLETED": 2, "FAILED": 1, "CANCELLED": 1}


def _metrics(server: Server) -> dict[str, int]:
    res = httpx.get(f"{server.api}/metrics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    text = res.text
    for family in ("jobgate_jobs gauge", "jobgate_submit_seconds histogram"):
        assert f"# TYPE {family}" in text
    assert int(text.split("jobgate_submit_seconds_count ")[1].split()[0]) >= 4
    counts = {}
    prefix = 'jobgate_jobs{destination="counted",state="'
    for line in text.splitlines():
        if line.startswith(prefix):
            state, _, n = line.removeprefix(prefix).partition('"} ')
            counts[state] = int(n)
    return counts


def test_openapi_document_and_docs_page(server: Server) -> None:
    doc = httpx.get(f"{server.api}/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/jobs"])
    assert "/api/v1/jobs/{job_id}/logs/{stream}" in paths
    body = paths["/api/v1/jobs"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/JobRequest"}
    assert "multipart/form-data" in body
    schemas = doc["components"]["schemas"]
    assert {"JobRequest", "JobSpec", "Resources", "JobOut"} <= set(schemas)
    # JSON bodies cannot carry uploads; the multipart form can.
    assert "input_files" not in schemas["JobRequest"]["properties"]
    page = httpx.get(f"{server.base_url}/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/api/v1/openapi.json" in page.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_need_nothing_outside_the_gateway(server: Server, page: str) -> None:
    """Every script, style sheet and image the page loads comes from the gateway itself
    (a machine without internet sees the same page), and each of them is there."""
    res = httpx.get(server.base_url + page)
    assert res.status_code == 200 and "text/html" in res.headers["content-type"]
    urls = re.findall(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""", res.text)
    urls += re.findall(r"""\burl\s*:\s*["']([^"']+)["']""", res.text)  # Swagger UI's config
    assert urls and "/api/v1/openapi.json" in urls, res.text
    assert not [u for u in urls if "//" in u], urls  # nothing absolute, nothing external
    for url in urls:
        asset = httpx.get(server.base_url + url)
        assert asset.status_code == 200 and asset.content, url


def test_the_root_leads_to_the_dashboard_and_the_api_to_its_docs(server: Server) -> None:
    res = httpx.get(server.base_url + "/")  # not followed
    assert (res.status_code, res.headers["location"]) == (307, "/ui/")
    for path in ("/api", "/api/v1"):
        res = httpx.get(server.base_url + path)
        assert (res.status_code, res.headers["location"]) == (307, "/docs"), path
    assert httpx.get(server.base_url + "/openapi.json").json()["info"]["title"]


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{nope", "body"),
        (b"", "body"),
        (b"[1, 2]", "body"),
        (b'"script"', "body"),
        ({"script": 5}, "script"),
        ({"script": "true", "executable": "/bin/true"}, "spec"),
        ({"arguments": ["x"]}, "spec"),
        ({"script": "true", "resources": {"cpus_per_task": -1}}, "resources.cpus_per_task"),
        ({"script": "true", "resources": {"cpus": 0}}, "resources.cpus_per_task"),
        ({"script": "true", "resources": {"walltime": "soon"}}, "resources.walltime"),
        ({"script": "true", "resources": {"memory": "-5G"}}, "resources.memory"),
        ({"script": "true", "resources": "lots"}, "resources"),
        ({"script": "true", "destination": "mars"}, "destination"),
        ({"script": "true", "colour": "red"}, "colour"),
        ({"script": "true", "environment": {"1X": "y"}}, "environment"),
        ({"script": "true", "environment": {"X": 1}}, "environment.X"),
        ({"script": "true", "output_files": ["../x"]}, "output_files.0"),
        ({"script": "true", "labels": {"k": "two\nlines"}}, "labels"),
        ({"script": "true", "callback_url": "ftp://example.org"}, "callback_url"),
        ({"script": "true", "input_files": [{"source": "/etc/passwd"}]}, "input_files"),
        ({"script": "true", "name": "x" * 201}, "name"),
        # Text no column or C string can hold: a 500 from PostgreSQL or the JSON encoder
        (b'{"script": "true", "idempotency_key": "a\\u0000b"}', "idempotency_key"),
        (b'{"script": "true", "callback_url": "http://x/\\u0000"}', "callback_url"),
        (b'{"executable": "/bin/echo", "arguments": ["a\\u0000"]}', "arguments.0"),
        (b'{"script": "echo \\ud800"}', "script"),  # a lone surrogate is not text
        (b'{"script": "true", "labels": {"k": "\\udfff"}}', "labels.k"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "body"),  # deeper than the parser goes
    ],
)
def test_bad_submissions_are_422_problems_naming_the_field(
    server: Server, body: bytes | dict[str, Any], field: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    res = server.client("alice").post(
        "/jobs", content=content, headers={"Content-Type": "application/json"}
    )
    problem = is_problem(res, 422, field)
    assert problem["detail"].startswith(field)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/jobs", {"limit": 0}, "query.limit"),
        ("/jobs", {"limit": "many"}, "query.limit"),
        ("/jobs", {"state": "DONE"}, "query.state.0"),
        ("/jobs", {"label": "nokey"}, "query.label.0"),
        ("/jobs", {"created_since": "yesterday"}, "created_since"),
        ("/jobs", {"created_since": "2020-01-01T00:00:00+99:00"}, "created_since"),
        # NUL: refused by the pattern the OpenAPI document states for query text
        ("/jobs", {"name": "a\x00"}, "query.name"),
        ("/jobs", {"cursor": "\x00"}, "query.cursor"),
        ("/jobs", {"label": "k=\x00"}, "query.label.0"),
        ("/results", {"job_type": "\x00"}, "query.job_type"),
    ],
)
def test_bad_queries_are_422_problems_naming_the_field(
    server: Server, path: str, params: dict[str, Any], field: str
) -> None:
    is_problem(server.client("alice").get(path, params=params), 422, field)


def test_times_far_away_are_fine(server: Server) -> None:
    for since in ("0001-01-01T00:00:00", "9999-12-31T23:59:59", "2020-01-01T00:00:00Z"):
        res = server.client("alice").get("/jobs", params={"created_since": since, "limit": 1})
        assert res.status_code == 200, (since, res.text)


def test_values_the_store_cannot_hold_are_4xx_not_500(server: Server) -> None:
    """Longer labels than the store's columns: refused on PostgreSQL (422, from the store;
    JobSpec does not check the lengths yet, so the field is not named), kept on SQLite."""
    for labels in ({"k" * 101: "v"}, {"k": "v" * 501}):
        res = server.client("alice").post("/jobs", json={"script": "true", "labels": labels})
        if res.status_code != 201:
            is_problem(res, 422)
        else:
            server.wait("alice", res.json()["id"])


def test_bad_queries_on_a_job_are_422_problems(server: Server) -> None:
    alice = server.client("alice")
    job_id = server.wait("alice", server.submit("alice", script="true")["id"])["id"]
    is_problem(alice.get(f"/jobs/{job_id}/events", params={"after": -1}), 422, "query.after")
    is_problem(alice.get(f"/jobs/{job_id}/logs/stdout", params={"offset": -1}), 422)
    is_problem(alice.get(f"/jobs/{job_id}/logs/stdout", params={"limit": 0}), 422)
    for huge in (2**63, 10**30):  # beyond any database integer or file offset: no 500
        assert alice.get(f"/jobs/{job_id}/events", params={"after": huge}).status_code < 500
        assert alice.get(f"/jobs/{job_id}/logs/stdout", params={"offset": huge}).status_code < 500
    is_problem(alice.get("/jobs/not-a-job"), 404)
    is_problem(alice.get("/jobs/%00"), 404)
    is_problem(alice.delete("/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404)


def test_tokens_are_never_taken_from_the_url(server: Server) -> None:
    token = server.tokens["alice"]
    for params in ({"access_token": token}, {"token": token}, {"api_key": token}):
        res = httpx.get(f"{server.api}/jobs", params=params)
        is_problem(res, 401)
        assert res.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.api}/jobs", auth=("alice", token)).status_code == 401  # Basic
    ok = httpx.get(f"{server.api}/jobs", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
