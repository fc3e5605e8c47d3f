"""A real `jobgate serve` process per test module and store (SQLite and PostgreSQL), with
tokens for alice, bob and an admin made by `jobgate token create`, and small helpers to
talk to it (JSON, Server-Sent Events, raw paths).

One server per module rather than per test: starting one costs about a second, and tests
keep apart by their own labels, destinations and users' jobs instead.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import JOBGATE, fresh_pg_database, kill_jobs_under, pg_url, start_serve

USERS = {"alice": False, "bob": False, "admin": True}  # name -> admin
TIMEOUT = httpx.Timeout(60.0)  # a safety net against a hung server, never a pass condition

CONFIG = """\
[destinations.local]
capacity = 8

# One slot: a job holding it keeps the others QUEUED.
[destinations.tiny]
capacity = 1

# Only the metrics test submits here, so it knows the counts.
[destinations.counted]
capacity = 4
"""

SSEvent = tuple[str, str, str | None]  # (event, data, id)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Module-scoped twin of tests/conftest.py's `database_url`: every API test runs on
    both stores, with one server per module and store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store') / 'jobgate.db'}"
    return fresh_pg_database(pg_url())


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve"), database_url) as srv:
        yield srv


@dataclass
class Server:
    base_url: str  # http://127.0.0.1:PORT
    tokens: dict[str, str]  # user -> bearer token
    home: Path
    env: dict[str, str]  # what the server runs with (JOBGATE_HOME, ..._DATABASE_URL, ...)
    log: list[str] = field(default_factory=list)  # the server's stderr, line by line
    pid: int = 0
    _clients: dict[str | None, httpx.Client] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:  # base_url, tokens = server
        return iter((self.base_url, self.tokens))

    @property
    def api(self) -> str:
        return self.base_url + "/api/v1"

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def client(self, user: str | None = None) -> httpx.Client:
        """An HTTP client on /api/v1 acting as `user` (None: no token)."""
        if user not in self._clients:
            self._clients[user] = httpx.Client(
                base_url=self.api, headers=self.auth(user) if user else {}, timeout=TIMEOUT
            )
        return self._clients[user]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()

    # -- jobs ----------------------------------------------------------------------------

    def submit(self, user: str, **spec: Any) -> dict[str, Any]:
        res = self.client(user).post("/jobs", json=spec)
        assert res.status_code == 201, res.text
        body: dict[str, Any] = res.json()
        return body

    def job(self, user: str, job_id: str) -> dict[str, Any]:
        res = self.client(user).get(f"/jobs/{job_id}")
        assert res.status_code == 200, res.text
        body: dict[str, Any] = res.json()
        return body

    def follow(
        self, user: str, job_id: str, until: Callable[[SSEvent], bool] | None = None
    ) -> list[SSEvent]:
        """The job's event stream (SSE) from its first event until `until(event)` holds
        or the stream ends (the `end` event, sent once the job is final)."""
        seen = []
        with self.client(user).stream(
            "GET", f"/jobs/{job_id}/events", params={"follow": "true"}
        ) as res:
            assert res.status_code == 200, res.read()
            for event in sse(res):
                seen.append(event)
                if event[0] == "end" or (until is not None and until(event)):
                    break
        return seen

    def wait(self, user: str, job_id: str) -> dict[str, Any]:
        """Until the job is final (woken by its event stream, not by polling): its record."""
        self.follow(user, job_id)
        return self.job(user, job_id)

    def wait_state(self, user: str, job_id: str, state: str) -> None:
        events = self.follow(user, job_id, until=lambda e: e[0] == state)
        assert events[-1][0] == state, events

    def raw_get(self, path: str, user: str) -> tuple[int, str, bytes]:
        """GET `path` byte for byte (no client-side normalisation of `..` or `%2e`)."""
        host, port = self.base_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            conn.request("GET", path, headers=self.auth(user))
            res = conn.getresponse()
            return res.status, res.getheader("content-type") or "", res.read()
        finally:
            conn.close()


def sse(response: httpx.Response) -> Iterator[SSEvent]:
    """Server-Sent Events of a streamed response: (event, data, id) per dispatch."""
    kind, data, last_id = "message", list[str](), None
    for line in response.iter_lines():
        if line.startswith(":"):  # a comment: keep-alive
            continue
        if not line:
            if data:
                yield kind, "\n".join(data), last_id
            kind, data = "message", []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            last_id = value


def is_problem(res: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """Assert `res` is an application/problem+json error with this status (and field)."""
    assert res.status_code == status, (res.status_code, res.text)
    assert res.headers["content-type"].startswith("application/problem+json"), res.headers
    body: dict[str, Any] = res.json()
    assert body["status"] == status and body["title"], body
    if field is not None:
        assert body.get("field") == field, body
    return body


# -- holding jobs without sleeping ----------------------------------------------------------


class Gate:
    """A FIFO a job blocks on (`{gate.wait}` in its script) until the test opens it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.wait = f"read -r _ < {path}"

    def open(self) -> None:
        """Let the job past `wait`: returns once the job is at its `read` (no timing)."""
        writer = threading.Thread(target=self._write, daemon=True)
        writer.start()
        writer.join(60)  # a safety net: the job died before it reached the gate
        if writer.is_alive():
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # unblock the writer
            writer.join()
            os.close(fd)
            raise AssertionError(f"no job came to the gate {self.path}")

    def _write(self) -> None:
        fd = os.open(self.path, os.O_WRONLY)  # blocks until a reader opens the FIFO
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)


@pytest.fixture
def gates(tmp_path: Path) -> Iterator[Callable[[], Gate]]:
    """gates() -> a new Gate; every gate still closed at the end of the test is opened
    (a job of a failed test must not hold a slot for the next test)."""
    made: list[Gate] = []

    def _make() -> Gate:
        made.append(Gate(tmp_path / f"gate{len(made)}"))
        return made[-1]

    yield _make
    for gate in made:
        with contextlib.suppress(OSError):  # a reader waiting: release it, else skip
            fd = os.open(gate.path, os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, b"go\n")
            os.close(fd)


# -- starting and stopping the server -------------------------------------------------------


@contextlib.contextmanager
def running_server(
    tmp: Path, database_url: str, config: str = CONFIG, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`jobgate serve --port 0` on this store (and `env`), run in `tmp`, with tokens for
    USERS; stopped, with every job it started, after: it must have logged no error and no
    token."""
    home = tmp / "home"
    config_path = tmp / "jobgate.toml"
    config_path.write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBGATE_")} | (env or {})
    env |= {
        "JOBGATE_HOME": str(home),
        "JOBGATE_DATABASE_URL": database_url,
        "JOBGATE_CONFIG": str(config_path),
    }
    proc = start_serve(env, "--port", "0", cwd=tmp)
    srv = Server(proc.url, {}, home, env, proc.log, proc.pid)
    try:
        srv.tokens = create_tokens(env)
        yield srv
    finally:
        srv.close()
        try:
            proc.stop()
        finally:
            kill_jobs_under(home)
    assert not proc.problems(), "the server logged errors:\n" + "".join(srv.log)
    leaked = [user for user, token in srv.tokens.items() if any(token in x for x in srv.log)]
    assert not leaked, f"tokens of {leaked} appear in the server's log"


def create_tokens(env: dict[str, str]) -> dict[str, str]:
    """`jobgate token create` for each user, run side by side (the store exists: serve
    migrated it before it said it was running)."""
    procs = {
        user: subprocess.Popen(
            [JOBGATE, "token", "create", "--user", user, *(["--admin"] if admin else [])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for user, admin in USERS.items()
    }
    tokens = {}
    for user, p in procs.items():
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        tokens[user] = out.strip()
    return tokens


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@contextlib.contextmanager
def held_server(tmp: Path, database_url: str, config: str) -> Iterator[Server]:
    """A server whose destination's one slot a job of bob's holds throughout: what a
    fuzzer submits stays QUEUED and never runs (its scripts are random text)."""
    with running_server(tmp, database_url, config) as srv:
        gate = Gate(tmp / "hold")
        holder = srv.submit("bob", script=gate.wait)["id"]
        srv.wait_state("bob", holder, "RUNNING")
        yield srv
        assert srv.job("bob", holder)["state"] == "RUNNING"  # the slot stayed taken
        gate.open()
