"""The polling loop every batch scheduler shares, against an in-memory Slurm: the real
SlurmScheduler's commands and parsers, a fake transport that plays squeue/sacct/sbatch/
scancel and the file system, and a clock the test moves."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import shlex
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from jobgate.backends.base import Outcome, Submitted
from jobgate.backends.batch import BatchBackend
from jobgate.backends.batch_status import SIDECAR_GRACE_S
from jobgate.backends.environment import BASE as BASE_VARS
from jobgate.backends.slurm import SlurmScheduler
from jobgate.config import Destination
from jobgate.errors import SubmitError, TransientError
from jobgate.spec import JobRecord, JobSpec
from jobgate.states import JobState, StopReason
from jobgate.transports.base import CommandResult, Transport
from jobgate.views import FileReader

S = JobState
T = TypeVar("T")
BASE = 2.0  # the destination's poll interval
SHELL = ["/bin/bash", "-s"]


class World(Transport):
    """Slurm and a file system in memory. `queue` is what squeue lists (native id, or
    "id_task" for array tasks -> (state, wait status)); `history` is what sacct knows."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.queue: dict[str, tuple[str, int]] = {}
        self.history: dict[str, tuple[str, str]] = {}
        self.names: dict[str, str] = {}
        self.calls: list[list[str]] = []
        self.shells: list[str] = []  # scripts of the submit shells
        self.clean: list[list[str]] = []  # the `env -i` words each submit was started with
        self.down: set[str] = set()  # commands that fail as if the controller were down
        self.next_id = 100
        self.gate: asyncio.Event | None = None  # holds sbatch while set up
        self.in_flight = self.peak = 0

    async def run(
        self,
        argv: list[str],
        *,
        input: str | None = None,
        timeout: float = 60.0,
        cwd: str | None = None,
    ) -> CommandResult:
        command = list(itertools.dropwhile(lambda word: "=" in word, argv[2:]))
        if argv[:2] == ["/usr/bin/env", "-i"] and (command[:1] == ["sbatch"] or command == SHELL):
            self.clean.append(argv[2 : len(argv) - len(command)])  # the environment given
            argv = command
        if argv == SHELL:  # the submit shell: run its commands one by one
            self.shells.append(input or "")
            lines = [shlex.split(line)[1:] for line in (input or "").splitlines()[1:]]
            results = [await self.run(cmd) for cmd in lines]
            merged = [(r.stdout + r.stderr).strip().replace("\n", "\x1f") for r in results]
            out = "".join(f"{r.returncode} {m}\n" for r, m in zip(results, merged, strict=True))
            return CommandResult(0, out, "")
        self.calls.append(argv)
        cmd = argv[0]
        if cmd in self.down:
            raise TransientError(f"{cmd} did not answer within {timeout:.0f} s")
        if cmd == "sbatch":
            return await self._sbatch(argv[-1])
        if cmd == "pwd":
            return CommandResult(0, "/home/u\n", "")
        if cmd == "squeue" and "-n" in argv:
            found = [i for i, n in self.names.items() if n == argv[argv.index("-n") + 1]]
            listed = [i for i in found if i in self.queue or f"{i}_0" in self.queue]
            return CommandResult(0, "".join(f"{i}\n" for i in listed), "")
        if cmd == "squeue":
            return CommandResult(0, "".join(self._squeue(argv[argv.index("-j") + 1])), "")
        if cmd == "sacct" and "-j" in argv:
            ids = argv[argv.index("-j") + 1].split(",")
            rows = [
                f"{i}|{i}|{s}|{c}|node1\n"
                for i, (s, c) in self.history.items()
                if i.split("_")[0] in ids or i in ids
            ]
            return CommandResult(0, "".join(rows), "")
        if cmd == "scancel":
            for key, (state, _) in list(self.queue.items()):
                if {key, key.split("_")[0]} & set(argv[1:]) and state in ("PENDING", "RUNNING"):
                    self.queue[key] = ("CANCELLED", 15)
        return CommandResult(0, "", "")

    async def _sbatch(self, script: str) -> CommandResult:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.gate is not None:
            await self.gate.wait()
        self.in_flight -= 1
        self.next_id += 1
        native_id = str(self.next_id)
        text = self.files[script].decode()
        m = re.search(r"--job-name=(\S+)", text)
        self.names[native_id] = m.group(1) if m else "?"
        array = re.search(r"--array=0-(\d+)\n", text)  # a pack's: task N is job N
        for task in [f"_{i}" for i in range(int(array.group(1)) + 1)] if array else [""]:
            self.queue[native_id + task] = ("PENDING", 0)
        return CommandResult(0, f"{native_id}\n", "")

    def _squeue(self, ids: str) -> list[str]:
        rows = []
        for key, (state, raw) in self.queue.items():
            job, _, task = key.partition("_")
            if job in ids.split(",") or key in ids.split(","):
                rows.append(f"{job}|{task or 'N/A'}|{job}|{state}|None|{raw}|node1|\n")
        return rows

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.files[path] = data

    async def read_file(self, path: str, offset: int = 0, limit: int = -1) -> bytes:
        if path not in self.files:
            raise FileNotFoundError(path)
        data = self.files[path][offset:]
        return data if limit < 0 else data[:limit]

    async def put(self, local_path: str, remote_path: str) -> None:
        self.files[remote_path] = b"input"

    async def get(self, remote_path: str, local_path: str) -> None:
        self.files[local_path] = self.files[remote_path]

    async def exists(self, path: str) -> bool:
        return path in self.files

    async def make_dirs(self, path: str) -> None:
        self.files.setdefault(path + "/", b"")

    async def open_beneath(self, root: str, rel: str) -> FileReader:
        return _Reader(self.files[f"{root}/{rel}"]) if f"{root}/{rel}" in self.files else _missing()

    async def copy_beneath(self, root: str, rel: str, local_root: str, local_rel: str) -> None:
        if f"{root}/{rel}" not in self.files:
            raise FileNotFoundError(rel)
        self.files[f"{local_root}/{local_rel}"] = self.files[f"{root}/{rel}"]

    async def list_files(self, path: str) -> list[str]:
        return sorted(p[len(path) + 1 :] for p in self.files if p.startswith(path + "/"))

    def status_calls(self) -> list[list[str]]:
        return [c for c in self.calls if c[0] == "squeue" and "-j" in c]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read(self, offset: int, size: int) -> bytes:
        return self.data[offset:] if size < 0 else self.data[offset : offset + size]

    async def close(self) -> None:
        pass


def _missing() -> FileReader:
    raise FileNotFoundError("no such file")


class Sink:
    def __init__(self) -> None:
        self.reports: list[tuple[str, Outcome]] = []
        self.notes: list[tuple[str, str]] = []
        self.tasks: list[dict[str, Any]] = []  # the job.task notes' data, in order
        self.reported = asyncio.Event()

    def report(self, job: JobRecord | str, outcome: Outcome) -> None:
        self.reports.append((job if isinstance(job, str) else job.id, outcome))
        self.reported.set()

    def note(
        self, job_id: str, type_: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        self.notes.append((job_id, type_))
        if type_ == "job.task":
            self.tasks.append(data or {})

    def final(self, job_id: str) -> Outcome:
        [outcome] = [o for i, o in self.reports if i == job_id and o.state.final]
        return outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(base: str = "/runs", **dest: Any) -> tuple[BatchBackend, World, Sink, Clock]:
    world, sink, clock = World(), Sink(), Clock()
    destination = Destination(name="hpc", scheduler="slurm", poll_interval_s=BASE, **dest)
    backend = BatchBackend(destination, sink, base, world, SlurmScheduler(destination))
    backend.poller.clock = clock
    return backend, world, sink, clock


def job(
    i: int, native_id: str | None = None, state: JobState = S.SUBMITTED, **spec: Any
) -> JobRecord:
    return JobRecord(
        id=f"JOB{i:05d}",
        name=None,
        owner="u",
        destination="hpc",
        state=state,
        native_id=native_id,
        spec=JobSpec.parse({"script": "true", **spec}),
        created_at=datetime.now(UTC),
    )


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Let other tasks run until the condition holds (bounded: a broken submit must fail
    the test, not hang it)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


def test_one_status_command_per_poll_for_all_jobs_in_chunks_of_500() -> None:
    async def scenario() -> None:
        backend, world, _, _ = make()
        for i in range(1200):
            world.queue[str(i)] = ("PENDING", 0)
            await backend.attach(job(i, str(i)))
        await backend.poller.poll()
        calls = world.status_calls()
        assert [len(c[c.index("-j") + 1].split(",")) for c in calls] == [500, 500, 200]
        assert backend.poller.max_rounds_per_poll == 3 and backend.commands["status"] == 3

    run(scenario())


def test_running_is_reported_once_and_final_states_are_never_polled_again() -> None:
    async def scenario() -> None:
        backend, world, sink, _ = make()
        world.queue |= {"1": ("RUNNING", 0), "2": ("RUNNING", 0)}
        await backend.attach(job(1, "1"))
        await backend.attach(job(2, "2"))
        await backend.poller.poll()
        await backend.poller.poll()
        assert [(i, o.state, o.host) for i, o in sink.reports] == [
            ("JOB00001", S.RUNNING, "node1"),
            ("JOB00002", S.RUNNING, "node1"),
        ]
        world.queue["1"] = ("COMPLETED", 0)
        await backend.poller.poll()
        await backend.poller.poll()
        assert sink.final("JOB00001").exit_code == 0
        assert world.status_calls()[-1][5:7] == ["-j", "2"]  # only the job still running
        await backend.attach(job(1, "1"))  # attached again (another supervisor's restart)
        assert len([r for r in sink.reports if r[0] == "JOB00001"]) == 3  # from the cache
        assert backend.tracked() == 1

    run(scenario())


def test_a_failing_status_command_changes_no_job_and_backs_off() -> None:
    async def scenario() -> None:
        backend, world, sink, _ = make()
        world.queue["1"] = ("RUNNING", 0)
        await backend.attach(job(1, "1"))
        world.down.add("squeue")
        with pytest.raises(TransientError):
            await backend.poller.poll()
        intervals = []
        for _ in range(3):
            await backend.poller.poll_once()  # as the loop runs it: never raises
            intervals.append(backend.poller.interval())
        assert intervals == [BASE * 2, BASE * 4, BASE * 8]
        assert sink.reports == [] and backend.tracked() == 1
        assert sink.notes == [("JOB00001", "scheduler_unavailable")]  # once per outage
        world.down.clear()
        await backend.poller.poll_once()
        assert backend.poller.interval() == BASE
        assert sink.notes[-1] == ("JOB00001", "scheduler_available")
        assert [o.state for _, o in sink.reports] == [S.RUNNING]

    run(scenario())


def test_a_controller_that_answers_with_an_error_is_transient_too() -> None:
    async def scenario() -> None:
        backend, world, sink, _ = make()
        await backend.attach(job(1, "1"))

        async def refuse(argv: list[str], **kw: Any) -> CommandResult:
            return CommandResult(1, "", "slurm_load_jobs error: Socket timed out")

        world.run = refuse  # type: ignore[method-assign]
        with pytest.raises(TransientError, match="Socket timed out"):
            await backend.poller.poll()
        assert sink.reports == []

    run(scenario())


@pytest.mark.parametrize(
    ("sidecar", "history", "state", "code", "reason"),
    [
        (b"0\n", None, S.COMPLETED, 0, None),
        (b"3\n", ("FAILED", "3:0"), S.FAILED, 3, "exit code 3"),
        (b"143\n", ("TIMEOUT", "0:0"), S.TIMEOUT, 143, "walltime exceeded"),
        (None, ("OUT_OF_MEMORY", "0:125"), S.FAILED, None, "out of memory"),
        (b"7\n", None, S.FAILED, 7, "exit code 7"),  # no accounting record: the sidecar
    ],
)
def test_a_job_that_left_the_queue_is_judged_by_sidecar_then_accounting(
    sidecar: bytes | None,
    history: tuple[str, str] | None,
    state: JobState,
    code: int | None,
    reason: str | None,
) -> None:
    async def scenario() -> None:
        backend, world, sink, _ = make()
        await backend.attach(job(1, "5"))  # not in squeue any more (MinJobAge passed)
        if sidecar is not None:
            world.files["/runs/JOB00001/exitcode"] = sidecar
        if history is not None:
            world.history["5"] = history
        await backend.poller.poll()
        outcome = sink.final("JOB00001")
        assert (outcome.state, outcome.exit_code, outcome.reason) == (state, code, reason)
        asked = [c[0] for c in world.calls]
        assert ("sacct" in asked) == (sidecar != b"0\n")  # exit 0 needs no more evidence

    run(scenario())


def test_absence_is_never_success_only_lost_after_the_grace_period() -> None:
    async def scenario() -> None:
        backend, _, sink, clock = make()
        await backend.attach(job(1, "5"))
        await backend.poller.poll()
        clock.now += backend.lost_grace_s - 1
        await backend.poller.poll()
        assert sink.reports == []
        clock.now += 2
        await backend.poller.poll()
        outcome = sink.final("JOB00001")
        assert outcome.state == S.LOST and "no exit code" in (outcome.reason or "")

    run(scenario())


def test_accounting_that_does_not_answer_is_waited_for() -> None:
    async def scenario() -> None:
        backend, world, sink, _ = make()
        await backend.attach(job(1, "5"))
        world.files["/runs/JOB00001/exitcode"] = b"143\n"
        world.down.add("sacct")
        await backend.poller.poll()
        assert sink.reports == []  # 143 alone could be a timeout or a cancel: ask again
        world.down.clear()
        world.history["5"] = ("CANCELLED", "0:15")
        await backend.poller.poll()
        outcome = sink.final("JOB00001")
        assert (outcome.state, outcome.exit_code) == (S.CANCELLED, 143)
        assert outcome.reason and "outside jobgate" in outcome.reason

    run(scenario())


def test_an_unknown_native_state_keeps_the_job(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        backend, world, sink, clock = make()
        world.queue["1"] = ("SOMETHING_NEW", 0)
        await backend.attach(job(1, "1"))
        for _ in range(3):
            await backend.poller.poll()
            clock.now += backend.lost_grace_s
        assert sink.reports == [] and backend.tracked() == 1

    with caplog.at_level(logging.WARNING):
        run(scenario())
    assert "SOMETHING_NEW" in caplog.text


def test_an_array_fails_if_any_task_fails_and_names_it() -> None:
    async def scenario() -> None:
        backend, world, sink, _ = make()
        world.queue |= {"9_0": ("COMPLETED", 0), "9_1": ("RUNNING", 0), "9_2": ("PENDING", 0)}
        await backend.attach(job(1, "9", resources={"array": "0-2"}))
        await backend.poller.poll()
        assert [o.state for _, o in sink.reports] == [S.RUNNING]
        said = [(t["index"], t["state"]) for t in sink.tasks]
        assert said == [(0, "COMPLETED"), (1, "RUNNING")]  # task by task, as the poll sees them
        del world.queue["9_0"]  # task 0 aged out of squeue: remembered, not asked again
        world.queue |= {"9_1": ("COMPLETED", 0), "9_2": ("FAILED", 4 << 8)}
        await backend.poller.poll()
        outcome = sink.final("JOB00001")
        assert (outcome.state, outcome.exit_code) == (S.FAILED, 4)
        assert outcome.reason == "1 of 3 array tasks did not complete (2: exit code 4)"
        assert outcome.data["tasks"]["2"] == {
            "state": "FAILED",
            "exit_code": 4,
            "reason": "exit code 4",
        }
        assert outcome.data["tasks"]["0"]["state"] == "COMPLETED"
        ended = {t["index"]: (t["state"], t["exit_code"]) for t in sink.tasks[2:]}
        assert ended == {1: ("COMPLETED", 0), 2: ("FAILED", 4)}  # each said once

    run(scenario())


def test_array_tasks_that_left_the_queue_read_their_own_sidecars() -> None:
    async def scenario() -> None:
        backend, world, sink, _ = make()
        await backend.attach(job(1, "9", resources={"array": "1,3"}))
        world.files |= {
            "/runs/JOB00001/tasks/1/exitcode": b"0\n",
            "/runs/JOB00001/tasks/3/exitcode": b"0\n",
        }
        await backend.poller.poll()
        assert sink.final("JOB00001").state == S.COMPLETED

    run(scenario())


def test_stop_runs_cancel_sh_then_cancels_and_the_poll_decides() -> None:
    async def scenario() -> None:
        backend, world, sink, _ = make()
        world.queue |= {"1": ("RUNNING", 0), "2": ("COMPLETED", 0)}
        world.files["/runs/JOB00001/cancel.sh"] = b"touch stop\n"
        running, finished = job(1, "1"), job(2, "2")
        await backend.attach(running)
        await backend.attach(finished)
        await backend.stop(running, StopReason.CANCEL)
        await backend.stop(finished, StopReason.CANCEL)  # it ended first: scancel says nothing
        await backend.stop(running, StopReason.CANCEL)  # asked twice: acted on once
        assert [c[:2] for c in world.calls] == [
            ["/usr/bin/env", "-i"],  # cancel.sh, with none of the gateway's environment
            ["scancel", "1"],
            ["scancel", "2"],
        ]
        assert world.calls[0][-2:] == ["/bin/bash", "cancel.sh"]
        await backend.poller.poll()
        assert sink.final("JOB00001").state == S.CANCELLED
        # Never seen running, killed by the signal: no exit code, and the reason says why.
        assert sink.final("JOB00001").reason == "cancelled on request"
        assert sink.final("JOB00002").state == S.COMPLETED  # the truth, not the request

    run(scenario())


@pytest.mark.parametrize("sidecar", [True, False])
def test_a_running_job_that_was_cancelled_keeps_the_exit_code_its_wrapper_wrote(
    sidecar: bool,
) -> None:
    """Slurm says CANCELLED as the job dies; the wrapper writes the command's exit code a
    moment later: the poll waits for it (up to a grace period), then ends the job with it,
    or without it and a reason saying so."""

    async def scenario() -> None:
        backend, world, sink, clock = make()
        world.queue["1"] = ("RUNNING", 0)
        await backend.attach(job(1, "1"))
        await backend.poller.poll()  # seen running
        await backend.stop(job(1, "1", state=S.RUNNING), StopReason.CANCEL)
        await backend.poller.poll()  # scancel: CANCELLED, no sidecar yet
        assert [o.state for _, o in sink.reports] == [S.RUNNING]
        if sidecar:
            world.files["/runs/JOB00001/exitcode"] = b"143\n"
        clock.now += SIDECAR_GRACE_S / 2
        await backend.poller.poll()
        if not sidecar:
            assert [o.state for _, o in sink.reports] == [S.RUNNING]  # still waiting
            clock.now += SIDECAR_GRACE_S
            await backend.poller.poll()
        final = sink.final("JOB00001")
        assert final.state == S.CANCELLED
        if sidecar:
            assert (final.exit_code, final.reason) == (143, "cancelled on request")
        else:
            assert (final.exit_code, final.reason) == (None, "cancelled on request")

    run(scenario())


def test_submissions_are_throttled_per_destination() -> None:
    async def scenario() -> None:
        backend, world, _, _ = make(max_submits=2, pack_jobs=1)  # each job alone
        world.gate = asyncio.Event()
        tasks = [asyncio.create_task(backend.submit(job(i, state=S.STAGING_IN))) for i in range(6)]
        await eventually(lambda: world.in_flight == 2, "two submissions in flight")
        for _ in range(10):  # give any other submission the chance to start (it must not)
            await asyncio.sleep(0)
        assert world.in_flight == 2
        world.gate.set()
        ids = [s.native_id for s in await asyncio.gather(*tasks)]
        assert len(set(ids)) == 6 and world.peak == 2
        assert len(world.shells) == 2  # six submissions, two shells of three
        script = world.files["/runs/JOB00000/jobgate.sh"].decode()
        assert "#SBATCH --job-name=jobgate-JOB00000" in script
        assert world.files["/runs/JOB00000/script.sh"] == b"#!/bin/bash\ntrue\n"

    run(scenario())


def test_a_submit_that_timed_out_is_looked_for_before_it_fails() -> None:
    async def scenario() -> None:
        backend, world, _, _ = make()
        sbatch = world._sbatch

        async def lost_answer(script: str) -> CommandResult:
            await sbatch(script)  # the job went in, but the answer never came back
            raise TransientError("sbatch did not answer within 60 s")

        world._sbatch = lost_answer  # type: ignore[method-assign]
        submitted = await backend.submit(job(1, state=S.STAGING_IN))
        assert submitted.native_id == "101" and backend.tracked() == 1

    run(scenario())


def test_find_after_a_crash() -> None:
    async def scenario() -> None:
        backend, world, _, _ = make()
        never = job(1, state=S.STAGING_IN)
        assert await backend.find(never) is None and world.calls == []  # no script: not sent
        sent = job(2, state=S.STAGING_IN)
        await backend.submit(sent)
        found = await backend.find(sent)
        assert found is not None and found.native_id == "101"
        world.files["/runs/JOB00003/jobgate.sh"] = b"#!/bin/bash\n"  # written, never submitted
        assert await backend.find(job(3, state=S.STAGING_IN)) is None

    run(scenario())


def test_polling_backs_off_as_jobs_stay_quiet() -> None:
    async def scenario() -> None:
        backend, world, _, clock = make()
        world.queue["1"] = ("RUNNING", 0)
        await backend.attach(job(1, "1", state=S.RUNNING))
        assert backend.poller.interval() == BASE
        clock.now += 300
        assert backend.poller.interval() == 30.0
        clock.now += 3600
        assert backend.poller.interval() == 60.0  # at most a minute
        await backend.attach(job(2, "2"))  # a new job is watched closely again
        assert backend.poller.interval() == BASE

    run(scenario())


def test_a_draining_queue_is_polled_at_the_base_interval() -> None:
    """Jobs that end leave tracking; the ones still pending have not changed for long. The
    interval follows the destination's last change, not the age of what is left."""

    async def scenario() -> None:
        backend, world, _, clock = make()
        for i in range(3):
            world.queue[str(i)] = ("PENDING", 0)
            await backend.attach(job(i, str(i)))
        clock.now += 300
        assert backend.poller.interval() == 30.0
        world.queue["0"] = ("COMPLETED", 0)
        await backend.poller.poll()
        assert backend.poller.interval() == BASE
        clock.now += 300
        await backend.poller.poll()  # nothing moved
        assert backend.poller.interval() == 30.0

    run(scenario())


def test_the_loop_reports_without_being_driven() -> None:
    async def scenario() -> None:
        backend, world, sink, _ = make()
        backend.clock = asyncio.get_running_loop().time
        backend.destination.poll_interval_s = 0.01
        await backend.start()
        world.queue["1"] = ("COMPLETED", 0)
        await backend.attach(job(1, "1"))
        await asyncio.wait_for(sink.reported.wait(), 10)
        assert sink.final("JOB00001").state == S.COMPLETED
        await backend.close()

    run(scenario())


def test_a_relative_base_is_made_absolute_before_anything_is_written() -> None:
    """Slurm over SSH: run directories under the remote home; the job script cds before it
    writes its sidecar, so every path in it must be absolute."""

    async def scenario() -> None:
        backend, world, _, _ = make(base=".jobgate/runs")
        assert backend.run_dir_of("JOB00001") is None  # unknown until the home is
        assert await backend.resolve_base() == "/home/u/.jobgate/runs"
        run_dir = backend.run_dir_of("JOB00001")
        assert run_dir == "/home/u/.jobgate/runs/JOB00001"
        staged = job(1, state=S.STAGING_IN).model_copy(update={"run_dir": run_dir})
        await backend.submit(staged)
        script = world.files[f"{run_dir}/jobgate.sh"].decode()
        assert f"jobgate_dir={run_dir}\n" in script
        assert f"--output={run_dir}/jobgate.log" in script
        world.files[f"{run_dir}/stdout"] = b"hi\n"
        assert await backend.read(staged, backend.files(staged).stdout) == b"hi\n"
        assert await backend.read(staged, "stdout") == b"hi\n"
        await backend.resolve_base()
        assert [c for c in world.calls if c == ["pwd"]] == [["pwd"]]  # asked once

    run(scenario())


def test_submissions_arriving_together_share_a_shell_and_keep_their_own_answers() -> None:
    async def scenario() -> None:
        backend, world, _, _ = make(pack_jobs=1)  # max_submits 8; each job alone
        sbatch = world._sbatch

        async def refuse_one(script: str) -> CommandResult:
            if "JOB00003" in script:
                return CommandResult(1, "", "sbatch: error: Invalid account or account/partition")
            return await sbatch(script)

        world._sbatch = refuse_one  # type: ignore[method-assign]
        jobs = [job(i, state=S.STAGING_IN) for i in range(40)]
        results = await asyncio.gather(*(backend.submit(j) for j in jobs), return_exceptions=True)
        assert len(world.shells) == backend.commands["submit_shell"] == 8
        assert len([c for c in world.calls if c[0] == "sbatch"]) == 40
        refused = results[3]
        assert isinstance(refused, SubmitError) and "Invalid account" in str(refused)
        assert all(isinstance(r, Submitted) for i, r in enumerate(results) if i != 3)
        assert backend.tracked() == 39
        lone = await backend.submit(job(99, state=S.STAGING_IN))  # alone: no shell around it
        assert lone.native_id and len(world.shells) == 8
        # Each shell (and the lone sbatch) started from `env -i` with the base alone.
        assert len(world.clean) == 9
        assert all({w.split("=")[0] for w in words} == set(BASE_VARS) for words in world.clean)

    run(scenario())


def test_a_submit_shell_that_dies_leaves_no_job_guessing() -> None:
    """Jobs whose turn never came are looked for by name: submitted, or an error."""

    async def scenario() -> None:
        backend, world, _, _ = make(max_submits=1, pack_jobs=1)
        run_command = world.run

        async def die_after_two(argv: list[str], **kw: Any) -> CommandResult:
            if argv == ["/bin/bash", "-s"]:
                done = await run_command(argv, **kw)
                return CommandResult(137, "".join(done.stdout.splitlines(True)[:2]), "")
            return await run_command(argv, **kw)

        world.run = die_after_two  # type: ignore[method-assign]
        results = await asyncio.gather(
            *(backend.submit(job(i, state=S.STAGING_IN)) for i in range(4)),
            return_exceptions=True,
        )
        # the fake's shell ran all four before "dying": the last two are found by name
        assert [type(r) for r in results] == [Submitted] * 4
        assert len({r.native_id for r in results if isinstance(r, Submitted)}) == 4

    run(scenario())
