"""Wrapper scripts: compared with golden files; every user value shell-quoted."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobgate.backends.environment import Account, JobEnvironment, job_environment
from jobgate.backends.layout import JobFiles
from jobgate.backends.scripts import render
from jobgate.config import Destination
from jobgate.spec import JobRecord, JobSpec
from jobgate.states import JobState

GOLDEN = Path(__file__).parent.parent / "data" / "golden"
NASTY = 'it\'s $(touch /tmp/pwned) `id` "quoted" ; rm -rf ~ \\ end'


ID = "01JOBGATE0000000000000TEST"


def record(**spec: object) -> JobRecord:
    return JobRecord(
        id=ID,
        name="t",
        owner="u",
        destination="local",
        state=JobState.STAGING_IN,
        spec=JobSpec.parse(spec),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


# What the golden wrappers are rendered with, instead of this machine's own values.
GATEWAY_ENV = {"PATH": "/opt/site/bin:/usr/bin:/bin", "LANG": "en_GB.UTF-8", "TOKEN": "s3cret"}
ACCOUNT = Account("alice", "/home/alice", "/bin/bash")


def fixed_env(job: JobRecord, dest: Destination, files: JobFiles) -> JobEnvironment:
    return job_environment(job, dest, files.run_dir, gateway_env=GATEWAY_ENV, account=ACCOUNT)


def render_local(job: JobRecord, files: JobFiles) -> str:
    return render("local.sh.j2", job, files, fixed_env(job, Destination(name="local"), files))


def check_golden(name: str, text: str) -> None:
    """Compare with the golden file; JOBGATE_REGEN_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("JOBGATE_REGEN_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed (JOBGATE_REGEN_GOLDEN=1 to accept)"


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("local-script.sh", {"script": "echo hi", "environment": {"A": "1", "B": NASTY}}),
        (
            "local-exec.sh",
            {
                "executable": "/bin/echo",
                "arguments": ["a b", NASTY],
                "directory": "work",
                "stdin": "in.txt",
                "stdout": "out.txt",
            },
        ),
    ],
)
def test_local_wrapper_matches_golden(name: str, spec: dict[str, object]) -> None:
    job = record(**spec)
    text = render_local(job, JobFiles.of(job, f"/runs/{job.id}"))
    check_golden(name, text)
    subprocess.run(["sh", "-n"], input=text, text=True, check=True)  # POSIX sh parses it


def test_nasty_values_reach_the_job_verbatim(tmp_path: Path) -> None:
    """Run just the export lines: the value arrives as typed, nothing is executed."""
    job = record(script="true", environment={"NASTY": NASTY})
    text = render_local(job, JobFiles.of(job, str(tmp_path / job.id)))
    exports = "\n".join(line for line in text.splitlines() if line.startswith("export "))
    out = subprocess.run(
        ["bash", "-c", exports + '\nprintf %s "$NASTY"'], capture_output=True, text=True, check=True
    ).stdout
    assert out == NASTY
    assert not Path("/tmp/pwned").exists()


def test_job_files_stay_in_their_places() -> None:
    files = JobFiles.of(record(script="x", directory="sub", stdout="o.txt"), f"/runs/{ID}")
    assert files.run_dir == "/runs/01JOBGATE0000000000000TEST"
    assert files.workdir == files.run_dir + "/sub"
    assert files.stdout == files.workdir + "/o.txt"
    assert files.stderr == files.run_dir + "/stderr"
    absolute = JobFiles.of(record(script="x", directory="/data/w"), f"/runs/{ID}")
    assert absolute.workdir == "/data/w"
