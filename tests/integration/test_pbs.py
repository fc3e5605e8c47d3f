"""PBS (Torque flavor) through a real Gateway, on the qsub / qstat / qdel that Slurm's Torque
wrappers provide on the test cluster: every end state there is `C` with no exit status, so
the exit-code sidecar decides; qdel of a finished job exits 1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_slurm import WAIT, wait_for_file

from conftest import make_config, need, service_env, slurm_answers, which
from jobgate import Gateway, JobState

pytestmark = pytest.mark.slurm
S = JobState


@pytest.fixture
def gw(home: Path, tmp_path: Path) -> Iterator[Gateway]:
    need(which("qsub") and slurm_answers(), "no PBS commands (run scripts/slurm-up.sh as root)")
    queue = service_env().get("JOBGATE_TEST_SLURM_PARTITION")
    pbs = {
        "scheduler": "pbs",
        "flavor": "torque",
        "capacity": 20,
        "poll_interval_s": 0.5,
        "defaults": {"partition": queue} if queue else {},
        "allowed_directives": ["-h"],  # a held job shows what happens while pending
    }
    with Gateway(make_config(home, f"sqlite:///{tmp_path / 'jobgate.db'}", pbs=pbs)) as gateway:
        yield gateway


def test_exit_codes_and_output(gw: Gateway) -> None:
    ok = gw.submit(script="echo out; echo err >&2", resources={"walltime": "00:05:00"})
    bad = gw.submit(script="echo partial; exit 3", resources={"memory": "100M"})
    assert ok.wait(WAIT) == S.COMPLETED
    assert (ok.exit_code, ok.stdout(), ok.stderr()) == (0, "out\n", "err\n")
    assert bad.wait(WAIT) == S.FAILED
    assert (bad.exit_code, bad.record.reason, bad.stdout()) == (3, "exit code 3", "partial\n")
    assert ok.native_id and ok.native_id != bad.native_id


def test_cancel_while_running_and_while_held(gw: Gateway) -> None:
    running = gw.submit(script="echo started; exec sleep 300")
    held = gw.submit(script="touch ran", resources={"directives": ["-h"]})
    assert running.wait(WAIT, until=lambda s: s == S.RUNNING) == S.RUNNING
    held.wait(WAIT, until=lambda s: s == S.SUBMITTED)
    wait_for_file(gw.home / "runs" / running.id / "stdout", "started")
    running.cancel()
    held.cancel()
    assert (running.wait(WAIT), running.exit_code) == (S.CANCELLED, 143)
    assert (held.wait(WAIT), held.exit_code) == (S.CANCELLED, None)
    assert not (gw.home / "runs" / held.id / "job.started").exists()
