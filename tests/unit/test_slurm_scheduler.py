"""Slurm: job scripts compared with golden files, parsers against output recorded from the
real test cluster (tests/data/slurm/record.sh), and bad input refused with the field named."""

from __future__ import annotations

import logging
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_render import fixed_env

from jobgate.backends.batch_scheduler import BatchScheduler, Phase
from jobgate.backends.layout import JobFiles
from jobgate.backends.scripts import render
from jobgate.backends.slurm import STATES, SlurmScheduler
from jobgate.config import Destination
from jobgate.errors import SchedulerUnavailable, SpecError, SubmitError
from jobgate.spec import JobRecord, JobSpec, Resources
from jobgate.states import JobState
from jobgate.transports.base import CommandResult

DATA = Path(__file__).parent.parent / "data"
NASTY = 'it\'s $(touch /tmp/pwned) `id` "quoted" ; rm -rf ~ \\ end'
S = JobState


def record(destination: str = "slurm", **spec: object) -> JobRecord:
    return JobRecord(
        id="01JOBGATE0000000000000TEST",
        name="t",
        owner="u",
        destination=destination,
        state=JobState.STAGING_IN,
        spec=JobSpec.parse(spec),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def job_script(scheduler: BatchScheduler, job: JobRecord) -> str:
    files = JobFiles.of(job, f"/runs/{job.id}")
    res = scheduler.destination.effective(job.spec.resources)
    scheduler.check(res)
    env = fixed_env(job, scheduler.destination, files)
    return render(scheduler.template, job, files, env, **scheduler.script_context(job, res, files))


def check_golden(name: str, text: str) -> None:
    """Compare with tests/data/golden/<name>; JOBGATE_REGEN_GOLDEN=1 rewrites it."""
    path = DATA / "golden" / name
    if os.environ.get("JOBGATE_REGEN_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed (JOBGATE_REGEN_GOLDEN=1 to accept)"


def recorded(name: str) -> str:
    return (DATA / "slurm" / name).read_text()


def recorded_ids() -> dict[str, str]:
    """What each recorded job was (jobs.txt), so the tables survive re-recording."""
    pairs = (word.split("=") for word in recorded("jobs.txt").split())
    return {name: value for name, value in pairs}


SLURM = SlurmScheduler(
    Destination(name="slurm", scheduler="slurm", defaults=Resources(partition="debug"))
)
EVERYTHING = {
    "nodes": 2,
    "tasks": 8,
    "cpus_per_task": 4,
    "memory": "32G",
    "gpus": 2,
    "walltime": "1-02:03:04",
    "partition": "gpu",
    "account": "proj-1",
    "qos": "high",
    "constraint": "a100&ib",
    "reservation": "maint",
    "exclusive": True,
    "directives": ["--mail-type=END,FAIL", "--signal=B:USR1@60"],
}


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        (
            "slurm-full.sh",
            {
                "script": "echo hi",
                "name": "it's mine",
                "resources": EVERYTHING,
                "environment": {"A": "1", "B": NASTY},
            },
        ),
        (
            "slurm-exec.sh",
            {
                "executable": "/bin/echo",
                "arguments": ["a b", NASTY],
                "directory": "work",
                "stdin": "in.txt",
                "stdout": "out.txt",
            },
        ),
        (
            "slurm-array.sh",
            {
                "script": "echo $SLURM_ARRAY_TASK_ID",
                "resources": {"array": "0-99%10", "walltime": 90},
            },
        ),
    ],
)
def test_job_script_matches_golden(name: str, spec: dict[str, object]) -> None:
    text = job_script(SLURM, record(**spec))
    check_golden(name, text)
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_walltime_is_always_hh_mm_ss() -> None:
    for seconds, rendered in [(59, "00:00:59"), (3600, "01:00:00"), (90061, "25:01:01")]:
        text = job_script(SLURM, record(script="x", resources={"walltime_s": seconds}))
        assert f"#SBATCH --time={rendered}\n" in text


def test_destination_defaults_fill_in_and_job_values_win() -> None:
    text = job_script(SLURM, record(script="x", resources={"qos": "low"}))
    assert "#SBATCH --partition=debug\n" in text and "#SBATCH --qos=low\n" in text
    text = job_script(SLURM, record(script="x", resources={"partition": "big"}))
    assert "--partition=big" in text and "debug" not in text


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"directives": ["--comment=$(id)"]}, "resources.directives.0"),
        ({"directives": ["--mail-type=END", "--x;rm -rf ~"]}, "resources.directives.1"),
        ({"directives": ["--begin='now'"]}, "resources.directives.0"),
        ({"directives": ["--job-name=mine"]}, "resources.directives.0"),
        ({"directives": ["-J mine"]}, "resources.directives.0"),
        ({"directives": ["--output=/tmp/x"]}, "resources.directives.0"),
        ({"directives": ["--array=1-3"]}, "resources.directives.0"),
        ({"array": "5-1"}, "resources.array"),
        ({"array": "0-9999999"}, "resources.array"),
    ],
)
def test_bad_input_is_refused_naming_the_field(resources: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        SLURM.check(Resources.model_validate(resources))
    assert info.value.field == field


def test_a_directive_with_a_newline_never_reaches_the_scheduler() -> None:
    with pytest.raises(SpecError) as info:
        JobSpec.parse({"script": "x", "resources": {"directives": ["--x=1\n#SBATCH --y"]}})
    assert info.value.field.startswith("resources.directives")


def test_squeue_live_jobs() -> None:
    ids = recorded_ids()
    out = SLURM.parse_status_output(recorded("squeue-live.txt"))
    held, running, array = out[ids["held"]], out[ids["running_cancelled"]], out[ids["held_array"]]
    assert (held.phase, held.reason) == (Phase.PENDING, "JobHeldUser")
    assert (running.phase, running.host) == (Phase.RUNNING, "vm")
    assert sorted(array.tasks) == [0, 1, 2, 3, 4, 5]
    assert {t.phase for t in array.tasks.values()} == {Phase.PENDING}


# (recorded job, array task) -> (our state, exit code, signal) as squeue shows it at the end
SQUEUE_FINAL = [
    ("ok", None, S.COMPLETED, 0, None),
    ("fail", None, S.FAILED, 3, None),
    ("signal", None, S.FAILED, None, 9),  # kill -9 $$: ExitCode 0:9
    ("held", None, S.CANCELLED, None, None),  # cancelled while pending: never ran
    ("running_cancelled", None, S.CANCELLED, None, 15),
    ("timeout", None, S.TIMEOUT, None, 15),
    ("array", 0, S.COMPLETED, 0, None),
    ("array", 2, S.FAILED, 5, None),
    ("array", 3, S.COMPLETED, 0, None),
    ("held_array", 5, S.CANCELLED, None, None),
]


@pytest.mark.parametrize(("job", "task", "state", "code", "sig"), SQUEUE_FINAL)
def test_squeue_final_states(
    job: str, task: int | None, state: JobState, code: int | None, sig: int | None
) -> None:
    out = SLURM.parse_status_output(recorded("squeue-final.txt"))
    st = out[recorded_ids()[job]]
    st = st.tasks[task] if task is not None else st
    assert (st.phase, st.outcome, st.exit_code, st.signal) == (Phase.ENDED, state, code, sig)


@pytest.mark.parametrize(("job", "task", "state", "code", "sig"), SQUEUE_FINAL)
def test_sacct_agrees_with_squeue(
    job: str, task: int | None, state: JobState, code: int | None, sig: int | None
) -> None:
    out = SLURM.parse_accounting_output(recorded("sacct-final.txt"))
    st = out[recorded_ids()[job]]
    st = st.tasks[task] if task is not None else st
    assert (st.phase, st.outcome, st.exit_code) == (Phase.ENDED, state, code)


def test_sacct_expands_a_pending_array_range() -> None:
    array = SLURM.parse_accounting_output(recorded("sacct-final.txt"))[recorded_ids()["held_array"]]
    assert sorted(array.tasks) == [0, 1, 2, 3, 4, 5]  # one row: 9_[0-5%2] CANCELLED by 0


def test_every_slurm_state_is_mapped_and_ends_explicitly() -> None:
    documented = [
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "CONFIGURING",
        "COMPLETING",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PENDING",
        "PREEMPTED",
        "RUNNING",
        "RESV_DEL_HOLD",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "REQUEUED",
        "RESIZING",
        "REVOKED",
        "SIGNALING",
        "SPECIAL_EXIT",
        "STAGE_OUT",
        "STOPPED",
        "SUSPENDED",
        "TIMEOUT",
    ]
    assert set(documented) == set(STATES)
    ends = {
        name: (outcome, reason)
        for name, (phase, outcome, reason) in STATES.items()
        if phase == Phase.ENDED
    }
    assert ends == {
        "COMPLETED": (S.COMPLETED, None),
        "FAILED": (S.FAILED, None),
        "CANCELLED": (S.CANCELLED, None),
        "TIMEOUT": (S.TIMEOUT, "walltime exceeded"),
        "OUT_OF_MEMORY": (S.FAILED, "out of memory"),
        "NODE_FAIL": (S.FAILED, "node failure"),
        "PREEMPTED": (S.FAILED, "preempted"),
        "BOOT_FAIL": (S.FAILED, "node boot failure"),
        "DEADLINE": (S.TIMEOUT, "deadline reached (--deadline)"),
        "REVOKED": (S.LOST, "revoked: a sibling cluster of the federation ran it"),
    }


def test_an_unknown_state_is_unknown_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        out = SLURM.parse_status_output("77|N/A|77|BRAND_NEW|None|0|vm|\n")
    assert out["77"].phase == Phase.UNKNOWN
    assert "BRAND_NEW" in caplog.text


def test_status_errors() -> None:
    unknown = recorded("squeue-unknown.txt").splitlines()[0]  # one unknown id: rc 1
    assert SLURM.status_error(CommandResult(1, "", unknown)) is None
    down = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
    assert SLURM.status_error(CommandResult(1, "", down)) == down
    assert SLURM.parse_status_output("") == {}


def test_submit_output() -> None:
    assert SLURM.parse_submit_output(CommandResult(0, "123\n", "")) == "123"
    assert SLURM.parse_submit_output(CommandResult(0, "124;cluster2\n", "")) == "124"
    refused = recorded("sbatch-refused.txt").rsplit("rc=", 1)[0]
    with pytest.raises(SubmitError, match="Invalid partition name specified"):
        SLURM.parse_submit_output(CommandResult(1, "", refused))
    with pytest.raises(SchedulerUnavailable):
        SLURM.parse_submit_output(
            CommandResult(
                1,
                "",
                "sbatch: error: Batch job submission failed: Unable to contact slurm "
                "controller (connect failure)",
            )
        )
    with pytest.raises(SubmitError, match="no job id"):
        SLURM.parse_submit_output(CommandResult(0, "Submitted batch job\n", ""))


def test_commands() -> None:
    assert SLURM.status_command(["1", "2"])[:7] == ["squeue", "-h", "-t", "all", "-r", "-j", "1,2"]
    acct = SLURM.accounting_command(["5"], 120.0)
    assert acct is not None and acct[4:6] == ["-S", "now-3720"]  # the cluster's clock
    assert SLURM.cancel_command(["5", "6"]) == ["scancel", "5", "6"]
    assert SLURM.accounting_disabled(CommandResult(1, "", "Slurm accounting storage is disabled"))


def test_find_output() -> None:
    assert SLURM.parse_find_output("123\n", "jobgate-x") == "123"  # squeue -o %F
    assert SLURM.parse_find_output("8_0\n8_1\n", "jobgate-x") == "8"  # sacct JobID of an array
    assert SLURM.parse_find_output("", "jobgate-x") is None
