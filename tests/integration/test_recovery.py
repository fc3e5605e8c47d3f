"""`kill -9` of `jobgate serve` while 50 jobs run; a new one finishes them all, none twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from conftest import make_config, serve_env
from jobgate import AsyncGateway, Gateway, JobState


def test_kill_9_loses_nothing_and_runs_nothing_twice(
    home: Path, database_url: str, tmp_path: Path, serve: Callable[..., subprocess.Popen[str]]
) -> None:
    config = tmp_path / "jobgate.toml"
    env = serve_env(home, database_url, config, "[destinations.local]\ncapacity = 100\n")
    runs, go = tmp_path / "runs.log", tmp_path / "go"
    # Each job notes that it started, then holds until the test says go: no timing guesses.
    script = f'echo "$N" >> {runs}\nwhile [ ! -e {go} ]; do sleep 0.05; done\nexit "$CODE"\n'
    codes = {i: (0 if i < 50 else i) for i in range(54)}  # 50 succeed, 4 fail with their code

    first = serve(env, "--no-api")
    try:
        with Gateway(
            config_path=str(config), home=home, database_url=database_url, supervise=None
        ) as client:
            assert not client.supervising  # the serve process does the work
            jobs = {
                i: client.submit(script=script, environment={"N": str(i), "CODE": str(c)})
                for i, c in codes.items()
            }
            for job in jobs.values():
                assert job.wait(60, until=lambda s: s == JobState.RUNNING) == JobState.RUNNING
            first.send_signal(signal.SIGKILL)
            first.wait()
            second = serve(env, "--no-api")
            try:
                go.touch()
                for job in jobs.values():
                    job.wait(60)
                states = {i: (j.state, j.exit_code) for i, j in jobs.items()}
                events = [(e.type, e.message) for e in jobs[0].events()]
            finally:
                second.terminate()
                second.wait()
    finally:
        if first.poll() is None:
            first.kill()
    assert states == {
        i: (JobState.COMPLETED if c == 0 else JobState.FAILED, c) for i, c in codes.items()
    }
    started = sorted(int(n) for n in runs.read_text().split())
    assert started == sorted(codes)  # each job started exactly once
    recovery = [message for kind, message in events if kind == "recovery"]
    assert recovery and "stopped without notice" in recovery[-1], events


def test_a_clean_stop_is_told_from_a_crash_and_the_end_time_kept(
    home: Path, database_url: str, tmp_path: Path, serve: Callable[..., subprocess.Popen[str]]
) -> None:
    """SIGINT (Ctrl-C) and SIGTERM stop `serve` with 0 and one line; a job that ends while
    no gateway runs is recorded as ended when it did (its exit-code file), not when the
    next gateway came, and its recovery event says the last one had stopped cleanly."""
    config = tmp_path / "jobgate.toml"
    env = serve_env(home, database_url, config, "[destinations.local]\ncapacity = 4\n")
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    for sig in (signal.SIGINT, signal.SIGTERM):
        first = serve(env, "--no-api")
        with Gateway(
            config_path=str(config), home=home, database_url=database_url, supervise=None
        ) as client:
            assert not client.supervising  # serve does, and no one while it is stopped
            job = client.submit(script=f"read -r _ < {gate}\nexit 5\n")
            assert job.wait(60, until=lambda s: s == JobState.RUNNING) == JobState.RUNNING
            first.send_signal(sig)
            assert first.wait(30) == 0
            first.drain.join(30)  # type: ignore[attr-defined]
            log = "".join(first.log)  # type: ignore[attr-defined]
            assert log.count("stopping") == 1 and "Traceback" not in log, log

            with open(gate, "w") as fifo:  # the job ends now, with no gateway watching
                fifo.write("go\n")
            sidecar = Path(job.record.run_dir or "") / "exitcode"
            second = serve(env, "--no-api")
            try:
                assert job.wait(60) == JobState.FAILED and job.exit_code == 5
            finally:
                second.terminate()
                second.wait()
            ended = job.record.finished_at
            assert ended is not None
            assert abs(ended.timestamp() - sidecar.stat().st_mtime) < 0.01
            recovery = [e.message for e in job.events() if e.type == "recovery"]
            assert recovery and "stopped cleanly" in recovery[-1], recovery


def test_what_a_job_said_before_a_restart_is_heard_once_and_kept(
    home: Path, database_url: str, tmp_path: Path
) -> None:
    """A job talks, its gateway stops cleanly, the next takes it over: listening resumes
    where the last note got to (nothing heard twice, nothing lost), and the @var values
    said before the restart are still the job's results."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    script = (
        "echo '@var=[first:1]'\necho '@event=[STEP:before]'\n"
        f"read -r _ < {gate}\n"
        "echo '@event=[STEP:after]'\necho '@var=[second:2]'\n"
    )
    config = make_config(home, database_url)

    async def scenario() -> tuple[JobState, list[str], dict[str, object] | None]:
        async with AsyncGateway(config) as gw:
            job = await gw.submit(script=script)
            while not any(e.type == "job.STEP" for e in await gw.events(job.id)):
                await gw.service.wait_change(job.id, 10)  # a note wakes it too
        async with AsyncGateway(config) as gw:  # a clean stop; the job runs on
            with open(gate, "w") as fifo:  # the job reads: this open does not block
                fifo.write("go\n")
            done = await gw.wait(job.id, 60)
            steps = [e.message for e in await gw.events(job.id) if e.type == "job.STEP"]
            result = await gw.service.results.get(job.id)
        return done.state, steps, None if result is None else result.data

    state, steps, results = asyncio.run(scenario())
    assert (state, steps) == (JobState.COMPLETED, ["before", "after"])
    assert results == {"first": 1, "second": 2}
