"""A scheduler over the SSH transport is configuration, not code: Slurm and PBS reached
through the test sshd as its user, with files staged over SFTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_ssh import open_remote, remote_dir, sshd

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
