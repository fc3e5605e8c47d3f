"""Callbacks to a real HTTP receiver on 127.0.0.1 (a thread running http.server), with real
jobs, on SQLite and on PostgreSQL: every state change arrives once, in order, signed, even
when the receiver is down for a while or the gateway restarts in between."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port, make_config
from jobgate import Gateway, JobState
from jobgate.config import CallbackSettings
from jobgate.signatures import verify

WAIT = 30.0  # seconds: a generous bound for anything that should happen at once
# Loopback must be allowed for the receiver; quick retries keep the tests short.
SETTINGS = {"allowed_hosts": ["127.0.0.1"], "initial_backoff_s": 0.05, "max_backoff_s": 0.2}
STATES = {s.value for s in JobState}
Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class Receiver:
    """A real HTTP server in a thread; records every request it is sent."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, fail_first: int = 0) -> None:
        self.requests: list[Received] = []  # those answered 204
        self.refused: list[Received] = []  # those answered 503 (the first `fail_first`)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got = Received(self.path, dict(self.headers), body, self.command)
                with receiver._lock:
                    fail = len(receiver.refused) < fail_first
                    (receiver.refused if fail else receiver.requests).append(got)
                    receiver._arrived.notify_all()
                self.send_response(503 if fail else 204)
                self.end_headers()

            do_PUT = do_POST  # joblauncher's receivers take PUTs

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, done: Callable[[list[Received]], bool], timeout: float) -> list[Received]:
        """The requests answered 204, once `done(them)` holds (woken by each arrival)."""
        with self._arrived:
            self._arrived.wait_for(lambda: done(self.requests), timeout)
            return list(self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def _start(host: str = "127.0.0.1", port: int = 0, fail_first: int = 0) -> Receiver:
        started.append(Receiver(host, port, fail_first))
        return started[-1]

    yield _start
    for r in started:
        r.close()


@pytest.fixture
def open_cb_gateway(home: Path, database_url: str) -> Iterator[Callable[..., Gateway]]:
    """Like conftest's open_gateway (same home and store, SQLite and PostgreSQL), with the
    [callbacks] settings these tests need."""
    opened: list[Gateway] = []

    def _open(supervise: bool = True, **callbacks: Any) -> Gateway:
        settings = CallbackSettings.model_validate({**SETTINGS, **callbacks})
        config = make_config(home, database_url).model_copy(update={"callbacks": settings})
        opened.append(Gateway(config, supervise=supervise))
        return opened[-1]

    yield _open
    for gw in opened:
        gw.close()


def wait_rows(gw: Gateway, job_id: str, done: Callable[[Rows], bool]) -> Rows:
    """Poll the outbox (a bounded loop) until `done(rows)` holds."""
    deadline = time.monotonic() + WAIT
    while True:
        rows = gw._call(gw.service.system.callbacks_of(job_id))
        if rows and done(rows):
            return rows
        assert time.monotonic() < deadline, f"outbox never got there: {rows}"
        time.sleep(0.05)


def all_delivered(rows: Rows) -> bool:
    return all(r["state"] == "delivered" for r in rows)


def state_changes(gw: Gateway, job_id: str) -> list[tuple[int, str]]:
    return [(e.seq, e.type) for e in gw.get(job_id).events() if e.type in STATES]


def check_received(gw: Gateway, job_id: str, receiver: Receiver) -> list[dict[str, Any]]:
    """Every state change of the job arrived exactly once, in order, validly signed."""
    changes = state_changes(gw, job_id)
    secret = gw._call(gw.service.accounts.user(gw.get(job_id).record.owner)).callback_secret
    got = [r for r in receiver.requests if r.json["job"]["id"] == job_id]
    bodies = [r.json for r in got]
    assert [(b["event"]["seq"], b["event"]["type"]) for b in bodies] == changes
    assert [b["sequence"] for b in bodies] == list(range(1, len(changes) + 1))
    for r, b in zip(got, bodies, strict=True):
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["X-Jobgate-Event-Id"] == b["event_id"] == f"{job_id}:{b['event']['seq']}"
        stamp, signature = r.headers["X-Jobgate-Timestamp"], r.headers["X-Jobgate-Signature"]
        assert verify(secret, stamp, r.body, signature), "bad signature"
        assert not verify(secret, stamp, r.body + b" ", signature)
    return bodies


def test_every_state_change_arrives_once_in_order_signed(
    open_cb_gateway: Callable[..., Gateway], receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    gw = open_cb_gateway()
    job = gw.submit(script="echo hi", callback_url=f"http://127.0.0.1:{receiver.port}/hook?x=1")
    assert job.wait(WAIT) == JobState.COMPLETED
    rows = wait_rows(gw, job.id, all_delivered)
    assert [(r["attempts"], r["last_status"], r["last_error"]) for r in rows] == [
        (1, 204, None)
    ] * len(rows)
    bodies = check_received(gw, job.id, receiver)
    types = [b["event"]["type"] for b in bodies]
    assert types[0] == "QUEUED" and types[-1] == "COMPLETED" and "RUNNING" in types
    assert bodies[-1]["job"]["state"] == "COMPLETED" and bodies[-1]["job"]["exit_code"] == 0
    assert not {"backend_data", "stop_reason", "gateway_id"} & set(bodies[-1]["job"])  # public
    assert bodies[-1]["job"]["run_dir"] == job.record.run_dir
    assert {r.path for r in receiver.requests} == {"/hook?x=1"}
    assert len(receiver.requests) == len(rows)


def test_receiver_down_then_back(
    open_cb_gateway: Callable[..., Gateway], receivers: Callable[..., Receiver]
) -> None:
    port = free_port()
    gw = open_cb_gateway()
    job = gw.submit(script="echo hi", callback_url=f"http://127.0.0.1:{port}/hook")
    assert job.wait(WAIT) == JobState.COMPLETED
    # Wait for failed attempts; the job's later rows must not have been tried meanwhile.
    rows = wait_rows(gw, job.id, lambda rows: rows[0]["attempts"] >= 3)
    first, *later = rows
    assert first["state"] == "pending" and "cannot connect" in first["last_error"]
    assert first["last_status"] is None
    assert [(r["state"], r["attempts"]) for r in later] == [("pending", 0)] * len(later)
    receiver = receivers(port=port)
    rows = wait_rows(gw, job.id, all_delivered)
    check_received(gw, job.id, receiver)
    assert len(receiver.requests) == len(rows)
    # (attempts counts claims: the one seen in flight above may be the one that succeeded)
    assert rows[0]["attempts"] >= first["attempts"] and rows[0]["last_error"] is None


def test_gateway_restart_between_attempts(
    open_cb_gateway: Callable[..., Gateway], receivers: Callable[..., Receiver]
) -> None:
    port = free_port()
    gw = open_cb_gateway()
    job = gw.submit(script="echo hi", callback_url=f"http://127.0.0.1:{port}/hook")
    assert job.wait(WAIT) == JobState.COMPLETED
    wait_rows(gw, job.id, lambda rows: rows[0]["attempts"] >= 2)
    gw.close()
    with Gateway(gw.config, supervise=False) as reader:  # the store, with no gateway running
        before = reader._call(reader.service.system.callbacks_of(job.id))
    assert {r["state"] for r in before} == {"pending"}  # nothing lost, nothing given up
    receiver = receivers(port=port)
    gw2 = open_cb_gateway()
    rows = wait_rows(gw2, job.id, all_delivered)
    check_received(gw2, job.id, receiver)
    assert len(receiver.requests) == len(rows)
    assert rows[0]["attempts"] > before[0]["attempts"]


def test_error_status_is_retried(
    open_cb_gateway: Callable[..., Gateway], receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(fail_first=2)
    gw = open_cb_gateway()
    job = gw.submit(script="echo hi", callback_url=f"http://127.0.0.1:{receiver.port}/hook")
    assert job.wait(WAIT) == JobState.COMPLETED
    rows = wait_rows(gw, job.id, all_delivered)
    check_received(gw, job.id, receiver)
    assert [r.json["sequence"] for r in receiver.refused] == [1, 1]  # the same event again
    assert (rows[0]["attempts"], rows[0]["last_status"]) == (3, 204)
    assert [r["attempts"] for r in rows[1:]] == [1] * (len(rows) - 1)


def test_two_gateways_send_each_event_once(
    open_cb_gateway: Callable[..., Gateway], receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    first, second = open_cb_gateway(), open_cb_gateway()
    url = f"http://127.0.0.1:{receiver.port}/hook"
    jobs = [(first, second)[i % 2].submit(script="true", callback_url=url) for i in range(8)]
    assert {job.wait(WAIT) for job in jobs} == {JobState.COMPLETED}
    total = sum(len(wait_rows(first, job.id, all_delivered)) for job in jobs)
    for job in jobs:
        check_received(first, job.id, receiver)
    assert len(receiver.requests) == total
    counts = [gw.service.system.callback_outcomes() for gw in (first, second)]
    assert sum(c.get("delivered", 0) for c in counts) == total


def test_private_address_not_in_allowlist_is_never_called(
    open_cb_gateway: Callable[..., Gateway], receivers: Callable[..., Receiver]
) -> None:
    """Submit refuses such URLs (tests/api/test_callback_urls.py); these were allowed when
    submitted, and the operator has taken them off `allowed_hosts` since."""
    receiver = receivers(host="127.0.0.2")  # loopback, listening, but no longer allowlisted
    before = open_cb_gateway(supervise=False, allowed_hosts=["127.0.0.2", "10.255.255.1"])
    loopback = before.submit(script="true", callback_url=f"http://127.0.0.2:{receiver.port}/hook")
    private = before.submit(script="true", callback_url="http://10.255.255.1/hook")
    before.close()
    gw = open_cb_gateway()
    refused = 0
    for submitted, kind in ((loopback, "loopback"), (private, "private")):
        job = gw.get(submitted.id)
        assert job.wait(WAIT) == JobState.COMPLETED
        rows = wait_rows(gw, job.id, lambda rows: rows[-1]["state"] != "pending")
        assert len(rows) == len(state_changes(gw, job.id))
        refused += len(rows)
        for row in rows:
            assert (row["state"], row["attempts"], row["last_status"]) == ("failed", 0, None)
            error = row["last_error"]
            assert "refused, not sent" in error and kind in error and "allowed_hosts" in error
    assert receiver.requests == receiver.refused == []
    assert gw.service.system.callback_outcomes() == {"refused": refused}


def test_joblauncher_jobs_get_its_status_put_once_per_change_with_basic_auth(
    open_cb_gateway: Callable[..., Gateway], receivers: Callable[..., Receiver]
) -> None:
    """Jobs from the joblauncher drop-in API (label compat=joblauncher) are called back
    as joblauncher does: a PUT of its JobStatusResponse when its state changes, with
    basic auth from the URL's user info."""
    receiver = receivers()
    gw = open_cb_gateway()
    url = f"http://hook:s3cret@127.0.0.1:{receiver.port}/status/1"
    job = gw.submit(script="exit 0", callback_url=url, labels={"compat": "joblauncher"})
    assert job.wait(WAIT) == JobState.COMPLETED
    rows = wait_rows(gw, job.id, lambda rows: all(r["state"] != "pending" for r in rows))
    got = receiver.requests
    assert {(r.method, r.path) for r in got} == {("PUT", "/status/1")}
    assert {r.headers["Authorization"] for r in got} == {"Basic aG9vazpzM2NyZXQ="}
    states = [r.json["state"] for r in got]
    # One call per change of joblauncher's state: its PENDING covers QUEUED and STAGING_IN.
    assert states == [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]
    assert states[0] == "PENDING" and states[-1] == "DONE" and len(got) < len(rows)
    assert (got[-1].json["exitCode"], got[-1].json["done"]) == (0, True)
    assert all(not r.json["done"] and r.json["exitCode"] is None for r in got[:-1])
    skipped = [r for r in rows if r["state"] == "skipped"]
    assert len(skipped) == len(rows) - len(got) and all(r["attempts"] == 0 for r in skipped)
    assert [r["state"] for r in rows].count("delivered") == len(got)


def test_what_a_job_says_is_called_back_with_its_states(
    open_cb_gateway: Callable[..., Gateway], receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    gw = open_cb_gateway()
    script = "echo '@event=[JOB_INITIALIZED:ready]'\necho '@var=[score:42]'\n"
    job = gw.submit(script=script, callback_url=f"http://127.0.0.1:{receiver.port}/hook")
    assert job.wait(WAIT) == JobState.COMPLETED
    rows = wait_rows(gw, job.id, lambda rows: all_delivered(rows) and len(rows) >= 6)
    said = [(e.seq, e.type) for e in job.events() if e.type in STATES or e.type.startswith("job.")]
    got = sorted(
        (r.json["event"]["seq"], r.json["event"]["type"])
        for r in receiver.requests
        if r.json["job"]["id"] == job.id
    )
    assert got == said and len(rows) == len(said)
    assert ("job.JOB_INITIALIZED" in dict(said).values()) and ("job.var" in dict(said).values())
