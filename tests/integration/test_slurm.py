"""Slurm through a real Gateway on the test cluster (scripts/slurm-up.sh): exit codes, output,
environment, files, cancel while pending and while running, a time limit, an array with a
failing task, a refused submission, restarts of the gateway while jobs run, and packs."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import make_config, need, service_env, slurm_answers
from jobgate import Gateway, JobState
from jobgate.sdk import Job
from jobgate.store.tables import jobs as jobs_table

pytestmark = pytest.mark.slurm
OpenGateway = Callable[..., Gateway]
WAIT = 60  # seconds: generous for a job that should end within a poll or two
S = JobState


def slurm_destination(**extra: Any) -> dict[str, Any]:
    partition = service_env().get("JOBGATE_TEST_SLURM_PARTITION")
    defaults = {"partition": partition} if partition else {}
    return {
        "scheduler": "slurm",
        "capacity": 50,
        "poll_interval_s": 0.5,
        "defaults": defaults,
        "allowed_directives": ["--hold"],  # held jobs show what happens while pending
        **extra,
    }


@pytest.fixture(scope="module")
def cluster() -> None:
    need(slurm_answers(), "no Slurm test cluster (run scripts/slurm-up.sh as root)")


@pytest.fixture
def gw(cluster: None, home: Path, tmp_path: Path) -> Iterator[Gateway]:
    config = make_config(home, f"sqlite:///{tmp_path / 'jobgate.db'}", slurm=slurm_destination())
    with Gateway(config) as gateway:
        yield gateway


def wait_for_file(path: Path, text: str = "") -> None:
    """Files the job writes are the only signal there is from inside it: follow them."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never showed {text!r}")


def states(job: Job) -> list[str]:
    return [e.type for e in job.events() if e.type.isupper()]


def test_exit_codes_output_and_environment(gw: Gateway) -> None:
    ok = gw.submit(
        script='echo "out $GREETING"; echo err >&2', environment={"GREETING": "it's $HOME `id`"}
    )
    bad = gw.submit(script="echo partial; exit 3")
    assert ok.wait(WAIT) == S.COMPLETED
    assert (ok.exit_code, ok.stdout(), ok.stderr()) == (0, "out it's $HOME `id`\n", "err\n")
    assert bad.wait(WAIT) == S.FAILED
    assert (bad.exit_code, bad.record.reason, bad.stdout()) == (3, "exit code 3", "partial\n")
    # Slurm's ids: a job's own, or (handed over together: one pack) its array task's
    native = [job.native_id or "" for job in (ok, bad)]
    assert all(re.fullmatch(r"\d+(_\d+)?", n) for n in native) and native[0] != native[1]
    assert states(ok)[:3] == ["QUEUED", "STAGING_IN", "SUBMITTED"]
    assert states(ok)[-1] == "COMPLETED"
    run_dir = gw.home / "runs" / ok.id
    assert (run_dir / "exitcode").read_text() == "0\n" and (run_dir / "job.started").exists()
    assert ok.record.host == (run_dir / "HOSTNAME").read_text().strip()
    polls = gw.service.system.poll_latency()  # /metrics' jobgate_poll_seconds{destination}
    assert set(polls) == {"slurm"} and sum(polls["slurm"].counts) >= 1  # the ends were polled
    assert polls["slurm"].total > 0


def test_executable_arguments_workdir_and_files(gw: Gateway, tmp_path: Path) -> None:
    source = tmp_path / "data.txt"
    source.write_text("3\n4\n")
    job = gw.submit(
        executable="/bin/sh",
        arguments=[
            "-c",
            "awk '{s+=$1} END {print s}' ../in/data.txt > sum.txt; echo \"$1\"",
            "-",
            "two words",
        ],
        directory="work",
        input_files=[{"source": str(source), "target": "in/data.txt"}],
        output_files=["sum.txt"],
    )
    assert job.wait(WAIT) == S.COMPLETED
    assert job.stdout() == "two words\n"
    assert (gw.home / "runs" / job.id / "outputs/sum.txt").read_text() == "7\n"


def test_cancel_while_pending_never_starts(gw: Gateway) -> None:
    job = gw.submit(script="touch ran", resources={"directives": ["--hold"]})
    assert job.wait(WAIT, until=lambda s: s == S.SUBMITTED) == S.SUBMITTED
    job.cancel()
    assert job.wait(WAIT) == S.CANCELLED
    assert (job.exit_code, job.record.reason) == (None, "cancelled on request")
    assert not (gw.home / "runs" / job.id / "job.started").exists()


def test_cancel_while_running_runs_cancel_sh_first(gw: Gateway) -> None:
    job = gw.submit(
        script="echo 'echo hook-ran > hook.txt' > cancel.sh\necho started\nexec sleep 300"
    )
    assert job.wait(WAIT, until=lambda s: s == S.RUNNING) == S.RUNNING
    run_dir = gw.home / "runs" / job.id
    wait_for_file(run_dir / "stdout", "started")
    job.cancel()
    assert job.wait(WAIT) == S.CANCELLED
    assert (run_dir / "hook.txt").read_text() == "hook-ran\n"
    assert job.exit_code == 143  # SIGTERM, as the wrapper recorded it
    types = [e.type for e in job.events()]
    assert types.index("cancel_requested") < types.index("CANCELLED")


def test_an_array_with_a_failing_task(gw: Gateway) -> None:
    job = gw.submit(
        script='echo "task $SLURM_ARRAY_TASK_ID"; [ "$SLURM_ARRAY_TASK_ID" = 2 ] && exit 5; exit 0',
        resources={"array": "0-3"},
    )
    assert job.wait(WAIT) == S.FAILED
    assert job.exit_code == 5
    assert job.record.reason == "1 of 4 array tasks did not complete (2: exit code 5)"
    tasks = job.events()[-1].data["tasks"]
    assert {i: (t["state"], t["exit_code"]) for i, t in tasks.items()} == {
        "0": ("COMPLETED", 0),
        "1": ("COMPLETED", 0),
        "2": ("FAILED", 5),
        "3": ("COMPLETED", 0),
    }
    for i in range(4):  # each task has its own output and sidecar
        task_dir = gw.home / "runs" / job.id / "tasks" / str(i)
        assert (task_dir / "stdout").read_text() == f"task {i}\n"
        assert (task_dir / "exitcode").read_text() == ("5\n" if i == 2 else "0\n")


def test_a_refused_submission_fails_with_the_schedulers_words(gw: Gateway) -> None:
    job = gw.submit(script="true", resources={"partition": "nosuchpartition"})
    assert job.wait(WAIT) == S.FAILED
    assert "Invalid partition name specified" in (job.record.reason or "")
    assert job.native_id is None


@pytest.mark.slow
def test_the_time_limit_ends_the_job_as_timeout(gw: Gateway) -> None:
    job = gw.submit(script="echo started; exec sleep 600", resources={"walltime": "00:01:00"})
    assert job.wait(240) == S.TIMEOUT  # Slurm checks limits every 30 s: 60-90 s
    assert job.record.reason == "walltime exceeded"
    assert (job.record.reason_code, job.record.native_state) == ("TIMEOUT", "TIMEOUT")
    assert job.stdout() == "started\n"


def test_restart_while_jobs_run(cluster: None, open_gateway: OpenGateway, home: Path) -> None:
    """Close the gateway with jobs running; they end while no gateway watches; a new one on
    the same home and store reports each with its true state and exit code."""
    gate = home / "gate"
    script = f"while [ ! -e {gate} ]; do sleep 0.1; done; echo done; exit $CODE"
    first = open_gateway(slurm=slurm_destination())
    running = [first.submit(script=script, environment={"CODE": str(c)}) for c in (0, 4)]
    tasks = first.submit(  # re-attached task by task: its array read from the store
        script=f"while [ ! -e {gate} ]; do sleep 0.1; done; exit $SLURM_ARRAY_TASK_ID",
        resources={"array": "0-1"},
    )
    held = first.submit(script="true", resources={"directives": ["--hold"]})
    for job in (*running, tasks):
        assert job.wait(WAIT, until=lambda s: s == S.RUNNING) == S.RUNNING
    held.wait(WAIT, until=lambda s: s == S.SUBMITTED)
    first.close()
    gate.touch()
    for job in running:
        wait_for_file(home / "runs" / job.id / "exitcode")
    for i in range(2):
        wait_for_file(home / "runs" / tasks.id / "tasks" / str(i) / "exitcode")
    second = open_gateway(slurm=slurm_destination())
    ok, bad, array, pending = (second.get(j.id) for j in (*running, tasks, held))
    assert (ok.wait(WAIT), ok.exit_code) == (S.COMPLETED, 0)
    assert (bad.wait(WAIT), bad.exit_code, bad.record.reason) == (S.FAILED, 4, "exit code 4")
    assert array.wait(WAIT) == S.FAILED
    assert array.record.reason == "1 of 2 array tasks did not complete (1: exit code 1)"
    assert pending.state == S.SUBMITTED  # still held, still watched
    pending.cancel()
    assert pending.wait(WAIT) == S.CANCELLED


def test_a_restart_with_1200_jobs_watches_each_asking_500_per_status_command(
    cluster: None, open_gateway: OpenGateway
) -> None:
    """1,200 held jobs (more than two chunks): a new gateway adopts each once, a chunk of
    records at a time, and one poll round asks about all of them in ceil(1200/500) = 3
    squeue calls, never one per job."""
    dest = slurm_destination(capacity=1500)
    first = open_gateway(slurm=dest)
    held = first.submit_many([{"script": "true", "resources": {"directives": ["--hold"]}}] * 1200)
    native_ids = [j.wait(WAIT, until=lambda s: s == S.SUBMITTED) and j.native_id for j in held]
    first.close()
    try:
        second = open_gateway(slurm=dest)
        backend = second._core._runtime.supervisor.backends.get("slurm")  # type: ignore[union-attr]
        assert backend.tracked() == 1200
        second._call(backend.poller.poll())  # type: ignore[attr-defined]
        assert backend.poller.max_rounds_per_poll == 3  # type: ignore[attr-defined]
        assert {j.id: j.state for j in second.list(limit=0)} == {j.id: S.SUBMITTED for j in held}
        sample = second.get(held[700].id)
        assert [e.type for e in sample.events()].count("recovery") == 1
    finally:
        for i in range(0, len(native_ids), 500):
            subprocess.run(["scancel", *filter(None, native_ids[i : i + 500])], check=False)


@pytest.mark.parametrize("jobs", [1, 2], ids=["alone", "packed"])
def test_a_job_submitted_just_before_a_crash_is_found_not_sent_twice(
    cluster: None, home: Path, tmp_path: Path, jobs: int
) -> None:
    """The crash window: sbatch ran, but the native id never reached the store. Packed
    jobs are found by their pack's name and their index in it (their `jobgate.pack` marker)."""
    url = f"sqlite:///{tmp_path / 'jobgate.db'}"
    config = make_config(home, url, slurm=slurm_destination())
    gate = home / "gate"
    with Gateway(config) as first:
        sent = first.submit_many([{"script": f"while [ ! -e {gate} ]; do sleep 0.1; done"}] * jobs)
        for job in sent:
            job.wait(WAIT, until=lambda s: s == S.RUNNING)
        native_ids = [job.native_id for job in sent]
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as if the gateway died right after sbatch
        conn.execute(
            sa.update(jobs_table)
            .where(jobs_table.c.id.in_([job.id for job in sent]))
            .values(state="STAGING_IN", native_id=None, started_at=None)
        )
    engine.dispose()
    with Gateway(config) as second:
        again = [second.get(job.id) for job in sent]
        for job in again:
            assert job.wait(WAIT, until=lambda s: s != S.STAGING_IN) in (S.SUBMITTED, S.RUNNING)
        assert [job.native_id for job in again] == native_ids
        gate.touch()
        assert [job.wait(WAIT) for job in again] == [S.COMPLETED] * jobs
    name = f"jobgate-pack-{sent[0].id}" if jobs > 1 else f"jobgate-{sent[0].id}"
    listed = subprocess.run(
        ["squeue", "-h", "-t", "all", "-r", "-n", name, "-o", "%i"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(listed) == sorted(native_ids)  # one Slurm job each, not two


def test_kill_9_of_serve_while_20_slurm_jobs_run(
    cluster: None, home: Path, database_url: str, tmp_path: Path, serve: Callable[..., Any]
) -> None:
    """`kill -9` of `jobgate serve` with 20 Slurm jobs submitted (running or pending); a new
    serve reports every one with its true final state and exit code."""
    config = tmp_path / "jobgate.toml"
    partition = service_env().get("JOBGATE_TEST_SLURM_PARTITION", "debug")
    config.write_text(
        f'[destinations.slurm]\nscheduler = "slurm"\ncapacity = 50\npoll_interval_s = 0.5\n'
        f'defaults = {{ partition = "{partition}" }}\n'
    )
    env = {
        **os.environ,
        "JOBGATE_HOME": str(home),
        "JOBGATE_DATABASE_URL": database_url,
        "JOBGATE_CONFIG": str(config),
    }
    gate = home / "gate"
    script = f"while [ ! -e {gate} ]; do sleep 0.1; done; exit $CODE"
    codes = {i: (0 if i % 4 else 5) for i in range(20)}
    first = serve(env, "--no-api")
    with Gateway(
        config_path=str(config), home=home, database_url=database_url, supervise=None
    ) as client:
        jobs = {
            i: client.submit(script=script, environment={"CODE": str(c)}) for i, c in codes.items()
        }
        for job in jobs.values():  # all handed to Slurm (running, or pending for CPUs)
            assert job.wait(WAIT, until=lambda s: s in (S.SUBMITTED, S.RUNNING)) in (
                S.SUBMITTED,
                S.RUNNING,
            )
        first.kill()
        first.wait()
        serve(env, "--no-api")
        gate.touch()
        ended = {i: (j.wait(120), j.exit_code) for i, j in jobs.items()}
        native = {j.native_id for j in jobs.values()}
    assert ended == {i: (S.COMPLETED if c == 0 else S.FAILED, c) for i, c in codes.items()}
    assert len(native) == 20  # one Slurm job each, none submitted twice


SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_slurm_controller_restart_while_jobs_run(
    cluster: None, open_gateway: OpenGateway, home: Path
) -> None:
    """slurmctld and slurmd restart under running jobs: the failed polls in between change
    no job, and both end with their true state and exit code."""
    need(os.geteuid() == 0, "restarting the test cluster needs root")
    gate = home / "gate"
    script = f"while [ ! -e {gate} ]; do sleep 0.1; done; exit $CODE"
    gw = open_gateway(slurm=slurm_destination())
    jobs = [gw.submit(script=script, environment={"CODE": str(c)}) for c in (0, 6)]
    for job in jobs:
        assert job.wait(WAIT, until=lambda s: s == S.RUNNING) == S.RUNNING
    subprocess.run([SCRIPTS / "slurm-down.sh", "--keep-munge"], check=True, capture_output=True)
    subprocess.run([SCRIPTS / "slurm-up.sh"], check=True, capture_output=True)
    gate.touch()
    assert [(j.wait(120), j.exit_code) for j in jobs] == [(S.COMPLETED, 0), (S.FAILED, 6)]
    assert all(e.type != "LOST" for j in jobs for e in j.events())


def test_a_host_without_sbatch_fails_its_jobs_at_once_naming_the_command(
    cluster: None, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a transient error: retried, it would fail the same way for ever."""
    bare = tmp_path / "bin"  # this host's PATH, with nothing of Slurm's on it
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    config = make_config(home, f"sqlite:///{tmp_path / 'jobgate.db'}", slurm=slurm_destination())
    with Gateway(config) as gw:
        alone = gw.submit(script="true")
        assert alone.wait(WAIT) == S.FAILED
        burst = [gw.submit(script="true") for _ in range(5)]  # through one submit shell
        assert {job.wait(WAIT) for job in burst} == {S.FAILED}
        for job in [alone, *burst]:
            assert "sbatch: command not found on" in (job.record.reason or "")
            assert states(job) == ["QUEUED", "STAGING_IN", "FAILED"]  # never retried


# -- packs: jobs submitted together with the same options go in as one job array
# (backends/packs.py), and each is still a job of its own

SHOW = 'echo "$SLURM_JOB_NAME ${{SLURM_ARRAY_TASK_ID:-alone}}"; exit {}'


def node_cpus() -> int:
    """Every CPU of the test node: two such jobs cannot run at once."""
    argv = ["scontrol", "show", "node", "-o"]
    out = subprocess.run(argv, check=True, capture_output=True, text=True)
    words = dict(w.split("=", 1) for w in out.stdout.split() if "=" in w)
    return int(words["CPUTot"])


def test_jobs_submitted_together_go_in_as_one_array_each_its_own_job(gw: Gateway) -> None:
    jobs = gw.submit_many([{"script": SHOW.format(i)} for i in range(4)])
    for i, job in enumerate(jobs):
        assert job.wait(WAIT) == (S.COMPLETED if i == 0 else S.FAILED)
        # its own name, no sign of the array it went in with; its own output and code
        assert (job.exit_code, job.stdout()) == (i, f"jobgate-{job.id} alone\n")
        run_dir = gw.home / "runs" / job.id
        assert (run_dir / "exitcode").read_text() == f"{i}\n"
        assert (run_dir / "jobgate.pack").read_text() == f"jobgate-pack-{jobs[0].id} {i}\n"
    arrays = {job.native_id.partition("_")[0] for job in jobs if job.native_id}
    assert len(arrays) == 1 and arrays.pop().isdigit()
    assert [job.native_id and job.native_id.partition("_")[2] for job in jobs] == list("0123")


def test_a_packed_job_cancelled_while_pending_never_starts(gw: Gateway) -> None:
    whole_node = {
        "script": "touch ran; exec sleep 300",
        "resources": {"cpus_per_task": node_cpus()},
    }
    first, second = gw.submit_many([whole_node, whole_node])
    assert first.wait(WAIT, until=lambda s: s == S.RUNNING) == S.RUNNING
    assert second.state == S.SUBMITTED  # the node is taken: its task waits
    array_id = (first.native_id or "").partition("_")[0]
    assert (first.native_id, second.native_id) == (f"{array_id}_0", f"{array_id}_1")
    second.cancel()
    assert second.wait(WAIT) == S.CANCELLED
    assert (second.exit_code, second.record.reason) == (None, "cancelled on request")
    assert not (gw.home / "runs" / second.id / "job.started").exists()
    assert first.state == S.RUNNING  # the task next to it runs on
    first.cancel()
    assert first.wait(WAIT) == S.CANCELLED


def test_packed_jobs_that_end_while_no_gateway_watches(
    cluster: None, open_gateway: OpenGateway, home: Path
) -> None:
    wait = "while [ ! -e go ]; do sleep 0.1; done; "
    first = open_gateway(slurm=slurm_destination())
    jobs = first.submit_many([{"script": wait + SHOW.format(i)} for i in (0, 4)])
    for job in jobs:
        assert job.wait(WAIT, until=lambda s: s == S.RUNNING) == S.RUNNING
    native = [job.native_id for job in jobs]
    assert len({n and n.partition("_")[0] for n in native}) == 1  # one pack
    first.close()
    for job in jobs:  # they end while no gateway watches
        (home / "runs" / job.id / "go").touch()
        wait_for_file(home / "runs" / job.id / "exitcode")
    second = open_gateway(slurm=slurm_destination())
    again = [second.get(job.id) for job in jobs]
    assert [job.wait(WAIT) for job in again] == [S.COMPLETED, S.FAILED]
    assert [job.exit_code for job in again] == [0, 4]
    assert [job.native_id for job in again] == native
