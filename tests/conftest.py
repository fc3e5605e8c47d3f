"""Shared fixtures. Integration tests use real services started by scripts/services-up.sh;
on a laptop without them they skip with the reason, but with JOBGATE_REQUIRE_SERVICES=1
(set by .ci/run) a missing service is a failure, never a skip."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobgate import Gateway
from jobgate.config import Config, Destination
from jobgate.spec import JobRecord, JobSpec
from jobgate.states import JobState

SERVICES_ENV = Path("/var/lib/jobgate-test/services.env")


def service_env() -> dict[str, str]:
    env: dict[str, str] = {}
    if SERVICES_ENV.exists():
        for line in SERVICES_ENV.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                env[key.strip()] = value.strip().strip('"')
    env.update({k: v for k, v in os.environ.items() if k.startswith("JOBGATE_TEST_")})
    return env


def need(condition: bool, reason: str) -> None:
    """Skip (laptop) or fail (CI) when a service a test needs is missing."""
    if condition:
        return
    if os.environ.get("JOBGATE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def pg_url() -> str:
    url = service_env().get("JOBGATE_TEST_PG_URL", "")
    need(bool(url), "no test PostgreSQL (run scripts/services-up.sh as root)")
    return url


def fresh_pg_database(base_url: str) -> str:
    """A new empty database on the test server (dropped with the server's data dir)."""
    import sqlalchemy as sa

    name = f"jg_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return base_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def pg_database() -> str:
    """A fresh database on the test PostgreSQL server."""
    return fresh_pg_database(pg_url())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobgate.db'}"
    return fresh_pg_database(pg_url())


def make_config(home: Path, database_url: str, **destinations: dict[str, Any]) -> Config:
    dests = destinations or {"local": {"capacity": 16}}
    return Config(
        home=home,
        database_url=database_url,
        destinations={n: Destination.model_validate({**d, "name": n}) for n, d in dests.items()},
        default_destination=next(iter(dests)),
    )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "home"
    path.mkdir()
    yield path
    kill_jobs_under(path)


def kill_jobs_under(home: Path) -> None:
    """Jobs outlive gateways by design: a failed test must not leave its jobs running
    (some wait for a file that will never come)."""
    marker = f"{home}/runs/".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "cmdline").read_bytes():
                os.killpg(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


@pytest.fixture
def gateway(home: Path, database_url: str) -> Iterator[Gateway]:
    with Gateway(make_config(home, database_url)) as gw:
        yield gw


@pytest.fixture
def open_gateway(home: Path, database_url: str) -> Iterator[Callable[..., Gateway]]:
    """open_gateway(local={"capacity": 1}) -> a Gateway on this test's home and store,
    closed at the end of the test (close it earlier to simulate a restart)."""
    opened: list[Gateway] = []

    def _open(**destinations: dict[str, Any]) -> Gateway:
        gw = Gateway(make_config(home, database_url, **destinations))
        opened.append(gw)
        return gw

    yield _open
    for gw in opened:
        gw.close()


JOBGATE = str(Path(sys.executable).with_name("jobgate"))


class ServeProcess(subprocess.Popen[str]):
    """A `jobgate serve`: its stderr, read on (a full pipe would block the server) into
    `log`, and its API's base URL from the log ("" with --no-api)."""

    log: list[str]
    url: str
    drain: threading.Thread

    def stop(self) -> None:
        """SIGTERM, and fail if it does not stop within 30 s."""
        if self.poll() is None:
            self.terminate()
            try:
                self.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
                self.wait()
                raise AssertionError("jobgate serve did not stop within 30 s of SIGTERM") from None
        self.drain.join(30)

    def problems(self) -> list[str]:
        return [line for line in self.log if "Traceback" in line or " ERROR " in line]


def serve_env(home: Path, database_url: str, config: Path, toml: str) -> dict[str, str]:
    """The environment of a `jobgate serve` on this home and store, its config written."""
    config.write_text(toml)
    return {
        **os.environ,
        "JOBGATE_HOME": str(home),
        "JOBGATE_DATABASE_URL": database_url,
        "JOBGATE_CONFIG": str(config),
    }


def start_serve(env: dict[str, str], *args: str, cwd: Path | None = None) -> ServeProcess:
    """Start `jobgate serve` (in `cwd`) and return once it logs that it is running: it
    listens by then (no sleeps, no retries). `--port 0` picks a free port: see `.url`."""
    proc = ServeProcess(
        [JOBGATE, "serve", *args], env=env, stderr=subprocess.PIPE, text=True, cwd=cwd
    )
    assert proc.stderr is not None
    proc.log = []
    for line in proc.stderr:
        proc.log.append(line)
        if " running: " in line:
            break
    else:
        raise AssertionError(f"jobgate serve exited with {proc.wait()}:\n{''.join(proc.log)}")
    api = re.search(r" api=(http://\S+)/api/v1", line)
    proc.url = api.group(1) if api else ""
    proc.drain = threading.Thread(target=lambda: proc.log.extend(proc.stderr or ()), daemon=True)
    proc.drain.start()
    return proc


@pytest.fixture
def serve() -> Iterator[Callable[..., ServeProcess]]:
    """serve(env, *args) -> a running `jobgate serve`; whatever is left is stopped after."""
    procs: list[ServeProcess] = []

    def _start(env: dict[str, str], *args: str) -> ServeProcess:
        procs.append(start_serve(env, *args))
        return procs[-1]

    yield _start
    for proc in procs:
        proc.stop()


def free_port() -> int:
    """A port nothing listens on now (for a receiver started later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def slurm_answers() -> bool:
    if not which("sinfo"):
        return False
    try:
        done = subprocess.run(["sinfo", "-h"], check=False, capture_output=True, timeout=20)
        return done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def peak_overlap(spans: Path) -> int:
    """Most jobs running at once, from files of "start T" and "end T" lines the jobs wrote."""
    points = []
    for f in spans.iterdir():
        (_, start), (_, end) = (line.split() for line in f.read_text().splitlines())
        points += [(float(start), 1), (float(end), -1)]
    running = peak = 0
    for _, delta in sorted(points):
        running += delta
        peak = max(peak, running)
    return peak


def which(cmd: str) -> bool:
    return shutil.which(cmd) is not None


def install_entry_points(folder: Path, dist: str, entry_points: str) -> None:
    """A package `dist` installed in `folder` (put it on sys.path or PYTHONPATH) whose
    entry_points.txt is `entry_points`: how a site registers its job types and hooks."""
    info = folder / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def a_record(state: JobState, **fields: Any) -> JobRecord:
    """A job record for unit tests of what renders or maps one."""
    base: dict[str, Any] = {
        "id": "01M8Y1ECY17PHVSQGEVM8YCXER",
        "name": None,
        "owner": "me",
        "destination": "d",
        "spec": JobSpec(executable="/bin/true"),
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return JobRecord(state=state, **{**base, **fields})
