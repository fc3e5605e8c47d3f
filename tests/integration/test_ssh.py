"""The SSH transport and the plain `ssh` scheduler against the real test sshd
(127.0.0.1:2222, user jobtest: scripts/ssh-up.sh), through a real Gateway.

Each test gets its own remote directory under ~jobtest/.jobgate-tests, removed afterwards.
A small TCP proxy in the test stands in for an sshd that is down, comes back, or drops
its connections, so those cases need no root and no timing guesses.
"""

from __future__ import annotations

import asyncio
import random
import shlex
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from conftest import fresh_pg_database, make_config, need, pg_url, service_env
from jobgate import Gateway, JobState
from jobgate.backends.process import ProcessBackend, script_argv
from jobgate.config import Destination
from jobgate.engine.janitor import sweep_finished
from jobgate.errors import FatalError, TransientError
from jobgate.sdk import Job
from jobgate.transports.ssh import SSHAuthError, SSHHostKeyError, SSHTransport, SSHUnavailable

pytestmark = pytest.mark.ssh
WAIT = 60  # seconds: a generous bound for a job that should end at once
ENV_FILES = (Path("/var/lib/jobgate-test/ssh.env"), Path("/var/lib/ssh-test/env"))


# -- the test sshd -------------------------------------------------------------------------


def _read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            env[key.strip().replace("SSH_TEST_", "JOBGATE_TEST_SSH_")] = value.strip().strip('"')
    return env


@pytest.fixture(scope="session")
def sshd() -> dict[str, Any]:
    """host, port, user, key_file, known_hosts of the test sshd (skip or fail if none)."""
    env = service_env()
    for path in ENV_FILES:
        if "JOBGATE_TEST_SSH_HOST" not in env and path.exists():
            env = {**_read_env(path), **env}
    need("JOBGATE_TEST_SSH_HOST" in env, "no test sshd (run scripts/ssh-up.sh as root)")
    key = env["JOBGATE_TEST_SSH_KEY"]
    need(Path(key).is_file(), f"cannot read the test sshd's client key {key}")
    return {
        "host": env["JOBGATE_TEST_SSH_HOST"],
        "port": int(env["JOBGATE_TEST_SSH_PORT"]),
        "user": env["JOBGATE_TEST_SSH_USER"],
        "key_file": key,
        "known_hosts": env["JOBGATE_TEST_SSH_KNOWN_HOSTS"],
    }


def ssh_run(sshd: dict[str, Any], command: str) -> str:
    """Run a shell command as the test user, outside jobgate (for setup and checks)."""

    async def go() -> str:
        async with asyncssh.connect(
            sshd["host"],
            sshd["port"],
            username=sshd["user"],
            client_keys=[sshd["key_file"]],
            known_hosts=sshd["known_hosts"],
            config=None,
        ) as conn:
            result = await conn.run(command, check=True)
            return str(result.stdout)

    return asyncio.run(go())


@pytest.fixture
def remote_dir(sshd: dict[str, Any]) -> Iterator[str]:
    """This test's directory, relative to the remote home."""
    path = f".jobgate-tests/{uuid.uuid4().hex[:12]}"
    yield path
    # A failed test may leave jobs waiting for a go-file that will never come: end them.
    ssh_run(
        sshd,
        f"cd {shlex.quote(path)} 2>/dev/null && for f in runs/*/jobgate.pid; do "
        '[ -f "$f" ] && kill -KILL -- "-$(cat "$f")" 2>/dev/null; done; '
        f"cd && rm -rf {shlex.quote(path)}",
    )


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite: these tests are about SSH (the restart test also runs on PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'jobgate.db'}"


@pytest.fixture
def open_remote(
    sshd: dict[str, Any], remote_dir: str, home: Path, database_url: str
) -> Iterator[Callable[..., Gateway]]:
    """open_remote(**overrides) -> a Gateway whose one destination, "remote", is the
    test sshd with the ssh scheduler (closed at the end of the test)."""
    opened: list[Gateway] = []

    def _open(url: str | None = None, **overrides: Any) -> Gateway:
        remote = {
            **sshd,
            "scheduler": "ssh",
            "poll_interval_s": 0.3,
            "cancel_grace_s": 2,
            "capacity": 50,
            "remote_dir": f"{remote_dir}/runs",
            **overrides,
        }
        gw = Gateway(make_config(home, url or database_url, remote=remote))
        opened.append(gw)
        return gw

    yield _open
    for gw in opened:
        gw.close()


def backend_of(gw: Gateway) -> ProcessBackend:
    supervisor = gw._core._runtime.supervisor
    assert supervisor is not None
    backend = supervisor.backends.get("remote")
    assert isinstance(backend, ProcessBackend)
    return backend


def transport_of(gw: Gateway) -> SSHTransport:
    transport = backend_of(gw).transport
    assert isinstance(transport, SSHTransport)
    return transport


def wait_for_output(job: Job, text: str) -> None:
    """Follow the job's output (read over SFTP) until it prints `text`."""
    for _ in range(1200):
        if text in job.stdout():
            return
        job.wait(0.05)
    raise AssertionError(f"job never printed {text!r}")


# -- jobs through the gateway ---------------------------------------------------------------


def test_exit_codes_output_and_env(
    open_remote: Callable[..., Gateway], sshd: dict[str, Any]
) -> None:
    gw = open_remote()
    ok = gw.submit(script='echo "out $GREETING"; echo err >&2', environment={"GREETING": "hi $x"})
    bad = gw.submit(script="echo partial; exit 3")
    quoted = gw.submit(
        executable="/bin/sh",
        arguments=["-c", 'printf "%s|%s" "$1" "$(whoami)"', "-", "two words; $(touch pwned) '"],
    )
    assert ok.wait(WAIT) == JobState.COMPLETED
    assert (ok.exit_code, ok.stdout(), ok.stderr()) == (0, "out hi $x\n", "err\n")
    assert bad.wait(WAIT) == JobState.FAILED
    assert (bad.exit_code, bad.stdout(), bad.record.reason) == (3, "partial\n", "exit code 3")
    assert quoted.wait(WAIT) == JobState.COMPLETED
    assert quoted.stdout() == f"two words; $(touch pwned) '|{sshd['user']}"
    assert ok.record.host and int(ok.native_id or 0) > 0


def test_run_dir_is_stored_absolute_and_files_are_read_where_logs_are(
    open_remote: Callable[..., Gateway], remote_dir: str
) -> None:
    """remote_dir is relative (to the remote home): the run directory is named once, at
    admission, and both the files and the logs of the job are read there, over SFTP."""
    gw = open_remote()
    job = gw.submit(script="mkdir -p sub && echo made > sub/made.txt && echo out")
    assert job.wait(WAIT) == JobState.COMPLETED
    run_dir = job.record.run_dir or ""
    assert run_dir.startswith("/") and run_dir.endswith(f"/{remote_dir}/runs/{job.id}")
    files = gw.service.files
    listed = gw._call(files.list(job.record))
    assert {"stdout", "jobgate.sh", "sub/made.txt"} <= set(listed)
    reader = gw._call(files.open(job.record, "stdout"))
    stdout = gw._call(reader.read(0, 100))
    gw._call(reader.close())
    assert stdout == job.read_log("stdout") == b"out\n"


def test_input_and_output_files_over_sftp(
    open_remote: Callable[..., Gateway], home: Path, tmp_path: Path
) -> None:
    source = tmp_path / "data.txt"
    source.write_text("3\n4\n")
    gw = open_remote()
    job = gw.submit(
        script="mkdir -p res && awk '{s+=$1} END {print s}' in/data.txt > res/sum.txt",
        input_files=[{"source": str(source), "target": "in/data.txt"}],
        output_files=["res/sum.txt"],
    )
    missing = gw.submit(script="true", output_files=["never-written.txt"])
    assert job.wait(WAIT) == JobState.COMPLETED
    assert (home / "runs" / job.id / "outputs/res/sum.txt").read_text() == "7\n"
    states = [e.type for e in job.events() if e.type.isupper()]
    assert "RUNNING" in states and states[-2:] == ["STAGING_OUT", "COMPLETED"]
    assert missing.wait(WAIT) == JobState.FAILED
    assert "never-written.txt" in (missing.record.reason or "")


def test_retention_removes_remote_run_directories_of_every_attempt_never_through_a_link(
    open_remote: Callable[..., Gateway], sshd: dict[str, Any], remote_dir: str, home: Path
) -> None:
    gw = open_remote()
    job = gw.submit(
        script="echo out > res.txt; exit 3",
        output_files=["res.txt"],
        retry={"max": 1, "on": ["EXIT_CODE"]},
    )
    kept = gw.submit(script="exec sleep 300")
    assert job.wait(WAIT) == JobState.FAILED and job.record.attempt == 2
    run_dir = job.record.run_dir or ""
    assert run_dir.endswith(f"/{job.id}~2")
    first = run_dir.removesuffix("~2")
    # A link out of a run directory, to a canary beside the runs: removed, not followed.
    ssh_run(
        sshd,
        f"mkdir -p {remote_dir}/canary && echo keep > {remote_dir}/canary/keep"
        f" && ln -s ../canary {shlex.quote(first)}/link && ls -d {shlex.quote(first)}",
    )
    assert (home / "runs" / job.id / "outputs/res.txt").exists()  # its copy here
    config = gw.config
    aged = config.model_copy(
        update={"limits": config.limits.model_copy(update={"keep_finished_days": 1e-9})}
    )
    supervisor = gw._core._runtime.supervisor
    assert supervisor is not None
    assert gw._call(sweep_finished(aged, supervisor.db, supervisor.backends)) == 1
    left = ssh_run(sshd, f"ls -a {remote_dir}/runs; cat {remote_dir}/canary/keep")
    assert job.id not in left and kept.id in left and left.endswith("keep\n")
    assert not (home / "runs" / job.id).exists()
    assert [j.id for j in gw.list(limit=0)] == [kept.id]
    gw.cancel(kept.id)


def test_cancel_running_job_runs_cancel_sh_first(
    open_remote: Callable[..., Gateway], sshd: dict[str, Any], remote_dir: str
) -> None:
    gw = open_remote()
    job = gw.submit(
        script="echo 'echo cancelled-by-hook > hook.txt' > cancel.sh\necho started\nexec sleep 300"
    )
    assert job.wait(WAIT, until=lambda s: s == JobState.RUNNING) == JobState.RUNNING
    wait_for_output(job, "started")
    job.cancel()
    assert job.wait(WAIT) == JobState.CANCELLED
    assert job.exit_code == 143  # the wrapper stayed to record SIGTERM's code
    run_dir = f"{remote_dir}/runs/{job.id}"
    assert ssh_run(sshd, f"cat {run_dir}/hook.txt") == "cancelled-by-hook\n"
    # Nothing of the job's session is left (`sleep 300` died with it); zombies are dead
    # processes that this machine's PID 1 has not reaped yet.
    alive = f"ps -o stat=,comm= -s {job.native_id} | grep -v '^Z' || echo none"
    assert ssh_run(sshd, alive) == "none\n"


def test_walltime_is_enforced(open_remote: Callable[..., Gateway]) -> None:
    gw = open_remote(cancel_grace_s=1)
    job = gw.submit(script="trap '' TERM; sleep 300", resources={"walltime_s": 1})
    assert job.wait(WAIT) == JobState.TIMEOUT  # TERM ignored: KILL after the grace period
    assert job.record.reason == "walltime exceeded"


def test_many_jobs_share_one_connection_and_one_status_command(
    open_remote: Callable[..., Gateway],
) -> None:
    gw = open_remote()
    jobs = [gw.submit(script=f"exit {i % 3}") for i in range(40)]
    assert [(j.wait(WAIT), j.exit_code) for j in jobs] == [
        (JobState.COMPLETED if i % 3 == 0 else JobState.FAILED, i % 3) for i in range(40)
    ]
    transport, backend = transport_of(gw), backend_of(gw)
    assert transport.connections_opened == 1
    # One command to find the remote home, one to start each job, one per poll interval
    # for all of them, and the reads of what they said (a look per interval, and the last
    # words of the jobs one poll found ended): never a command per job per poll.
    supervisor = gw._core._runtime.supervisor
    assert supervisor is not None
    polls, reads = backend.poller.polls, supervisor.hearing.remote_reads
    assert transport.commands_run == 1 + len(jobs) + polls + reads
    assert reads <= 2 * polls + 1, (reads, polls)


# -- a gateway restart ------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_gateway_restart_while_remote_jobs_run(
    open_remote: Callable[..., Gateway],
    sshd: dict[str, Any],
    remote_dir: str,
    tmp_path: Path,
    store: str,
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'restart.db'}" if store == "sqlite" else fresh_pg_database(pg_url())
    )
    go, runs = f"$HOME/{remote_dir}/go", f"$HOME/{remote_dir}/runs.log"
    # Each job notes that it started, then holds until the test says go: no timing guesses.
    script = (
        f'echo "$N" >> "{runs}"\nwhile [ ! -e "{go}" ]; do sleep 0.05; done\n'
        'echo "job $N"\nexit "$CODE"\n'
    )
    codes = {i: (0 if i < 4 else i) for i in range(6)}
    first = open_remote(url)
    jobs = {
        i: first.submit(script=script, environment={"N": str(i), "CODE": str(c)})
        for i, c in codes.items()
    }
    for job in jobs.values():
        assert job.wait(WAIT, until=lambda s: s == JobState.RUNNING) == JobState.RUNNING
    ids = {i: j.id for i, j in jobs.items()}
    first.close()

    ssh_run(sshd, f'touch "{go}"')  # the jobs end while no gateway watches them
    second = open_remote(url)
    ended = {i: second.get(job_id) for i, job_id in ids.items()}
    for job in ended.values():
        job.wait(WAIT)
    assert {i: (j.state, j.exit_code) for i, j in ended.items()} == {
        i: (JobState.COMPLETED if c == 0 else JobState.FAILED, c) for i, c in codes.items()
    }
    started = sorted(int(n) for n in ssh_run(sshd, f'cat "{runs}"').split())
    assert started == sorted(codes)  # each job ran exactly once
    # A gateway that has not submitted anything yet still finds the remote files.
    assert [ended[i].stdout() for i in sorted(codes)] == [f"job {i}\n" for i in sorted(codes)]


# -- refusals: clear, fatal, and never "job not found" ------------------------------------------


def test_wrong_key_is_a_clear_fatal_error(
    open_remote: Callable[..., Gateway], tmp_path: Path
) -> None:
    key = tmp_path / "not-authorized"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key))
    gw = open_remote(key_file=str(key))
    job = gw.submit(script="true")
    assert job.wait(WAIT) == JobState.FAILED
    reason = job.record.reason or ""
    assert "permission denied" in reason and str(key) in reason
    assert job.native_id is None


def test_unpinned_host_key_is_refused(open_remote: Callable[..., Gateway], tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    unpinned = open_remote(known_hosts=str(empty)).submit(script="true")
    assert unpinned.wait(WAIT) == JobState.FAILED
    assert "host key" in (unpinned.record.reason or "")
    assert "not trusted" in (unpinned.record.reason or "")


def test_transport_files_and_commands(
    sshd: dict[str, Any], remote_dir: str, tmp_path: Path
) -> None:
    local = tmp_path / "in.bin"
    local.write_bytes(bytes(range(256)) * 1000)
    local.chmod(0o750)

    async def check() -> None:
        t = SSHTransport(_dest(sshd))
        try:
            await t.write_file(f"{remote_dir}/a/b/c.sh", b"echo hi\n", 0o755)  # parents made
            await t.write_file(f"{remote_dir}/a/b/c.sh", b"echo bye\n", 0o700)  # replaced
            await t.put(str(local), f"{remote_dir}/up/in.bin")
            await t.get(f"{remote_dir}/up/in.bin", str(tmp_path / "back/in.bin"))
            assert (tmp_path / "back/in.bin").read_bytes() == local.read_bytes()
            assert await t.read_file(f"{remote_dir}/a/b/c.sh", 5, 3) == b"bye"
            assert await t.exists(f"{remote_dir}/a/b") and not await t.exists(f"{remote_dir}/x")
            modes = await t.run(
                ["stat", "-c", "%a", "c.sh", "../../up/in.bin"], cwd=f"{remote_dir}/a/b"
            )
            assert modes.stdout.split() == ["700", "750"]
            listing = await t.run(["ls", "-A", f"{remote_dir}/a/b"])
            assert listing.stdout == "c.sh\n"  # no temporary files left
            failed = await t.run(["sh", "-c", "echo out; echo err >&2; exit 3"], input="")
            assert (failed.returncode, failed.stdout, failed.stderr) == (3, "out\n", "err\n")
            with pytest.raises(FileNotFoundError):
                await t.get(f"{remote_dir}/none", str(tmp_path / "none"))
            assert not (tmp_path / "none").exists()
            assert t.connections_opened == 1
        finally:
            await t.close()

    asyncio.run(check())


def test_transport_tells_refusal_from_down_from_not_found(
    sshd: dict[str, Any], tmp_path: Path
) -> None:
    """xenon#668: "SSH is down", "you may not log in" and "no such file" are three errors."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")

    async def check() -> None:
        ok = SSHTransport(_dest(sshd))
        with pytest.raises(FileNotFoundError):
            await ok.read_file(".jobgate-tests/no/such/file")
        assert (await ok.run(["printf", "%s", "a b; $(x)"], cwd="/")).stdout == "a b; $(x)"
        await ok.close()
        for dest, error in [
            (_dest(sshd, known_hosts=str(empty)), SSHHostKeyError),
            (_dest(sshd, known_hosts=str(tmp_path / "absent")), SSHHostKeyError),
            (_dest(sshd, key_file=str(tmp_path / "absent")), SSHAuthError),
            (_dest(sshd, port=_free_port()), SSHUnavailable),
        ]:
            transport = SSHTransport(dest)
            with pytest.raises(error) as info:
                await transport.run(["true"])
            assert isinstance(info.value, TransientError if error is SSHUnavailable else FatalError)
            # Backing off: the next call fails at once, with the same kind of error.
            with pytest.raises(error, match="next attempt in"):
                await transport.read_file("x")
            assert transport.connections_opened == 0

    asyncio.run(check())


# -- sshd down, back, and dropping connections -------------------------------------------------


def test_unreachable_sshd_defers_the_job_until_it_is_back(
    open_remote: Callable[..., Gateway], sshd: dict[str, Any], tmp_path: Path
) -> None:
    port = _free_port()
    gw = open_remote(port=port, known_hosts=_repin(sshd, port, tmp_path))
    job = gw.submit(script="echo made-it")
    why = _wait_for_event(job, lambda e: "is down" in e.message)
    assert "SSH" in why
    assert job.state in (JobState.QUEUED, JobState.STAGING_IN)  # waiting, not failed
    with _Proxy(port, sshd["port"]):
        assert job.wait(WAIT + 60) == JobState.COMPLETED  # within the back-off's cap
        assert job.stdout() == "made-it\n"
    assert transport_of(gw).connections_opened == 1


def test_dropped_connection_is_reopened_and_jobs_finish(
    open_remote: Callable[..., Gateway], sshd: dict[str, Any], tmp_path: Path, remote_dir: str
) -> None:
    go = f"$HOME/{remote_dir}/go"
    with _Proxy(None, sshd["port"]) as proxy:
        gw = open_remote(port=proxy.port, known_hosts=_repin(sshd, proxy.port, tmp_path))
        jobs = [
            gw.submit(script=f'while [ ! -e "{go}" ]; do sleep 0.05; done; exit {i}')
            for i in range(3)
        ]
        for job in jobs:
            assert job.wait(WAIT, until=lambda s: s == JobState.RUNNING) == JobState.RUNNING
        proxy.drop_all()
        ssh_run(sshd, f'touch "{go}"')
        assert [(j.wait(WAIT), j.exit_code) for j in jobs] == [
            (JobState.COMPLETED, 0),
            (JobState.FAILED, 1),
            (JobState.FAILED, 2),
        ]
        assert transport_of(gw).connections_opened == 2


def test_cancel_while_sshd_is_down_is_carried_out_when_it_is_back(
    open_remote: Callable[..., Gateway], sshd: dict[str, Any], tmp_path: Path
) -> None:
    port = _free_port()
    with _Proxy(port, sshd["port"]):
        gw = open_remote(port=port, known_hosts=_repin(sshd, port, tmp_path))
        job = gw.submit(script="echo started; exec sleep 300")
        assert job.wait(WAIT, until=lambda s: s == JobState.RUNNING) == JobState.RUNNING
    job.cancel()
    # sshd is gone: both the cancel and the status poll fail, and say why ...
    for kind in ("cancel_retry", "scheduler_unavailable"):
        assert f"SSH to {sshd['user']}@{sshd['host']}:{port} " in _wait_for_event(
            job, lambda e, kind=kind: e.type == kind
        )
    assert job.state == JobState.RUNNING  # ... but the job is neither failed nor lost
    with _Proxy(port, sshd["port"]):
        assert job.wait(WAIT + 60) == JobState.CANCELLED
    assert job.exit_code == 143


# -- the remote shell library, run here with bash (no sshd needed) -------------------------------


@pytest.mark.parametrize("name", ["launch", "find", "poll", "stop"])
def test_remote_library_parses(name: str) -> None:
    import subprocess

    argv = script_argv(name)
    subprocess.run(["bash", "-n", "-c", argv[2]], check=True)


def test_poll_reports_live_gone_and_exit_codes(tmp_path: Path) -> None:
    import subprocess

    live = subprocess.Popen(["sleep", "300"])
    try:
        stat = Path(f"/proc/{live.pid}/stat").read_text()
        start = stat[stat.rindex(")") + 2 :].split()[19]
        done = tmp_path / "done"
        done.mkdir()
        (done / "exitcode").write_text("3\n")
        (done / "job.started").write_text("")
        lines = (
            f"live\t{live.pid}\t{start}\t{tmp_path}\n"
            f"reused\t{live.pid}\t1\t{tmp_path}\n"  # same pid, another start time
            f"done\t999999999\t5\t{done}\n"
        )
        out = subprocess.run(
            script_argv("poll"), input=lines, capture_output=True, text=True, check=True
        ).stdout
    finally:
        live.kill()
        live.wait()
    assert out.splitlines() == ["live\t1\t\t0\t", "reused\t0\t\t0\t", "done\t0\t3\t1\t"]


# -- helpers --------------------------------------------------------------------------------


def _dest(sshd: dict[str, Any], **overrides: Any) -> Destination:
    return Destination.model_validate({"name": "t", "scheduler": "ssh", **sshd, **overrides})


def _free_port() -> int:
    """A port nothing listens on, below the ephemeral range: no outgoing connection takes
    it while a test needs it free and then binds it (for the proxy)."""
    low, _ = (int(p) for p in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for port in random.sample(range(10000, low), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port")


def _repin(sshd: dict[str, Any], port: int, tmp_path: Path) -> str:
    """A known_hosts with the test sshd's own key pinned for another port (the proxy's)."""
    pinned = Path(sshd["known_hosts"]).read_text().split()
    path = tmp_path / f"known_hosts.{port}"
    path.write_text(f"[{sshd['host']}]:{port} {pinned[1]} {pinned[2]}\n")
    return str(path)


def _wait_for_event(job: Job, match: Callable[[Any], bool]) -> str:
    for _ in range(1200):
        for event in job.events():
            if match(event):
                return str(event.message)
        job.wait(0.05)
    raise AssertionError(f"no such event; events: {[(e.type, e.message) for e in job.events()]}")


class _Proxy:
    """A TCP forwarder to the test sshd on 127.0.0.1: stands in for a server that comes
    up late (a fixed port) or drops every connection at once (drop_all)."""

    def __init__(self, port: int | None, target: int) -> None:
        self.port, self.target = port or 0, target
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __enter__(self) -> _Proxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def shut() -> None:
            self._server.close()
            await self.drop()
            await asyncio.gather(*self._handlers, return_exceptions=True)

        self._call(shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def drop_all(self) -> None:
        self._call(self.drop())

    async def drop(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}
        self._handlers.discard(task)
