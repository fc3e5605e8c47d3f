"""Pure logic of the SSH transport and the process scheduler: command and option building,
back-off, parsing, and how a poll's answer becomes outcomes (over a fake transport)."""

from __future__ import annotations

import asyncio
import shlex
from datetime import UTC, datetime

import pydantic
import pytest

from jobgate.backends.environment import job_environment
from jobgate.backends.layout import JobFiles
from jobgate.backends.outcome import Outcome, exit_reason
from jobgate.backends.process import ProcessBackend, parse_started, script_argv
from jobgate.backends.scripts import render
from jobgate.config import Destination
from jobgate.errors import SchedulerUnavailable
from jobgate.spec import JobRecord, JobSpec
from jobgate.states import JobState
from jobgate.transports.base import CommandResult, Transport
from jobgate.transports.ssh import (
    BACKOFF_MAX_S,
    backoff_delay,
    connect_options,
    known_hosts_path,
    remote_command,
)
from jobgate.views import FileReader


def dest(**fields: object) -> Destination:
    return Destination.model_validate({"name": "r", "scheduler": "ssh", "host": "h", **fields})


# -- commands and options ---------------------------------------------------------------------


def test_remote_command_quotes_every_argument() -> None:
    argv = ["printf", "%s\n", "two words", "$(rm -rf ~)", "it's", ""]
    command = remote_command(argv)
    assert shlex.split(command) == argv
    assert command == "printf '%s\n' 'two words' '$(rm -rf ~)' 'it'\"'\"'s' ''"


def test_remote_command_changes_directory_first() -> None:
    assert remote_command(["ls", "-l"], cwd="runs/a b") == "cd 'runs/a b' && ls -l"
    assert remote_command(["true"], cwd=None) == "true"
    with pytest.raises(ValueError):
        remote_command([])


def test_host_keys_are_always_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    assert known_hosts_path(dest()) == "/home/someone/.ssh/known_hosts"
    assert connect_options(dest())["known_hosts"] == "/home/someone/.ssh/known_hosts"
    assert connect_options(dest(known_hosts="~/kh"))["known_hosts"] == "/home/someone/kh"


def test_key_file_means_only_that_key_else_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    with_key = connect_options(dest(key_file="~/.ssh/id_x", user="u", port=2222))
    assert with_key["client_keys"] == ["/home/someone/.ssh/id_x"]
    assert with_key["agent_path"] is None
    assert (with_key["host"], with_key["port"], with_key["username"]) == ("h", 2222, "u")
    agent = connect_options(dest())
    assert "client_keys" not in agent and "agent_path" not in agent and "username" not in agent
    assert agent["config"] is None  # ~/.ssh/config cannot turn checks off behind our back


def test_backoff_doubles_up_to_a_cap() -> None:
    delays = [backoff_delay(n) for n in range(10)]
    assert delays[:4] == [0.0, 1.0, 2.0, 4.0]
    assert delays == sorted(delays) and max(delays) == BACKOFF_MAX_S
    assert backoff_delay(10_000) == BACKOFF_MAX_S


def test_script_arguments_are_never_spliced_into_the_script() -> None:
    argv = script_argv("stop", "/runs/x; rm -rf ~", "42")
    assert argv[:2] == ["bash", "-c"] and argv[-2:] == ["/runs/x; rm -rf ~", "42"]
    assert "rm -rf" not in argv[2] and argv[2].endswith('jg_stop "$@"')


def test_parse_started() -> None:
    sub = parse_started("123\t456789\tnode1\n")
    assert (sub.native_id, sub.host, sub.data, sub.running) == (
        "123",
        "node1",
        {"start": 456789},
        True,
    )
    assert parse_started("123\t\t\n").data == {"start": 0}  # exited already: no pid reuse
    for bad in ["", "abc\t1\th", "1\t2"]:
        with pytest.raises(ValueError):
            parse_started(bad)


def test_exit_reasons() -> None:
    assert exit_reason(3) == "exit code 3"
    assert exit_reason(127) == "exit code 127: command not found"
    assert exit_reason(137) == "exit code 137 (killed by SIGKILL)"
    assert exit_reason(255) == "exit code 255"


def test_remote_dir_with_a_tab_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="remote_dir"):
        dest(remote_dir="runs\tx")


def test_ssh_scheduler_of_older_configs_is_the_process_scheduler_over_ssh() -> None:
    old = dest()
    assert (old.scheduler, old.transport) == ("process", "ssh")
    with pytest.raises(pydantic.ValidationError, match="needs a host"):
        Destination.model_validate({"name": "r", "scheduler": "ssh"})


# -- from a poll's answer to outcomes ------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.reports: list[tuple[str, Outcome]] = []
        self.notes: list[tuple[str, str]] = []

    def report(self, job: JobRecord | str, outcome: Outcome) -> None:
        self.reports.append((job if isinstance(job, str) else job.id, outcome))

    def note(self, job_id: str, type_: str, message: str) -> None:
        self.notes.append((job_id, type_))


class _FakeTransport(Transport):
    """Answers each status command with the next canned result; any other succeeds."""

    def __init__(self, *answers: CommandResult) -> None:
        self.answers = list(answers)
        self.inputs: list[str | None] = []

    async def run(
        self,
        argv: list[str],
        *,
        input: str | None = None,
        timeout: float = 60.0,
        cwd: str | None = None,
    ) -> CommandResult:
        if argv == ["pwd"]:
            return CommandResult(0, "/home/u\n", "")
        if argv[3] != "jobgate-poll":
            return CommandResult(0, "", "")
        self.inputs.append(input)
        return self.answers.pop(0)

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        raise NotImplementedError

    async def read_file(self, path: str, offset: int = 0, limit: int = -1) -> bytes:
        return path.encode()  # which file was asked for

    async def put(self, local_path: str, remote_path: str) -> None:
        raise NotImplementedError

    async def get(self, remote_path: str, local_path: str) -> None:
        raise NotImplementedError

    async def exists(self, path: str) -> bool:
        raise NotImplementedError

    async def make_dirs(self, path: str) -> None:
        raise NotImplementedError

    async def open_beneath(self, root: str, rel: str) -> FileReader:
        return _Named(f"{root}/{rel}")

    async def copy_beneath(self, root: str, rel: str, local_root: str, local_rel: str) -> None:
        raise NotImplementedError

    async def list_files(self, path: str) -> list[str]:
        raise NotImplementedError


class _Named:
    """A file whose content is its own path (which file was asked for)."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def read(self, offset: int, size: int) -> bytes:
        return self.path.encode()

    async def close(self) -> None:
        pass


def _job(job_id: str, stop_reason: str | None = None) -> JobRecord:
    return JobRecord(
        id=job_id,
        name=None,
        owner="me",
        destination="r",
        state=JobState.RUNNING,
        native_id="100",
        spec=JobSpec(script="true"),
        stop_reason=stop_reason,
        backend_data={"start": 5},
        created_at=datetime.now(UTC),
    )


def _poll(lines: list[str], polls: int = 1, **jobs: str | None) -> list[tuple[str, Outcome]]:
    """Attach jobs (id -> stop reason), run `polls` polls that all answer `lines`."""
    answer = CommandResult(0, "".join(f"{line}\n" for line in lines), "")
    transport = _FakeTransport(*[answer] * polls)
    sink = _Sink()
    backend = ProcessBackend(dest(), sink, "/base", transport)

    async def go() -> None:
        for job_id, stop in jobs.items():
            await backend.attach(_job(job_id, stop))
        for _ in range(polls):
            await backend.poller.poll()

    asyncio.run(go())
    assert transport.inputs[0] == "".join(f"{j}\t100\t5\t/base/{j}\n" for j in jobs)
    return sink.reports


def test_sidecar_decides_how_a_job_ended() -> None:
    reports = _poll(
        ["ok\t0\t0\t1\tn1", "bad\t1\t3\t1\tn1", "run\t1\t\t1\tn1"], ok=None, bad=None, run=None
    )
    assert [(j, o.state, o.exit_code, o.host) for j, o in reports] == [
        ("ok", JobState.COMPLETED, 0, "n1"),
        ("bad", JobState.FAILED, 3, "n1"),  # alive but its code is written: it is ending
    ]


def test_gone_without_sidecar_is_lost_only_when_two_polls_agree() -> None:
    assert _poll(["a\t0\t\t1\t"], a=None) == []
    reports = _poll(["a\t0\t\t1\t", "b\t0\t\t0\t"], polls=2, a=None, b=None)
    assert [(j, o.state) for j, o in reports] == [("a", JobState.LOST), ("b", JobState.FAILED)]
    assert "never started" in (reports[1][1].reason or "")


def test_stopped_jobs_end_as_cancelled_or_timeout_with_their_code() -> None:
    reports = _poll(
        ["c\t0\t143\t1\t", "t\t0\t\t1\t", "s\t1\t\t1\t"], c="cancel", t="timeout", s="cancel"
    )
    assert [(j, o.state, o.exit_code) for j, o in reports] == [
        ("c", JobState.CANCELLED, 143),
        ("t", JobState.TIMEOUT, None),  # still alive: "s" is not over yet
    ]


def test_failed_status_command_is_transient_and_changes_nothing() -> None:
    sink = _Sink()
    backend = ProcessBackend(dest(), sink, "/base", _FakeTransport(CommandResult(1, "", "boom")))

    async def go() -> None:
        await backend.attach(_job("a"))
        with pytest.raises(SchedulerUnavailable, match="boom"):
            await backend.poller.poll()

    asyncio.run(go())
    assert sink.reports == [] and backend.watched() == 1


def test_rendered_wrapper_writes_its_pid_first() -> None:
    job = _job("j1")
    files = JobFiles.of(job, "/base/j1")
    text = render("process.sh.j2", job, files, job_environment(job, dest(), files.run_dir))
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "printf '%s\\n' \"$$\" > /base/j1/jobgate.pid" in lines[:4]
    assert "jobgate_dir=/base/j1" in lines


def test_a_relative_base_is_resolved_once_against_the_remote_home() -> None:
    transport = _FakeTransport()
    backend = ProcessBackend(dest(), _Sink(), ".jobgate/runs", transport)
    assert backend.run_dir_of("j") is None  # not known before the home is
    with pytest.raises(SchedulerUnavailable):
        backend.files(_job("j"))

    async def go() -> str:
        return await backend.resolve_base()

    assert asyncio.run(go()) == "/home/u/.jobgate/runs"
    assert backend.run_dir_of("j") == "/home/u/.jobgate/runs/j"
    custom = _job("j").model_copy(
        update={"spec": JobSpec(script="true", directory="wd", stdout="out.txt")}
    )
    files = backend.files(custom)
    assert (files.run_dir, files.workdir, files.stdout, files.stderr) == (
        "/home/u/.jobgate/runs/j",
        "/home/u/.jobgate/runs/j/wd",
        "/home/u/.jobgate/runs/j/wd/out.txt",
        "/home/u/.jobgate/runs/j/stderr",
    )

    async def read(path: str) -> str:
        return (await backend.read(custom, path)).decode()

    assert asyncio.run(read(files.stdout)) == files.stdout  # an absolute path stays as it is
    assert asyncio.run(read("jobgate.log")) == "/home/u/.jobgate/runs/j/jobgate.log"


def test_close_ends_the_poll_loop_even_when_a_wake_races_the_cancel() -> None:
    """On 3.11, asyncio.wait_for swallows a cancel that lands as its inner wait completes;
    the poll loop must not wait that way, or closing the gateway hangs."""
    alive = CommandResult(0, "a\t1\t\t1\t\n", "")

    async def go() -> None:
        transport = _FakeTransport(*[alive] * 10)
        backend = ProcessBackend(dest(poll_interval_s=60), _Sink(), "/base", transport)
        await backend.start()
        await backend.attach(_job("a"))
        while not transport.inputs:  # the first poll ran: the loop now waits an interval
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        backend.poller._wake.set()
        await asyncio.sleep(0)  # the wait has its event; the loop has not resumed yet
        async with asyncio.timeout(5):
            await backend.close()

    asyncio.run(go())
