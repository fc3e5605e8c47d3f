"""A job's environment on every backend, with real processes: a marker variable in the
gateway's own environment never reaches a job (nor its cancel.sh), while the base, the
spec's variables, a destination's pass_env and JOBGATE_JOB_ID / JOBGATE_RUN_DIR do.
Through `jobgate serve`: tests/api/test_job_environment.py."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_over_ssh import scheduler
from test_slurm import slurm_destination, wait_for_file
from test_ssh import open_remote, remote_dir, sshd

from conftest import need, service_env, slurm_answers, which
from jobgate import Gateway, JobState
from jobgate.sdk import Job

__all__ = ["open_remote", "remote_dir", "sshd"]  # fixtures, shared with test_ssh
WAIT = 90
MARKER, PASSED = "JOBGATE_TEST_MARKER_SECRET", "JOBGATE_TEST_PASSED_MODULEPATH"
BASE = {"PATH", "HOME", "USER", "LANG", "TMPDIR", "SHELL"}
SHELLS_OWN = {"PWD", "OLDPWD", "SHLVL", "_"}  # what bash itself sets and exports
# The job's environment, NUL-separated (values may hold newlines), on stdout.
SCRIPT = "env -0"
SPEC = {"environment": {"GREETING": "it's $HOME"}}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite: these tests are about jobs, not stores."""
    return f"sqlite:///{tmp_path / 'jobgate.db'}"


@pytest.fixture
def gateway_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway's own environment, before any Gateway is opened."""
    monkeypatch.setenv(MARKER, "leak")
    monkeypatch.setenv(PASSED, "/etc/modules")


@pytest.fixture
def open_gw(
    gateway_env: None, open_gateway: Callable[..., Gateway]
) -> Iterator[Callable[..., Gateway]]:
    yield open_gateway


def env_of(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split("\0") if item)


def check(job: Job, *, on_this_host: bool) -> dict[str, str]:
    assert job.wait(WAIT) == JobState.COMPLETED, job.record.reason
    env = env_of(job.stdout())
    assert MARKER not in env and "leak" not in env.values()
    assert env[PASSED] == "/etc/modules" and env["GREETING"] == "it's $HOME"
    assert (env["JOBGATE_JOB_ID"], env["JOBGATE_RUN_DIR"]) == (job.id, job.record.run_dir)
    assert all(env.get(name) for name in BASE), {n: env.get(n) for n in BASE}
    if on_this_host:
        me = pwd.getpwuid(os.geteuid())
        assert (env["HOME"], env["USER"], env["SHELL"]) == (me.pw_dir, me.pw_name, me.pw_shell)
        assert env["PATH"] == os.environ["PATH"]
    return env


def test_local_jobs_get_exactly_their_environment(open_gw: Callable[..., Gateway]) -> None:
    gw = open_gw(local={"pass_env": ["JOBGATE_TEST_PASSED_*"]})
    env = check(gw.submit(script=SCRIPT, **SPEC), on_this_host=True)
    ours = BASE | {PASSED, "GREETING", "JOBGATE_JOB_ID", "JOBGATE_RUN_DIR", "JOBGATE_EVENTS"}
    assert set(env) - SHELLS_OWN == ours


@pytest.mark.parametrize(
    "scheduler_name", ["local", "process", pytest.param("slurm", marks=pytest.mark.slurm)]
)
def test_cancel_sh_runs_without_the_gateways_environment(
    open_gw: Callable[..., Gateway], scheduler_name: str
) -> None:
    here = {"scheduler": scheduler_name, "poll_interval_s": 0.2}
    if scheduler_name == "slurm":
        need(slurm_answers(), "no Slurm test cluster (run scripts/slurm-up.sh as root)")
        here = slurm_destination()
    gw = open_gw(here=here)
    job = gw.submit(script="echo 'env -0 > cancel.env' > cancel.sh\necho started\nexec sleep 300")
    assert job.wait(WAIT, until=lambda s: s == JobState.RUNNING) == JobState.RUNNING
    run_dir = Path(job.record.run_dir or "")
    wait_for_file(run_dir / "stdout", "started")
    job.cancel()
    assert job.wait(WAIT) == JobState.CANCELLED
    env = env_of((run_dir / "cancel.env").read_text())
    assert MARKER not in env and env["JOBGATE_JOB_ID"] == job.id and env["HOME"]


def test_process_jobs_on_this_host(open_gw: Callable[..., Gateway]) -> None:
    gw = open_gw(here={"scheduler": "process", "pass_env": [PASSED], "poll_interval_s": 0.2})
    env = check(gw.submit(script=SCRIPT, **SPEC), on_this_host=True)
    assert MARKER not in env


def test_process_jobs_over_ssh_keep_the_logins_own(
    gateway_env: None, open_remote: Callable[..., Gateway], sshd: dict[str, Any]
) -> None:
    gw = open_remote(pass_env=[PASSED])
    env = check(gw.submit(script=SCRIPT, **SPEC), on_this_host=False)
    assert (env["USER"], env["HOME"]) == (sshd["user"], f"/home/{sshd['user']}")


@pytest.fixture
def cluster() -> None:
    need(slurm_answers(), "no Slurm test cluster (run scripts/slurm-up.sh as root)")


@pytest.mark.slurm
def test_slurm_jobs_and_their_steps(cluster: None, open_gw: Callable[..., Gateway]) -> None:
    gw = open_gw(slurm=slurm_destination(pass_env=[PASSED]))
    job = gw.submit(script=f"{SCRIPT}\nsrun printenv GREETING >&2", **SPEC)
    env = check(job, on_this_host=True)
    assert env["SLURM_JOB_ID"] == job.native_id and env["SLURM_EXPORT_ENV"] == "ALL"
    assert job.stderr() == "it's $HOME\n"  # a step gets the job's variables too


@pytest.mark.slurm
def test_pbs_jobs(cluster: None, open_gw: Callable[..., Gateway]) -> None:
    need(which("qsub"), "no PBS commands (run scripts/slurm-up.sh as root)")
    queue = service_env().get("JOBGATE_TEST_SLURM_PARTITION")
    pbs = {
        "scheduler": "pbs",
        "poll_interval_s": 0.5,
        "defaults": {"partition": queue} if queue else {},
        "pass_env": [PASSED],
    }
    gw = open_gw(pbs=pbs)
    check(gw.submit(script=SCRIPT, **SPEC), on_this_host=True)


@pytest.mark.slurm
@pytest.mark.ssh
def test_slurm_over_ssh(
    cluster: None, gateway_env: None, open_remote: Callable[..., Gateway], sshd: dict[str, Any]
) -> None:
    gw = open_remote(**scheduler("slurm"), pass_env=[PASSED])
    env = check(gw.submit(script=SCRIPT, **SPEC), on_this_host=False)
    assert (env["USER"], env["SLURM_JOB_USER"]) == (sshd["user"], sshd["user"])
