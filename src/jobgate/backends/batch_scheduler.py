"""What a batch scheduler (Slurm, PBS) is to jobgate: small command builders and output
parsers plus a native-state map, with no I/O of their own; and the shells that run many
submit commands at once. The polling loop that runs them is `BatchBackend` in batch.py.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from jobgate.backends.base import JobFiles
from jobgate.backends.batch_status import NativeStatus, Phase, StateMap
from jobgate.backends.directives import DirectivePolicy
from jobgate.config import Destination
from jobgate.errors import ConfigError, SchedulerUnavailable, SubmitError
from jobgate.spec import JobRecord, Resources
from jobgate.transports.base import CommandResult

log = logging.getLogger(__name__)

TASK_MARK = "@TASK@"  # stands for an array index in task.sh.in; shlex never quotes it
TASK_TEMPLATE = "task.sh.in"


def job_name(job: JobRecord) -> str:
    """The scheduler-side name: how `find` recognises a job submitted just before a crash."""
    return f"jobgate-{job.id}"


def body_context(task_variable: str) -> dict[str, Any]:
    """What the templates need besides the resources: the sidecar written atomically (a
    poller may read it while it is written, maybe over NFS), and for the array dispatch,
    how each task turns task.sh.in (the shared body with TASK_MARK for the index) into its
    own wrapper, run in tasks/<index>."""
    return {
        "atomic_sidecar": True,
        "task_variable": task_variable,
        "mark": TASK_MARK,
        "task_template": TASK_TEMPLATE,
    }


def task_files(job: JobRecord, files: JobFiles) -> JobFiles:
    """Files of one array task: markers, sidecar and default stdout/stderr in tasks/<index>/
    (TASK_MARK is replaced by the index when the task starts); the working directory, where
    inputs were staged, stays the job's."""
    run_dir = f"{files.run_dir}/tasks/{TASK_MARK}"
    spec = job.spec
    return JobFiles(
        run_dir=run_dir,
        workdir=files.workdir,
        stdout=files.stdout if spec.stdout else f"{run_dir}/stdout",
        stderr=files.stderr if spec.stderr else f"{run_dir}/stderr",
        stdin=files.stdin,
    )


class BatchScheduler(ABC):
    """One scheduler's commands and parsers. Subclasses fill in the native-state map."""

    name: str
    template: str
    pack_template: str | None = None  # an array whose tasks run other jobs' wrappers
    states: StateMap
    chunk_size = 500  # most ids in one status command
    unknown_id_codes: frozenset[int] = frozenset()  # exit codes that only mean "no such id"
    unknown_id_errors: tuple[str, ...] = ()
    transient_errors: tuple[str, ...] = ()

    directives: DirectivePolicy  # which raw directives users may give

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        try:
            self.allowed_directives = self.directives.extend(destination.allowed_directives)
        except ValueError as exc:
            field = f"destinations.{destination.name}.allowed_directives"
            raise ConfigError(field, str(exc)) from None

    # -- the job script -------------------------------------------------------------------

    @abstractmethod
    def check(self, resources: Resources) -> None:
        """Refuse, with a SpecError naming the field, what this scheduler cannot express."""

    def check_directives(self, resources: Resources) -> None:
        """Raw directives are an escape hatch, not a hole: only allowed options, one each."""
        self.directives.check(resources.directives, self.allowed_directives, self.destination.name)

    @abstractmethod
    def script_context(self, job: JobRecord, res: Resources, files: JobFiles) -> dict[str, Any]:
        """Values for the template besides job, spec, files, command and environment."""

    # -- commands -------------------------------------------------------------------------

    @abstractmethod
    def submit_command(self, script_path: str, files: JobFiles) -> list[str]: ...

    @abstractmethod
    def parse_submit_output(self, result: CommandResult) -> str:
        """The native id; SubmitError with the scheduler's message if it refused the job,
        SchedulerUnavailable if it could not be asked."""

    @abstractmethod
    def status_command(self, native_ids: list[str]) -> list[str]: ...

    @abstractmethod
    def parse_status_output(self, text: str) -> dict[str, NativeStatus]: ...

    def accounting_command(self, native_ids: list[str], since_s: float) -> list[str] | None:
        """Ask the history (jobs that left the queue) about jobs up to `since_s` old."""
        return None

    def parse_accounting_output(self, text: str) -> dict[str, NativeStatus]:
        return {}

    def accounting_disabled(self, result: CommandResult) -> bool:
        return False

    @abstractmethod
    def cancel_command(self, native_ids: list[str]) -> list[str]: ...

    @abstractmethod
    def find_commands(self, name: str, since_s: float) -> list[list[str]]:
        """Commands that may list a job by its scheduler-side name, tried in order."""

    @abstractmethod
    def parse_find_output(self, text: str, name: str) -> str | None: ...

    # -- shared helpers -------------------------------------------------------------------

    def classify(self, native_state: str, **details: Any) -> NativeStatus:
        """Map a native state; an unknown one is UNKNOWN with a warning, never an error."""
        try:
            phase, outcome, reason = self.states[native_state]
        except KeyError:
            log.warning(
                "%s: unknown job state %r: keeping the job as it is", self.name, native_state
            )
            return NativeStatus(Phase.UNKNOWN, native_state, **details)
        return NativeStatus(phase, native_state, outcome, reason=reason, **details)

    def status_error(self, result: CommandResult) -> str | None:
        """None if the status output can be trusted (also when it only says some ids are
        unknown), else what went wrong: a transient error, never a job's failure."""
        if result.returncode == 0:
            return None
        if result.returncode in self.unknown_id_codes or any(
            e in result.stderr for e in self.unknown_id_errors
        ):
            return None
        return message_of(result)

    def submit_failure(self, result: CommandResult) -> Exception:
        message = message_of(result)
        if any(e in message for e in self.transient_errors):
            return SchedulerUnavailable(f"{self.name}: {message}")
        return SubmitError(message)


def message_of(result: CommandResult) -> str:
    """The scheduler's own words, without the "sbatch: error: " prefixes, on one line."""
    text = result.stderr.strip() or result.stdout.strip()
    lines = [
        re.sub(r"^[a-z]+: (?:error: |fatal: )?", "", ln.strip(" '")) for ln in text.splitlines()
    ]
    message = "; ".join(ln for ln in lines[-3:] if ln)
    return message[:500] or f"exit status {result.returncode}"


# Many submit commands in one shell: one process (or SSH channel) instead of one per job.
# Each prints "<exit status> <its output, newlines as \x1f>" on one line.
_BATCH_RUNNER = (
    'jobgate_run() { out=$("$@" 2>&1); rc=$?; printf \'%s %s\\n\' "$rc" '
    "\"${out//$'\\n'/$'\\037'}\"; }\n"
)


def batch_script(argvs: list[list[str]]) -> str:
    """A bash script (for stdin) that runs each command in turn, every word quoted."""
    return _BATCH_RUNNER + "".join(
        " ".join(["jobgate_run", *map(shlex.quote, argv)]) + "\n" for argv in argvs
    )


def parse_batch_output(text: str) -> list[CommandResult]:
    """One result per command that ran (fewer if the shell died): output in both streams."""
    results = []
    for line in text.splitlines():
        rc, _, out = line.partition(" ")
        if rc.isdigit():
            out = out.replace("\x1f", "\n")
            results.append(CommandResult(int(rc), out, out))
    return results


SUBMIT_BATCH = 50  # most submit commands in one shell
Run = Callable[[list[str], str, float, "str | None"], Awaitable[CommandResult]]


class SubmitShells:
    """Submit commands that arrive together share a shell (one process, or one SSH channel,
    for many jobs; at most `limit` shells at once); a lone command runs as it is. The
    gateway's cost per job stays below sbatch's own, and each job still gets its own exit
    status and message. `prefix` (`env -i` and a base environment) starts the shell, or
    the lone command: once per shell, not once per job."""

    def __init__(self, run: Run, limit: int) -> None:
        self._run, self._limit = run, limit
        self._slots = asyncio.Semaphore(limit)
        self._queued: list[tuple[tuple[str, ...], list[str], asyncio.Future[CommandResult]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, argv: list[str], prefix: tuple[str, ...] = ()) -> CommandResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CommandResult] = loop.create_future()
        self._queued.append((prefix, argv, future))
        if len(self._queued) == 1:
            loop.call_soon(self._drain)  # after every submit of this loop turn
        return await future

    def _drain(self) -> None:
        groups: dict[tuple[str, ...], list[tuple[list[str], asyncio.Future[CommandResult]]]] = {}
        for prefix, argv, future in self._queued:
            groups.setdefault(prefix, []).append((argv, future))
        self._queued = []
        for prefix, queued in groups.items():
            size = min(SUBMIT_BATCH, math.ceil(len(queued) / self._limit))
            for i in range(0, len(queued), size):
                task = asyncio.create_task(self._shell(prefix, queued[i : i + size]))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _shell(
        self,
        prefix: tuple[str, ...],
        batch: list[tuple[list[str], asyncio.Future[CommandResult]]],
    ) -> None:
        try:
            async with self._slots:
                if len(batch) == 1:
                    results = [await self._run([*prefix, *batch[0][0]], "submit", 60.0, None)]
                else:
                    script = batch_script([argv for argv, _ in batch])
                    argv = [*prefix, "/bin/bash", "-s"]
                    done = await self._run(argv, "submit_shell", 60.0 + len(batch), script)
                    results = parse_batch_output(done.stdout)
        except Exception as exc:  # every job of the batch learns it (TransientError: find)
            results, error = [], exc
        else:
            error = SchedulerUnavailable("the submit shell ended before this job's turn")
        for i, (_, future) in enumerate(batch):
            if not future.done():
                if i < len(results):
                    future.set_result(results[i])
                else:
                    future.set_exception(error)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
