"""A scheduler over the SSH transport is configuration, not code: Slurm and PBS reached
through the test sshd as its user, with files staged over SFTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_ssh import open_remote, remote_dir, ssh_run, sshd

from conftest import need, service_env, slurm_answers
from jobgate import Gateway, JobState

pytestmark = [pytest.mark.slurm, pytest.mark.ssh]
WAIT = 90
__all__ = ["open_remote", "remote_dir", "sshd"]  # fixtures, shared with test_ssh


def scheduler(name: str) -> dict[str, Any]:
    need(slurm_answers(), "no Slurm test cluster (run scripts/slurm-up.sh as root)")
    partition = service_env().get("JOBGATE_TEST_SLURM_PARTITION", "debug")
    return {
        "scheduler": name,
        "transport": "ssh",
        "poll_interval_s": 0.5,
        "defaults": {"partition": partition},
    }


def test_slurm_over_ssh(open_remote: Callable[..., Gateway], tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("21\n")
    gw = open_remote(**scheduler("slurm"))
    job = gw.submit(
        script='echo "over ssh as $(id -un)"; echo $(( $(cat in.txt) * 2 )) > out.txt; exit 3',
        input_files=[{"source": str(source)}],
        output_files=["out.txt"],
    )
    assert job.wait(WAIT) == JobState.FAILED
    assert (job.exit_code, job.stdout()) == (3, "over ssh as jobtest\n")
    assert job.native_id and job.native_id.isdigit()  # a Slurm job id
    assert (gw.home / "runs" / job.id / "outputs" / "out.txt").read_text() == "42\n"


def test_pbs_over_ssh(open_remote: Callable[..., Gateway]) -> None:
    gw = open_remote(**scheduler("pbs"), flavor="torque")
    job = gw.submit(script="echo pbs over ssh")
    assert job.wait(WAIT) == JobState.COMPLETED
    assert (job.exit_code, job.stdout()) == (0, "pbs over ssh\n")


DROPPING_SBATCH = """#!/bin/bash
# sbatch, then - the first time only - the SSH connection that ran it dies before the
# answer can travel back: the job is in the queue, the gateway has no native id.
out=$(sbatch "$@") || { echo "$out"; exit 1; }
here=$(dirname "$0")
if [ ! -e "$here/dropped" ]; then
  touch "$here/dropped"
  p=$PPID
  while [ "$p" -gt 1 ]; do
    [ "$(cat /proc/$p/comm)" = sshd ] && kill -KILL "$p" 2>/dev/null
    p=$(awk '{print $4}' "/proc/$p/stat")
  done
  sleep 5
fi
echo "$out"
"""


# squeue that cannot reach the controller the first time it is asked (as after an outage)
FLAKY_SQUEUE = """#!/bin/bash
here=$(dirname "$0")
if [ ! -e "$here/squeued" ]; then
  touch "$here/squeued"
  echo "squeue: error: Unable to contact slurm controller (connect failure)" >&2
  exit 1
fi
exec squeue "$@"
"""


def _install(sshd: dict[str, Any], path: str, text: str) -> None:
    ssh_run(sshd, f"cat > {path} <<'EOF'\n{text}EOF\nchmod +x {path}")


@pytest.mark.parametrize("outage", [False, True])
def test_a_connection_lost_after_sbatch_never_runs_the_job_twice(
    open_remote: Callable[..., Gateway], sshd: dict[str, Any], remote_dir: str, outage: bool
) -> None:
    """Without `outage` the gateway finds the job by name at once, after it reconnects;
    with it, that look fails too, the job goes back to the queue, and its next turn looks
    again before it would submit: either way, one Slurm job, run once."""
    home = ssh_run(sshd, "pwd").strip()
    ssh_run(sshd, f"mkdir -p {remote_dir}")
    _install(sshd, f"{remote_dir}/sbatch", DROPPING_SBATCH)
    _install(sshd, f"{remote_dir}/squeue", FLAKY_SQUEUE)
    commands = {"sbatch": f"{home}/{remote_dir}/sbatch"}
    if outage:
        commands["squeue"] = f"{home}/{remote_dir}/squeue"
    gw = open_remote(**scheduler("slurm"), commands=commands)
    job = gw.submit(script=f"echo ran >> $HOME/{remote_dir}/ran.txt")
    assert job.wait(WAIT) == JobState.COMPLETED
    assert ssh_run(sshd, f"test -e {remote_dir}/dropped && echo dropped") == "dropped\n"
    assert ssh_run(sshd, f"cat {remote_dir}/ran.txt") == "ran\n"  # once
    ids = ssh_run(sshd, f"squeue -h -t all -n jobgate-{job.id} -o %i").split()
    assert ids == [job.native_id]  # one Slurm job, the one jobgate found and followed
    requeued = [e for e in job.events() if e.type == "QUEUED" and "retry" in e.message]
    assert bool(requeued) == outage


def test_what_a_job_says_over_ssh_is_heard_while_it_runs(
    open_remote: Callable[..., Gateway], sshd: dict[str, Any]
) -> None:
    """Read with one remote command per look for all running jobs, not one per job."""
    gw = open_remote(**scheduler("slurm"))
    script = (
        "echo '@event=[JOB_INITIALIZED:ready]'\n"
        'echo \'{"type": "STEP", "data": {"n": 1}}\' >> "$JOBGATE_EVENTS"\n'
        "while [ ! -e go ]; do sleep 0.1; done\n"  # the test says go once it heard
        "echo '@var=[score:7]'\n"
    )
    jobs = [gw.submit(script=script) for _ in range(3)]
    for job in jobs:
        heard = wait_for_events(job, {"job.JOB_INITIALIZED", "job.STEP"})
        assert job.state == JobState.RUNNING, heard
    for job in jobs:
        ssh_run(sshd, f"touch {job.record.run_dir}/go")
    for job in jobs:
        assert job.wait(WAIT) == JobState.COMPLETED, job.stderr()
        assert (job.results() or {})["data"] == {"score": 7}  # its last words


def wait_for_events(job: Any, kinds: set[str]) -> list[str]:
    """The job's events until these kinds are among them (a bounded look: a job's own
    events have no stream in the SDK)."""
    deadline = time.monotonic() + WAIT
    while True:
        seen = [e.type for e in job.events()]
        if kinds <= set(seen):
            return seen
        assert time.monotonic() < deadline, seen
        time.sleep(0.1)
