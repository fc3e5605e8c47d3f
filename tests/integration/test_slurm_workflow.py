"""What Slurm knows, kept and acted on, on the test cluster: the pending reason
(`--begin=now+1hour` waits for BeginTime), a NODE_FAIL made real by taking the node down
under a running job (its reason code, and a retry policy that runs it again to the end),
and dependencies across local and Slurm."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_slurm import slurm_destination, wait_for_file

from conftest import make_config, need, slurm_answers
from jobgate import Gateway, JobState
from jobgate.sdk import Job

pytestmark = pytest.mark.slurm
S = JobState
WAIT = 90


@pytest.fixture
def gw(home: Path, tmp_path: Path) -> Iterator[Gateway]:
    need(slurm_answers(), "no Slurm test cluster (run scripts/slurm-up.sh as root)")
    slurm = slurm_destination(allowed_directives=["--begin", "--no-requeue"])
    config = make_config(home, f"sqlite:///{tmp_path / 'jobgate.db'}", slurm=slurm, local={})
    with Gateway(config) as gateway:
        yield gateway


def said(job: Job, type_: str, text: str) -> str:
    """Until the job has an event of `type_` saying `text` (a bounded look: the poll
    writes it once a change is seen)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for e in job.events():
            if e.type == type_ and text in e.message:
                return e.message
        time.sleep(0.1)
    raise AssertionError(f"job {job.id} never said {type_} {text!r}")


def test_a_job_held_by_begin_shows_begintime(gw: Gateway) -> None:
    job = gw.submit(
        script="true", destination="slurm", resources={"directives": ["--begin=now+1hour"]}
    )
    said(job, "pending_reason", "BeginTime")
    assert job.record.pending_reason == "BeginTime"
    assert job.waiting() == "pending in the scheduler: BeginTime"
    assert job.cancel() == S.CANCELLED or job.wait(WAIT) == S.CANCELLED
    assert job.record.pending_reason is None  # an ended job waits for nothing


def _node() -> str:
    out = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True, check=True
    )
    return out.stdout.split()[0]


def _scontrol(*args: str, check: bool = True) -> None:
    subprocess.run(["scontrol", "update", *args], check=check, capture_output=True, timeout=30)


@pytest.mark.slow
def test_a_node_failure_is_node_fail_and_a_retry_runs_it_again(gw: Gateway, tmp_path: Path) -> None:
    marker = tmp_path / "attempted"
    # The first attempt marks that it ran and waits; the second finds the mark and ends.
    script = f"if [ -e {marker} ]; then echo second; exit 0; fi; touch {marker}; exec sleep 600"
    job = gw.submit(
        script=script,
        destination="slurm",
        resources={"directives": ["--no-requeue"]},  # else Slurm requeues it itself
        retry={"max": 1, "on": ["NODE_FAIL"]},
    )
    assert job.wait(WAIT, until=lambda s: s == S.RUNNING) == S.RUNNING
    wait_for_file(marker)  # it is running its script: now take the node from under it
    node = _node()
    first_native = job.native_id
    _scontrol(f"nodename={node}", "state=down", "reason=jobgate-node-fail-test")
    try:
        again = said(job, "QUEUED", "NODE_FAIL")
        assert "attempt 1 ended FAILED (NODE_FAIL)" in again
    finally:  # it may be back already (slurmd registers again): then there is no resume
        _scontrol(f"nodename={node}", "state=resume", check=False)
    assert job.wait(WAIT * 2) == S.COMPLETED
    record = job.record
    assert (record.attempt, job.stdout()) == (2, "second\n")
    assert record.native_id != first_native and record.reason_code is None
    (event,) = [e for e in job.events() if e.type == "QUEUED" and e.data]
    assert (event.data["native_id"], event.data["reason_code"]) == (first_native, "NODE_FAIL")


def test_dependencies_across_local_and_slurm(gw: Gateway) -> None:
    on_slurm = gw.submit(script="echo a", destination="slurm")
    on_local = gw.submit(
        script="echo b", destination="local", depends_on={"afterok": [on_slurm.id]}
    )
    back = gw.submit(script="echo c", destination="slurm", depends_on={"afterok": [on_local.id]})
    failing = gw.submit(script="exit 2", destination="slurm")
    never = gw.submit(script="echo no", destination="local", depends_on={"afterok": [failing.id]})
    assert [j.wait(WAIT) for j in (on_slurm, on_local, back)] == [S.COMPLETED] * 3
    assert [j.stdout() for j in (on_slurm, on_local, back)] == ["a\n", "b\n", "c\n"]
    assert on_local.record.started_at >= on_slurm.record.finished_at  # type: ignore[operator]
    assert never.wait(WAIT) == S.REJECTED
    assert never.record.reason_code == "DEPENDENCY_NEVER_SATISFIED"


def test_an_array_task_by_task_on_slurm(gw: Gateway, tmp_path: Path) -> None:
    go = tmp_path / "go"
    script = (
        'i=$SLURM_ARRAY_TASK_ID; echo "task $i"\n'
        f"while [ ! -e {go} ]; do sleep 0.1; done\n"
        '[ "$i" != 4 ]\n'
    )
    job = gw.submit(script=script, destination="slurm", resources={"array": "0-9%3"})
    deadline = time.monotonic() + WAIT
    while not any(t.state == S.RUNNING for t in job.tasks()):  # seen while they run
        assert time.monotonic() < deadline, job.tasks()
        time.sleep(0.1)
    running = [t for t in job.tasks() if t.state == S.RUNNING]
    assert 1 <= len(running) <= 3 and all(t.started_at for t in running)
    go.touch()
    assert job.wait(WAIT * 2) == S.FAILED
    codes = {t.index: (t.state, t.exit_code) for t in job.tasks()}
    assert codes == {i: (S.FAILED, 1) if i == 4 else (S.COMPLETED, 0) for i in range(10)}
