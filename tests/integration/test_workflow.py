"""What the scheduler knows, kept and acted on, on `local` (Slurm in test_slurm_workflow):
reason codes beside the reason text, dependencies evaluated by the gateway (afterok,
afternotok, a chain, never satisfied, unknown ids; a gateway killed while they wait),
and retries (the failed attempt recorded, the job's end its last attempt's)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.conftest import Gate
from conftest import JOBGATE, make_config, peak_overlap, serve_env, start_serve
from jobgate import Gateway, SpecError
from jobgate.states import JobState as S

WAIT = 60


def test_reason_codes_say_why_for_programs(
    open_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    with open_gateway(local={"max_walltime_s": 2}) as gw:
        failed = gw.submit(script="exit 3")
        slow = gw.submit(script="exec sleep 300")
        gate = Gate(tmp_path / "hold")
        held = gw.submit(script=gate.wait)
        held.cancel()  # before the walltime of 2 s could end it
        assert held.wait(WAIT) == S.CANCELLED
        assert failed.wait(WAIT) == S.FAILED
        assert slow.wait(WAIT) == S.TIMEOUT
        ok = gw.submit(script="true")
        assert ok.wait(WAIT) == S.COMPLETED
        codes = [j.record.reason_code for j in (failed, slow, held, ok)]
        assert codes == ["EXIT_CODE", "TIMEOUT", "CANCELLED", None]


def test_afterok_runs_after_and_never_after_a_failure(
    open_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    gate = Gate(tmp_path / "hold")
    with open_gateway() as gw:
        first = gw.submit(script=gate.wait)
        then = gw.submit(script="echo then", depends_on={"afterok": [first.id]})
        failing = gw.submit(script="exit 4")
        never = gw.submit(script="touch ran", depends_on={"afterok": [failing.id]})
        only_if = gw.submit(script="echo rescue", depends_on={"afternotok": [failing.id]})
        assert then.state == S.NEW and then.record.queued_at is None  # waits, not queued
        assert never.wait(WAIT) == S.REJECTED
        assert never.record.reason_code == "DEPENDENCY_NEVER_SATISFIED"
        assert never.record.reason == f"afterok: job {failing.id} ended FAILED"
        assert never.native_id is None and never.record.run_dir is not None
        assert not Path(never.record.run_dir).exists()  # it never ran
        assert only_if.wait(WAIT) == S.COMPLETED and only_if.stdout() == "rescue\n"
        assert then.state == S.NEW  # still waiting for first
        gate.open()
        assert then.wait(WAIT) == S.COMPLETED and then.stdout() == "then\n"
        started = then.record.started_at
        assert started is not None and first.record.finished_at is not None
        assert started >= first.record.finished_at


def test_a_chain_of_three_and_afternotok_skipped(open_gateway: Callable[..., Gateway]) -> None:
    with open_gateway() as gw:
        a = gw.submit(script="echo a")
        b = gw.submit(script="echo b", depends_on={"afterok": [a.id]})
        c = gw.submit(script="echo c", depends_on={"afterany": [b.id], "afterok": [a.id]})
        rescue = gw.submit(script="echo no", depends_on={"afternotok": [a.id]})
        assert [j.wait(WAIT) for j in (a, b, c)] == [S.COMPLETED] * 3
        times = [j.record.started_at for j in (a, b, c)]
        assert times == sorted(times)  # type: ignore[type-var]
        assert rescue.wait(WAIT) == S.REJECTED
        assert rescue.record.reason == f"afternotok: job {a.id} ended COMPLETED"


def test_unknown_or_foreign_ids_are_refused(open_gateway: Callable[..., Gateway]) -> None:
    with open_gateway() as gw:
        with pytest.raises(SpecError) as info:
            gw.submit(script="true", depends_on={"afterok": ["01M8Y1ECY17PHVSQGEVM8YCXER"]})
        assert info.value.field == "depends_on.afterok"  # a cycle needs an id not made yet
        with pytest.raises(SpecError) as bad:
            gw.submit(script="true", depends_on={"afterok": ["not-an-id"]})
        assert bad.value.field == "depends_on.afterok"
        other = gw.submit(script="true")
        with pytest.raises(SpecError, match="of yours"):  # another user's job is not there
            gw.service.submit_now({"script": "true", "depends_on": {"afterok": [other.id]}}, "eve")


def test_dependencies_survive_a_kill_9_while_they_wait(
    home: Path, database_url: str, tmp_path: Path
) -> None:
    """The gateway dies while A runs and B waits; A ends with no gateway; the next one
    sees A's end and starts B."""
    env = serve_env(home, database_url, tmp_path / "jobgate.toml", "")
    gate = Gate(tmp_path / "hold")
    first = start_serve(env, "--no-api")
    a = _cli(env, "submit", "-", stdin=f"{gate.wait}\n")
    b = _cli(env, "submit", "--dependency", f"afterok:{a}", "-", stdin="echo b\n")
    with Gateway(make_config(home, database_url), supervise=False) as watcher:
        assert watcher.get(a).wait(WAIT, until=lambda s: s == S.RUNNING) == S.RUNNING
        assert watcher.get(b).state == S.NEW
    first.kill()  # SIGKILL: no goodbye
    gate.open()  # A ends while no gateway watches
    second = start_serve(env, "--no-api")
    try:
        assert _cli(env, "wait", b) == ""
        shown = _cli(env, "show", b)
        assert "COMPLETED" in shown and _cli(env, "logs", b) == "b\n"
    finally:
        second.stop()


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [JOBGATE, *args], env=env, input=stdin, capture_output=True, text=True, timeout=WAIT,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout.strip() if args[0] != "logs" else done.stdout


def test_a_retry_runs_it_again_and_records_the_attempt(
    open_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    tries = tmp_path / "tries"
    script = f'echo x >> {tries}; [ "$(wc -l < {tries})" -ge 2 ]'  # fails once, then passes
    with open_gateway() as gw:
        job = gw.submit(script=script, retry={"max": 2, "on": ["EXIT_CODE"]})
        assert job.wait(WAIT) == S.COMPLETED
        assert job.record.attempt == 2 and tries.read_text() == "x\nx\n"
        (again,) = [e for e in job.events() if e.type == "QUEUED" and e.data]
        assert again.data["attempt"] == 1 and again.data["reason_code"] == "EXIT_CODE"
        assert again.data["exit_code"] == 1
        hopeless = gw.submit(script="exit 5", retry={"max": 1, "on": ["EXIT_CODE"]})
        assert hopeless.wait(WAIT) == S.FAILED
        assert (hopeless.record.attempt, hopeless.exit_code) == (2, 5)  # its last attempt's
        plain = gw.submit(script="exit 6", retry={"max": 3})  # NODE_FAIL, PREEMPTED, LOST only
        assert plain.wait(WAIT) == S.FAILED and plain.record.attempt == 1


ARRAY_SCRIPT = """i=$JOBGATE_ARRAY_TASK_ID
echo "start $(date +%s.%N)" > {spans}/$i
while [ ! -e {go} ]; do sleep 0.05; done  # the test lets them go
echo "end $(date +%s.%N)" >> {spans}/$i
echo "task $i"
[ "$i" != 4 ]
"""


def _until(job: Any, done: Callable[[list[Any]], bool]) -> list[Any]:
    """The job's tasks once `done(tasks)` holds (a bounded look: the poll keeps them)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        tasks = job.tasks()
        if done(tasks):
            return tasks
        time.sleep(0.05)
    raise AssertionError(f"tasks of {job.id}: {job.tasks()}")


def test_an_array_runs_task_by_task_within_its_limit(
    open_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    spans, go = tmp_path / "spans", tmp_path / "go"
    spans.mkdir()
    with open_gateway() as gw:
        job = gw.submit(
            script=ARRAY_SCRIPT.format(spans=spans, go=go), resources={"array": "0-9%3"}
        )
        running = _until(job, lambda ts: sum(t.state == S.RUNNING for t in ts) == 3)
        assert [t.index for t in running] == [0, 1, 2]  # three at once, and no more yet
        go.touch()
        assert job.wait(WAIT) == S.FAILED
        tasks = job.tasks()
        codes = {t.index: (t.state, t.exit_code) for t in tasks}
        assert codes == {i: (S.FAILED, 1) if i == 4 else (S.COMPLETED, 0) for i in range(10)}
        assert tasks[4].reason_code == "EXIT_CODE" and tasks[0].reason_code is None
        assert all(t.started_at and t.finished_at for t in tasks)
        assert job.exit_code == 1  # the first failed task's
        run = Path(job.record.run_dir or "")
        assert (run / "tasks" / "7" / "stdout").read_text() == "task 7\n"
    assert peak_overlap(spans) <= 3


def test_submit_many_is_one_transaction(open_gateway: Callable[..., Gateway]) -> None:
    with open_gateway() as gw:
        jobs = gw.submit_many([{"script": f"echo {i}"} for i in range(20)])
        assert [j.wait(WAIT) for j in jobs] == [S.COMPLETED] * 20
        assert [j.stdout() for j in jobs] == [f"{i}\n" for i in range(20)]
        count = len(gw.list(limit=0))
        with pytest.raises(SpecError) as info:
            gw.submit_many([{"script": "true"}, {"script": "true", "resources": {"nodes": -1}}])
        assert info.value.field.startswith("jobs[1].resources")
        assert len(gw.list(limit=0)) == count  # the good one was not stored either


def test_retention_deletes_old_finished_jobs_and_their_run_directories(
    home: Path, database_url: str, tmp_path: Path
) -> None:
    import asyncio

    from jobgate.engine.janitor import sweep_finished
    from jobgate.store import AsyncStore, Store

    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("not the gateway's\n")
    config = make_config(home, database_url)
    with Gateway(config) as gw:
        old = gw.submit(script="echo old")
        old.wait(WAIT)
        running = gw.submit(script="exec sleep 300")
        running.wait(WAIT, until=lambda s: s == S.RUNNING)
        run_dir = Path(old.record.run_dir or "")
        (run_dir / "link").symlink_to(canary)  # a link out is removed, never followed
        assert run_dir.is_dir()
    kept = config.model_copy(
        update={"limits": config.limits.model_copy(update={"keep_finished_days": 1e-9})}
    )
    store = Store(database_url)
    try:
        gone = asyncio.run(sweep_finished(kept, AsyncStore(store)))
    finally:
        store.close()
    assert gone == 1
    with Gateway(kept, supervise=False) as gw:
        assert not run_dir.exists() and (canary / "keep").exists()
        assert [j.id for j in gw.list(limit=0)] == [running.id]  # not finished: kept
        gw.cancel(running.id)
