"""The `jobgate` PSI/J executor end to end on the embedded gateway (local destination) and
on a real `jobgate serve`: exit codes, output files, environment, launchers, cancel,
callbacks and their order, attach from a fresh executor, list."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psij
import pytest

from conftest import JOBGATE, ServeProcess
from jobgate.psij import JobgateExecutor, JobgateExecutorConfig, sources
from jobgate.spec import JobRecord, JobSpec
from jobgate.states import JobState

WAIT = timedelta(seconds=60)  # a safety net: these jobs end within a second or two
S = psij.JobState
MakeExecutor = Callable[..., JobgateExecutor]


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[MakeExecutor]:
    """executor() -> a new `jobgate` executor (as PSI/J makes it) on this test's store."""
    config_file = tmp_path / "jobgate.toml"
    config_file.write_text("[destinations.local]\ncapacity = 16\n")

    def make(url: str = "jobgate://local") -> JobgateExecutor:
        config = JobgateExecutorConfig(config_file=config_file, home=tmp_path / "jg", server="")
        ex = psij.JobExecutor.get_instance("jobgate", url=url, config=config)
        assert isinstance(ex, JobgateExecutor)
        return ex

    yield make
    sources.shutdown()


def run(ex: JobgateExecutor, *argv: str, **kw: Any) -> tuple[psij.Job, psij.JobStatus]:
    job = psij.Job(psij.JobSpec(argv[0], list(argv[1:]), **kw))
    ex.submit(job)
    status = job.wait(WAIT)
    assert status is not None, f"{job} did not end within {WAIT}"
    return job, status


def test_psij_finds_the_executor(executor: MakeExecutor) -> None:
    ex = executor()
    assert type(ex) is JobgateExecutor  # the class itself, not a copy PSI/J's loader made
    assert ex.name == "jobgate" and "jobgate" in psij.JobExecutor.get_executor_names()


def test_exit_codes_and_output_files(executor: MakeExecutor, tmp_path: Path) -> None:
    ex = executor()
    out, err = tmp_path / "out", tmp_path / "err"
    job, status = run(
        ex, "/bin/sh", "-c", "echo out; echo err >&2", stdout_path=out, stderr_path=err
    )
    assert (status.state, status.exit_code) == (S.COMPLETED, 0)
    assert (out.read_text(), err.read_text()) == ("out\n", "err\n")
    assert status.metadata is not None and status.metadata["nativeId"] == job.native_id

    _, status = run(ex, "/bin/sh", "-c", "exit 3")
    assert (status.state, status.exit_code, status.message) == (S.FAILED, 3, "exit code 3")
    _, status = run(ex, "/no/such/program")
    assert status.state == S.FAILED and status.exit_code not in (None, 0)


def test_a_walltime_is_enforced_and_reported(executor: MakeExecutor) -> None:
    attrs = psij.JobAttributes(duration=timedelta(seconds=1))
    _, status = run(executor(), "/bin/sleep", "30", attributes=attrs)
    assert status.state == S.FAILED and status.metadata is not None
    assert status.message is not None and status.message.startswith("TIMEOUT")
    assert status.metadata["jobgate_state"] == "TIMEOUT"


def test_environment_stdin_and_directory(executor: MakeExecutor, tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    workdir.mkdir()
    (tmp_path / "in").write_text("from stdin")
    _, status = run(
        executor(),
        "/bin/sh",
        "-c",
        'printf "%s %s " "$X" "$(pwd)"; cat',
        environment={"X": "y"},
        stdin_path=tmp_path / "in",
        stdout_path="out.txt",  # relative: inside the job's directory
        directory=workdir,
    )
    assert status.state == S.COMPLETED
    assert (workdir / "out.txt").read_text() == f"y {workdir} from stdin"


def test_an_empty_environment(executor: MakeExecutor, tmp_path: Path) -> None:
    out = tmp_path / "env"
    _, status = run(
        executor(), "/usr/bin/env", environment={"ONLY": "1"}, inherit_environment=False,
        stdout_path=out,
    )  # fmt: skip
    assert status.state == S.COMPLETED and out.read_text() == "ONLY=1\n"


def test_pre_and_post_launch_keep_the_commands_exit_code(
    executor: MakeExecutor, tmp_path: Path
) -> None:
    (tmp_path / "pre.sh").write_text("export GREETING=hello\n")
    (tmp_path / "post.sh").write_text("echo post\n")
    out = tmp_path / "out"
    _, status = run(
        executor(),
        "/bin/sh",
        "-c",
        'echo "$GREETING"; exit 4',
        pre_launch=tmp_path / "pre.sh",
        post_launch=tmp_path / "post.sh",
        stdout_path=out,
    )
    assert (status.state, status.exit_code) == (S.FAILED, 4)
    assert out.read_text() == "hello\npost\n"

    (tmp_path / "bad.sh").write_text("false\n")  # a failing pre-launch fails the job
    _, status = run(executor(), "/bin/true", pre_launch=tmp_path / "bad.sh")
    assert status.state == S.FAILED


def test_the_multiple_launcher(executor: MakeExecutor, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = psij.ResourceSpecV1(process_count=3)
    _, status = run(
        executor(), "/bin/echo", "hi", launcher="multiple", resources=res, stdout_path=out
    )
    assert status.state == S.COMPLETED and out.read_text() == "hi\n" * 3


def test_what_jobgate_cannot_run_is_refused_at_submit(executor: MakeExecutor) -> None:
    ex = executor()
    job = psij.Job(psij.JobSpec("/bin/true", launcher="aprun"))
    with pytest.raises(psij.InvalidJobException, match="aprun"):
        ex.submit(job)
    assert job.status.state == S.NEW and job.native_id is None
    with pytest.raises(ValueError, match="nowhere"):
        executor("jobgate://nowhere")


def test_cancel_and_callbacks_in_order(executor: MakeExecutor) -> None:
    ex = executor()
    by_executor: list[tuple[str, Any]] = []
    by_job: list[Any] = []
    ex.set_job_status_callback(lambda j, s: by_executor.append((j.id, s.state)))
    job = psij.Job(psij.JobSpec("/bin/sleep", ["60"]))
    job.set_job_status_callback(lambda j, s: by_job.append(s.state))
    ex.submit(job)
    assert job.wait(WAIT, target_states=[S.ACTIVE]) is not None
    job.cancel()
    status = job.wait(WAIT)
    assert status is not None and status.state == S.CANCELED
    assert by_job == [S.QUEUED, S.ACTIVE, S.CANCELED]
    assert by_executor == [(job.id, s) for s in by_job]


def test_a_job_that_ended_at_once_still_passes_through_every_state(
    executor: MakeExecutor,
) -> None:
    ex = executor()
    seen: dict[str, list[Any]] = {}
    ex.set_job_status_callback(lambda j, s: seen.setdefault(j.id, []).append(s.state))
    jobs = [psij.Job(psij.JobSpec("/bin/false" if i % 2 else "/bin/true")) for i in range(8)]
    for job in jobs:
        ex.submit(job)
    for i, job in enumerate(jobs):
        assert job.wait(WAIT) is not None
        assert seen[job.id] == [S.QUEUED, S.ACTIVE, S.FAILED if i % 2 else S.COMPLETED]


def test_attach_from_a_fresh_executor_after_the_gateway_is_gone(executor: MakeExecutor) -> None:
    first = psij.Job(psij.JobSpec("/bin/sleep", ["2"]))
    executor().submit(first)
    assert first.wait(WAIT, target_states=[S.ACTIVE]) is not None
    native_id = first.native_id
    assert native_id is not None
    sources.shutdown()  # as if the submitting process had exited: the job runs on

    ex = executor()
    again = psij.Job()
    ex.attach(again, native_id)
    assert again.native_id == native_id and again.executor is ex
    status = again.wait(WAIT)
    assert status is not None and (status.state, status.exit_code) == (S.COMPLETED, 0)

    ended = psij.Job()  # a job that has ended is complete as soon as it is attached
    ex.attach(ended, native_id)
    assert ended.status.state == S.COMPLETED
    with pytest.raises(psij.InvalidJobException):
        ex.attach(psij.Job(), "01NOSUCHJOB0000000000000000")


def test_list_shows_jobs_that_have_not_ended(executor: MakeExecutor) -> None:
    ex = executor()
    job = psij.Job(psij.JobSpec("/bin/sleep", ["30"]))
    ex.submit(job)
    assert job.native_id in ex.list()
    job.cancel()
    assert job.wait(WAIT) is not None
    assert job.native_id not in ex.list()


def test_a_status_never_goes_backwards(executor: MakeExecutor) -> None:
    ex = executor()
    job = psij.Job(psij.JobSpec("/bin/true"))
    seen: list[Any] = []
    job.set_job_status_callback(lambda j, s: seen.append(s.state))
    now = datetime.now(UTC)

    def rec(state: JobState, **kw: Any) -> JobRecord:
        spec = JobSpec(executable="/bin/true")
        return JobRecord(
            id="J", name=None, owner="me", destination="local", state=state, spec=spec,
            created_at=now, **kw,
        )  # fmt: skip

    ex._apply(job, rec(JobState.COMPLETED, started_at=now, exit_code=0))
    ex._apply(job, rec(JobState.RUNNING, started_at=now))  # a stale read, arriving late
    ex._apply(job, rec(JobState.QUEUED))
    assert seen == [S.QUEUED, S.ACTIVE, S.COMPLETED] and job.status.state == S.COMPLETED


# -- a remote gateway ------------------------------------------------------------------------


@pytest.fixture
def remote(tmp_path: Path, serve: Callable[..., ServeProcess]) -> Iterator[tuple[str, str]]:
    """(url, token) of a `jobgate serve` on a fresh store."""
    (tmp_path / "jobgate.toml").write_text("[destinations.local]\ncapacity = 8\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBGATE_")}
    env |= {"JOBGATE_HOME": str(tmp_path / "srv"), "JOBGATE_CONFIG": str(tmp_path / "jobgate.toml")}
    base = serve(env, "--port", "0").url
    token = subprocess.run(
        [JOBGATE, "token", "create", "--user", "psij"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    yield f"jobgate+{base}?destination=local", token
    sources.shutdown()


def test_a_remote_gateway(remote: tuple[str, str], tmp_path: Path) -> None:
    url, token = remote
    config = JobgateExecutorConfig(token=token)
    ex = psij.JobExecutor.get_instance("jobgate", url=url, config=config)
    seen: list[Any] = []
    ex.set_job_status_callback(lambda j, s: seen.append(s.state))
    _, status = run(ex, "/bin/sh", "-c", "exit 5")
    assert (status.state, status.exit_code) == (S.FAILED, 5)
    assert seen == [S.QUEUED, S.ACTIVE, S.FAILED]

    sleeper = psij.Job(psij.JobSpec("/bin/sleep", ["60"]))
    ex.submit(sleeper)
    assert sleeper.native_id in ex.list()
    fresh = psij.JobExecutor.get_instance("jobgate", url=url, config=config)
    attached = psij.Job()
    fresh.attach(attached, str(sleeper.native_id))
    sleeper.cancel()
    for j in (sleeper, attached):
        status = j.wait(WAIT)
        assert status is not None and status.state == S.CANCELED

    bad = psij.JobExecutor.get_instance("jobgate", url=url, config=JobgateExecutorConfig(token="x"))
    with pytest.raises(psij.SubmitException):
        bad.submit(psij.Job(psij.JobSpec("/bin/true")))
