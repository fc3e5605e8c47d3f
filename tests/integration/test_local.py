"""The local backend with real processes, through the SDK; each test runs on SQLite and on
PostgreSQL (the `gateway` fixture is parametrized over both stores)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import make_config, peak_overlap
from jobgate import Gateway, JobState, SpecError
from jobgate.errors import ConflictError, NotFoundError

OpenGateway = Callable[..., Gateway]
WAIT = 30  # seconds: a generous bound for a job that should end at once


def test_exit_codes_and_output(gateway: Gateway) -> None:
    ok = gateway.submit(script="echo out; echo err >&2")
    bad = gateway.submit(script="echo partial; exit 3")
    assert ok.wait(WAIT) == JobState.COMPLETED
    assert (ok.exit_code, ok.stdout(), ok.stderr()) == (0, "out\n", "err\n")
    assert bad.wait(WAIT) == JobState.FAILED
    assert bad.exit_code == 3 and bad.stdout() == "partial\n"
    assert bad.record.reason == "exit code 3"


def test_executable_with_arguments_env_and_workdir(gateway: Gateway, tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    workdir.mkdir()
    job = gateway.submit(
        executable="/bin/sh",
        arguments=["-c", 'printf "%s|%s|%s" "$1" "$GREETING" "$PWD"', "-", "two words"],
        environment={"GREETING": "hello $USER"},
        directory=str(workdir),
    )
    assert job.wait(WAIT) == JobState.COMPLETED
    assert job.stdout() == f"two words|hello $USER|{workdir}"


def test_markers_and_sidecar_in_run_dir(gateway: Gateway) -> None:
    job = gateway.submit(script="exit 7")
    job.wait(WAIT)
    run_dir = gateway.home / "runs" / job.id
    assert (run_dir / "exitcode").read_text() == "7\n"
    assert (run_dir / "job.started").exists()
    assert (run_dir / "HOSTNAME").read_text().strip() == os.uname().nodename
    assert job.record.host == os.uname().nodename
    assert job.native_id and int(job.native_id) > 0


def test_input_and_output_files(gateway: Gateway, tmp_path: Path) -> None:
    source = tmp_path / "data.txt"
    source.write_text("3\n4\n")
    job = gateway.submit(
        script="mkdir -p res && awk '{s+=$1} END {print s}' in/data.txt > res/sum.txt",
        input_files=[{"source": str(source), "target": "in/data.txt"}],
        output_files=["res/sum.txt"],
    )
    assert job.wait(WAIT) == JobState.COMPLETED
    assert (gateway.home / "runs" / job.id / "outputs/res/sum.txt").read_text() == "7\n"
    states = [e.type for e in job.events() if e.type.isupper()]
    assert states == ["QUEUED", "STAGING_IN", "RUNNING", "STAGING_OUT", "COMPLETED"]


def test_missing_output_file_fails_the_job(gateway: Gateway) -> None:
    job = gateway.submit(script="true", output_files=["never-written.txt"])
    assert job.wait(WAIT) == JobState.FAILED
    assert "never-written.txt" in (job.record.reason or "")


def test_cancel_running_job_runs_cancel_sh_first(gateway: Gateway) -> None:
    job = gateway.submit(
        script="echo 'echo cancelled-by-hook > hook.txt' > cancel.sh\necho started\nexec sleep 300"
    )
    job.wait(WAIT, until=lambda s: s == JobState.RUNNING)
    run_dir = gateway.home / "runs" / job.id
    _wait_for_output(job, "started")
    assert job.cancel() in (JobState.RUNNING, JobState.CANCELLED)
    assert job.wait(WAIT) == JobState.CANCELLED
    assert (run_dir / "hook.txt").read_text() == "cancelled-by-hook\n"
    assert job.exit_code == 143  # the wrapper stayed to record SIGTERM's code
    types = [e.type for e in job.events()]
    assert types.index("cancel_requested") < types.index("CANCELLED")


def test_cancel_queued_job_never_starts(open_gateway: OpenGateway, home: Path) -> None:
    with open_gateway(local={"capacity": 1}) as gw:
        blocker = gw.submit(script="exec sleep 300")
        waiting = gw.submit(script="touch ran")
        assert waiting.cancel() == JobState.CANCELLED
        blocker.cancel()
        assert blocker.wait(WAIT) == JobState.CANCELLED
        assert waiting.native_id is None
        assert not (home / "runs" / waiting.id).exists()


def test_cancel_of_finished_job_changes_nothing(gateway: Gateway) -> None:
    job = gateway.submit(script="exit 0")
    job.wait(WAIT)
    assert job.cancel() == JobState.COMPLETED


def test_walltime_is_enforced(gateway: Gateway) -> None:
    job = gateway.submit(script="trap '' TERM; sleep 300", resources={"walltime_s": 1})
    assert job.wait(WAIT) == JobState.TIMEOUT  # TERM ignored: SIGKILL after the grace period
    assert job.record.reason == "walltime exceeded"


def test_a_job_without_walltime_is_held_to_the_destinations_limit(
    open_gateway: OpenGateway,
) -> None:
    with open_gateway(local={"max_walltime_s": 3}) as gw:
        job = gw.submit(script="exec sleep 300")
        assert job.record.resources is not None and job.record.resources.walltime_s == 3
        assert job.wait(WAIT) == JobState.TIMEOUT
        assert job.record.reason == "walltime exceeded"
        shorter = gw.submit(script="true", resources={"walltime_s": 2})
        assert shorter.record.resources is not None and shorter.record.resources.walltime_s == 2
        with pytest.raises(SpecError) as info:
            gw.submit(script="true", resources={"walltime": "00:00:04"})
        assert info.value.field == "resources.walltime"


def test_capacity_holds(open_gateway: OpenGateway, tmp_path: Path) -> None:
    """6 jobs, capacity 2: no more than 2 ever ran at once (judged from their own logs)."""
    log = tmp_path / "spans"
    log.mkdir()
    span = f"{log}/$JOB"
    script = f'echo "start $EPOCHREALTIME" > {span}; sleep 0.3; echo "end $EPOCHREALTIME" >> {span}'
    with open_gateway(local={"capacity": 2}) as gw:
        jobs = [gw.submit(script=script, environment={"JOB": str(i)}) for i in range(6)]
        assert [j.wait(WAIT) for j in jobs] == [JobState.COMPLETED] * 6
    assert peak_overlap(log) <= 2


def test_job_that_cannot_start_fails_with_reason(gateway: Gateway, tmp_path: Path) -> None:
    missing = gateway.submit(executable="/no/such/program")
    nodir = gateway.submit(script="true", directory=str(tmp_path / "absent"))
    assert missing.wait(WAIT) == JobState.FAILED
    assert missing.exit_code == 127 and "not found" in (missing.record.reason or "")
    assert nodir.wait(WAIT) == JobState.FAILED
    assert nodir.exit_code == 126 and "absent" in (nodir.record.reason or "")


def test_bad_input_is_refused_and_nothing_stored(gateway: Gateway) -> None:
    for bad, field in [
        ({"script": "x", "resources": {"cpus_per_task": -1}}, "resources.cpus_per_task"),
        ({"script": "x", "resources": {"walltime": "abc"}}, "resources.walltime"),
        ({"script": "x", "destination": "nowhere"}, "destination"),
        ({"script": "x", "input_files": [{"source": "/no/such/file"}]}, "input_files.0.source"),
    ]:
        with pytest.raises(SpecError) as info:
            gateway.submit(bad)
        assert info.value.field == field
    assert gateway.list() == []


def test_env_not_allowed_by_destination(open_gateway: OpenGateway) -> None:
    with open_gateway(local={"allowed_env": ["OMP_*"]}) as gw:
        gw.submit(script="true", environment={"OMP_NUM_THREADS": "2"})
        with pytest.raises(SpecError) as info:
            gw.submit(script="true", environment={"LD_PRELOAD": "/evil.so"})
        assert info.value.field == "environment.LD_PRELOAD"
        assert len(gw.list()) == 1


def test_idempotency_key(gateway: Gateway) -> None:
    first = gateway.submit(script="true", idempotency_key="k1")
    again = gateway.submit(script="true", idempotency_key="k1")
    assert again.id == first.id
    with pytest.raises(ConflictError):
        gateway.submit(script="false", idempotency_key="k1")
    assert len(gateway.list()) == 1


def test_list_filters(gateway: Gateway) -> None:
    a = gateway.submit(script="true", labels={"team": "bio"}, name="a")
    b = gateway.submit(script="exit 1", labels={"team": "chem"}, name="b")
    a.wait(WAIT)
    b.wait(WAIT)
    assert [j.id for j in gateway.list()] == [b.id, a.id]  # newest first
    assert [j.id for j in gateway.list(label={"team": "bio"})] == [a.id]
    assert [j.id for j in gateway.list(state="FAILED")] == [b.id]
    assert [j.id for j in gateway.list(name="a", destination="local")] == [a.id]
    with pytest.raises(NotFoundError):
        gateway.get("01NOSUCHJOB000000000000000")


def _wait_for_output(job: object, text: str) -> None:
    """The job prints `text` once its trap/hook is in place; follow its output until then."""
    from jobgate.sdk import Job

    assert isinstance(job, Job)
    for _ in range(600):
        if text in job.stdout():
            return
        job.wait(0.05)
    raise AssertionError(f"job never printed {text!r}")


def test_uploads_no_unfinished_job_needs_are_swept_once_old(home: Path, database_url: str) -> None:
    from jobgate.engine.janitor import sweep_uploads

    uploads = home / "uploads"
    uploads.mkdir()
    needed, unneeded, young = (uploads / name for name in ("needed", "unneeded", "young"))
    for path in (needed, unneeded, young):
        path.write_text(path.name)
    long_ago = time.time() - 48 * 3600  # the default age limit is a day
    for path in (needed, unneeded):
        os.utime(path, (long_ago, long_ago))
    with Gateway(make_config(home, database_url), supervise=False) as gw:  # the job waits
        gw.submit(script="cat in", input_files=[{"source": str(needed), "target": "in"}])
        gone = gw._call(sweep_uploads(gw.config, gw._core._runtime._db))
    assert gone == 1
    assert (needed.exists(), unneeded.exists(), young.exists()) == (True, False, True)
