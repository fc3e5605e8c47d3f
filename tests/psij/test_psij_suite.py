"""PSI/J's own test suite (pinned in scripts/psij-suite.sh) against the `jobgate` executor,
from our pytest run: no failures on the embedded gateway's local destination, on the test
Slurm cluster, and through a `jobgate serve`. Skips are PSI/J's own for a single-launcher
executor (they are listed in docs/psij.md)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import need, slurm_answers

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "psij-suite.sh"
COUNTS = re.compile(r"^(\w+): passed=(\d+) skipped=(\d+) failed=(\d+) errors=(\d+)$", re.M)
# PSI/J's skips for an executor run with the single launcher: test_mpi (needs mpirun),
# test_nodefile (not with single), test_resources::test_nodes (batch executors only).
EXPECTED_SKIPS = 3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def run_suite(name: str) -> tuple[int, int]:
    done = subprocess.run(
        ["bash", str(SCRIPT), name], capture_output=True, text=True, timeout=1700, check=False
    )
    if done.returncode == 2 and "pip download failed" in done.stderr:
        need(False, "cannot download the psij-python sdist from PyPI")
    found = COUNTS.search(done.stdout)
    assert found, f"no counts from {SCRIPT.name} (exit {done.returncode}):\n{done.stderr[-5000:]}"
    passed, skipped, failed, errors = map(int, found.groups()[1:])
    assert (failed, errors) == (0, 0), done.stderr[-20000:]
    assert done.returncode == 0, done.stderr[-5000:]
    return passed, skipped


@pytest.mark.parametrize("name", ["local", "remote"])
def test_psij_suite(name: str) -> None:
    passed, skipped = run_suite(name)
    assert passed > 0 and skipped == EXPECTED_SKIPS


@pytest.mark.slurm
def test_psij_suite_on_slurm() -> None:
    need(slurm_answers(), "no Slurm test cluster (run scripts/slurm-up.sh as root)")
    passed, skipped = run_suite("slurm")
    assert passed > 0 and skipped == EXPECTED_SKIPS
