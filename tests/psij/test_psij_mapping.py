"""The PSI/J <-> jobgate mapping as pure functions: specs, resources, attributes, custom
attributes, launchers, states and statuses, and how an executor's url/config resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psij
import pytest

from conftest import a_record
from jobgate.psij.config import JobgateExecutorConfig, resolve
from jobgate.psij.mapping import PSIJ_STATE, message, statuses, to_spec
from jobgate.spec import JobRecord
from jobgate.states import JobState


def sched(name: str) -> Any:
    return lambda destination: name


def spec(**kw: Any) -> psij.JobSpec:
    kw.setdefault("executable", "/bin/echo")
    return psij.JobSpec(**kw)


def test_a_plain_job_maps_field_by_field() -> None:
    out = to_spec(
        spec(
            arguments=["a b", "$HOME"],
            name="n1",
            directory="/scratch/x",
            environment={"A": "1", "B": 2},  # type: ignore[dict-item]
            stdin_path="in.txt",
            stdout_path=Path("/tmp/o"),
            stderr_path="e",
        ),
        "local",
        sched("local"),
    )
    assert (out.executable, out.arguments, out.script) == ("/bin/echo", ["a b", "$HOME"], None)
    assert (out.name, out.directory, out.destination) == ("n1", "/scratch/x", "local")
    assert out.environment == {"A": "1", "B": "2"}
    assert (out.stdin, out.stdout, out.stderr) == ("in.txt", "/tmp/o", "e")
    # PSI/J's default duration (10 minutes) is a walltime like any other.
    assert out.resources.walltime_s == 600


def test_resources_and_attributes_for_slurm() -> None:
    res = psij.ResourceSpecV1(
        node_count=2,
        processes_per_node=4,
        cpu_cores_per_process=3,
        gpu_cores_per_process=1,
        exclusive_node_use=True,
        memory=1536 * 2**20 + 1,  # bytes: rounded up to whole MB
    )
    attrs = psij.JobAttributes(
        duration=timedelta(seconds=3700.5),
        queue_name="debug",
        account="proj1",
        reservation_id="resv",
        custom_attributes={
            "slurm.qos": "high",
            "slurm.constraint": "haswell",
            "slurm.mail-type": "END",
            "pbs.l": "ignored on slurm",
            "lsf.x": "ignored",
        },
    )
    r = to_spec(spec(resources=res, attributes=attrs), "hpc", sched("slurm")).resources
    assert (r.nodes, r.tasks, r.cpus_per_task, r.gpus) == (2, 8, 3, None)
    assert (r.exclusive, r.memory_mb, r.walltime_s) == (True, 1537, 3701)
    assert (r.partition, r.account, r.reservation) == ("debug", "proj1", "resv")
    assert (r.qos, r.constraint) == ("high", "haswell")
    assert r.directives == ["--ntasks-per-node=4", "--gpus-per-task=1", "--mail-type=END"]


def test_resources_elsewhere_and_pbs_custom_attributes() -> None:
    res = psij.ResourceSpecV1(process_count=6, processes_per_node=3, gpu_cores_per_process=2)
    attrs = psij.JobAttributes(custom_attributes={"pbs.W": "x=y", "slurm.qos": "ignored"})
    r = to_spec(spec(resources=res, attributes=attrs), None, sched("pbs")).resources
    assert (r.nodes, r.tasks, r.gpus, r.qos) == (2, 6, 6, None)  # gpus per node
    assert r.directives == ["-W x=y"]
    # Nothing asked, nothing set: the destination's defaults apply.
    bare = to_spec(spec(resources=psij.ResourceSpecV1()), None, sched("local")).resources
    assert (bare.nodes, bare.tasks, bare.memory_mb, bare.directives) == (None, None, None, [])
    only_count = to_spec(spec(resources=psij.ResourceSpecV1(process_count=4)), None, sched("local"))
    assert (only_count.resources.nodes, only_count.resources.tasks) == (None, 4)


def test_jobgate_custom_attributes() -> None:
    attrs = psij.JobAttributes(
        custom_attributes={
            "jobgate.destination": "gpu",
            "jobgate.label.project": "x",
            "jobgate.gpus": 2,
            "jobgate.walltime": "2h",
            "jobgate.idempotency_key": "k1",
        }
    )
    seen = []
    out = to_spec(spec(attributes=attrs), "cpu", lambda d: seen.append(d) or "slurm")
    assert seen == ["gpu"] and out.destination == "gpu"
    assert out.labels == {"project": "x"} and out.idempotency_key == "k1"
    assert (out.resources.gpus, out.resources.walltime_s) == (2, 7200)


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"attributes": psij.JobAttributes(custom_attributes={"jobgate.nope": 1})}, "nope"),
        ({"launcher": "aprun"}, "aprun"),
        ({"launcher": "srun"}, "Slurm"),
        ({"environment": {"1BAD": "x"}}, "environment"),
        ({"attributes": psij.JobAttributes(queue_name="bad queue")}, "partition"),
    ],
)
def test_what_cannot_be_mapped_is_an_invalid_job(kw: dict[str, Any], words: str) -> None:
    with pytest.raises(psij.InvalidJobException) as err:
        to_spec(spec(**kw), None, sched("local"))
    assert words in err.value.message


def test_no_executable_is_an_invalid_job() -> None:
    with pytest.raises(psij.InvalidJobException):
        to_spec(psij.JobSpec(), None, sched("local"))


def test_launchers_pre_post_launch_and_an_empty_environment() -> None:
    plain = to_spec(spec(arguments=["x"], launcher="single"), None, sched("local"))
    assert plain.executable == "/bin/echo" and plain.script is None

    empty = to_spec(
        spec(arguments=["x"], environment={"K": "v"}, inherit_environment=False),
        None,
        sched("local"),
    )
    assert (empty.executable, empty.arguments) == ("env", ["-i", "K=v", "/bin/echo", "x"])

    wrapped = to_spec(
        spec(arguments=["a b"], pre_launch="/p/pre.sh", post_launch="post.sh"),
        None,
        sched("local"),
    )
    assert wrapped.executable is None and wrapped.script is not None
    lines = wrapped.script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert lines.index("source /p/pre.sh") < lines.index("/bin/echo 'a b'")
    assert lines.index("/bin/echo 'a b'") < lines.index("source post.sh")
    assert lines[-1] == 'exit "$_jg_ec"'

    res = psij.ResourceSpecV1(process_count=3)
    multi = to_spec(spec(launcher="multiple", resources=res), None, sched("local")).script or ""
    assert "$(seq 1 3)" in multi
    srun = to_spec(spec(launcher="srun"), None, sched("slurm")).script or ""
    assert "srun /bin/echo" in srun
    mpi = to_spec(spec(launcher="mpirun", resources=res), None, sched("local")).script or ""
    assert "-n 3 /bin/echo" in mpi


def record(state: JobState, **kw: Any) -> JobRecord:
    return a_record(state, **{"id": "J1", **kw})


def test_every_jobgate_state_has_a_psij_state() -> None:
    assert set(PSIJ_STATE) == set(JobState)
    assert PSIJ_STATE[JobState.STAGING_OUT] == psij.JobState.ACTIVE
    assert PSIJ_STATE[JobState.TIMEOUT] == psij.JobState.FAILED
    assert PSIJ_STATE[JobState.CANCELLED] == psij.JobState.CANCELED


def test_statuses_pass_through_active_and_carry_exit_code_and_metadata() -> None:
    t = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    ended = record(
        JobState.FAILED, exit_code=3, reason="exit code 3", started_at=t, native_id="77", host="h"
    )
    active, failed = statuses(ended)
    assert active.state == psij.JobState.ACTIVE and active.time == t.timestamp()
    assert (failed.state, failed.exit_code, failed.message) == (
        psij.JobState.FAILED,
        3,
        "exit code 3",
    )
    assert failed.metadata == {
        "nativeId": "J1",
        "jobgate_state": "FAILED",
        "destination": "d",
        "scheduler_id": "77",
        "host": "h",
    }
    # Cancelled before it ran: no ACTIVE.
    assert [s.state for s in statuses(record(JobState.CANCELLED))] == [psij.JobState.CANCELED]
    (queued,) = statuses(record(JobState.SUBMITTED))
    assert (queued.state, queued.exit_code, queued.message) == (psij.JobState.QUEUED, None, None)


def test_failure_messages_name_the_states_psij_folds_into_failed() -> None:
    assert message(record(JobState.TIMEOUT, reason="walltime 00:01:00")) == (
        "TIMEOUT: walltime 00:01:00"
    )
    assert message(record(JobState.LOST)) == "LOST"
    assert message(record(JobState.FAILED, reason="exit code 1")) == "exit code 1"


def test_url_and_config_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JOBGATE_SERVER", "JOBGATE_TOKEN", "JOBGATE_DEST"):
        monkeypatch.delenv(var, raising=False)
    t = resolve(None, None)
    assert (t.server, t.destination) == (None, None)
    assert resolve("jobgate://slurm", None).destination == "slurm"
    assert resolve("slurm", None).destination == "slurm"
    assert resolve("jobgate:///?destination=pbs", None).destination == "pbs"
    remote = resolve("jobgate+https://gw.example:8443/base?destination=hpc", None)
    assert (remote.server, remote.destination) == ("https://gw.example:8443/base", "hpc")

    monkeypatch.setenv("JOBGATE_SERVER", "http://env:1")
    monkeypatch.setenv("JOBGATE_TOKEN", "tok")
    monkeypatch.setenv("JOBGATE_DEST", "envdest")
    t = resolve("jobgate://urldest", None)
    assert (t.server, t.token, t.destination) == ("http://env:1", "tok", "urldest")
    assert resolve(None, None).destination == "envdest"
    cfg = JobgateExecutorConfig("cfgdest", server="", token="t2", home="/h")
    t = resolve("jobgate+http://url:2", cfg)
    assert (t.server, t.token, t.destination, t.home) == (None, "t2", "cfgdest", "/h")

    for bad in ("ssh://host", "jobgate://a/b", "bad name"):
        with pytest.raises(ValueError, match="jobgate url"):
            resolve(bad, None)
