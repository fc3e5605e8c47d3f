"""What a batch scheduler (Slurm, PBS) is to jobgate: small command builders and output
parsers plus a native-state map, with no I/O; and how a job that ended is judged from what
the scheduler, the exit-code sidecar and accounting say. The polling loop that runs them is
`BatchBackend` in batch.py.
"""

from __future__ import annotations

import logging
import re
import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from jobgate.backends.base import JobFiles, Outcome
from jobgate.config import Destination
from jobgate.errors import SchedulerUnavailable, SpecError, SubmitError
from jobgate.spec import JobRecord, Resources
from jobgate.states import JobState
from jobgate.transports.base import CommandResult

log = logging.getLogger(__name__)

TASK_MARK = "@TASK@"  # stands for an array index in task.sh.in; shlex never quotes it
TASK_TEMPLATE = "task.sh.in"
_RAW_VALUE = r"[A-Za-z0-9_.,:=@%+/-]+"  # no shell metacharacters, quotes or spaces


class Phase(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    ENDED = "ended"
    UNKNOWN = "unknown"  # a native state we have no mapping for: keep the job as it is


@dataclass
class NativeStatus:
    """What the scheduler says about one job (or one array task)."""

    phase: Phase
    native_state: str
    outcome: JobState | None = None  # how it ended, when the scheduler says (phase ENDED)
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    host: str | None = None
    tasks: dict[int, NativeStatus] = field(default_factory=dict)  # array tasks by index


StateMap = dict[str, tuple[Phase, JobState | None, str | None]]


def job_name(job: JobRecord) -> str:
    """The scheduler-side name: how `find` recognises a job submitted just before a crash."""
    return f"jobgate-{job.id}"


def array_indices(spec: str) -> list[int]:
    """Indices of an array spec: "0-9:2%4" -> 0,2,4,6,8; "1,3,5" -> 1,3,5."""
    out: set[int] = set()
    for part in spec.split("%", maxsplit=1)[0].split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if not m:
            raise ValueError(f"{spec!r} is not an array spec")
        first = int(m.group(1))
        last = int(m.group(2) or first)
        step = int(m.group(3) or 1)
        if last < first or step < 1:
            raise ValueError(f"{spec!r}: empty range {part!r}")
        out.update(range(first, last + 1, step))
    return sorted(out)


def exit_reason(code: int | None, sig: int | None = None) -> str:
    if sig:
        return f"killed by {signal_name(sig)}"
    if code is None:
        return "no exit code"
    if code == 127:
        return "exit code 127: command not found"
    if code == 126:
        return "exit code 126: cannot execute or cannot enter the working directory"
    if code > 128 and code - 128 < 65:
        return f"exit code {code} (killed by {signal_name(code - 128)})"
    return f"exit code {code}"


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


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


def check_directives(
    directives: list[str], forbidden: frozenset[str], pattern: str, example: str
) -> None:
    """Raw directives are an escape hatch, not a hole: one option, plain values, and none of
    the options jobgate sets itself (it finds jobs by name and reads their files)."""
    for i, directive in enumerate(directives):
        where = f"resources.directives.{i}"
        if not re.fullmatch(pattern, directive):
            raise SpecError(
                where,
                f"{directive!r} is not one option with a plain value (e.g. {example!r}); "
                "quotes, spaces and shell characters are refused",
            )
        option = re.split(r"[= ]", directive, maxsplit=1)[0]
        if option in forbidden:
            raise SpecError(where, f"{option} is set by jobgate and cannot be overridden")


class BatchScheduler(ABC):
    """One scheduler's commands and parsers. Subclasses fill in the native-state map."""

    name: str
    template: str
    states: StateMap
    chunk_size = 500  # most ids in one status command
    unknown_id_codes: frozenset[int] = frozenset()  # exit codes that only mean "no such id"
    unknown_id_errors: tuple[str, ...] = ()
    transient_errors: tuple[str, ...] = ()

    def __init__(self, destination: Destination) -> None:
        self.destination = destination

    # -- the job script -------------------------------------------------------------------

    @abstractmethod
    def check(self, resources: Resources) -> None:
        """Refuse, with a SpecError naming the field, what this scheduler cannot express."""

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
            log.warning("%s: unknown job state %r: keeping the job as it is", self.name,
                        native_state)
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
    text = (result.stderr.strip() or result.stdout.strip()) or f"exit status {result.returncode}"
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[-3:])[:500]


def raw_directive_pattern(long_options: bool) -> str:
    """`--opt[=value]` / `-o [value]` (Slurm) or `-o [value]` (PBS), values without spaces."""
    if long_options:
        return rf"--?[A-Za-z][A-Za-z0-9-]*(?:[= ]{_RAW_VALUE})?"
    return rf"-[A-Za-z](?: {_RAW_VALUE})?"


# -- judging how a job ended (pure: the loop in batch.py gathers the evidence) ---------------

Unit = int | None  # an array index, or None for a whole (non-array) job
UNREADABLE = object()  # the sidecar could not be read just now (transport down): ask again
SidecarCode = int | None | object


def decide(said: NativeStatus | None, code: SidecarCode, acct: NativeStatus | None,
           answered: bool, expired: bool, stop_reason: str | None) -> NativeStatus | None:
    """How a unit that is no longer live in the queue ended, or None to ask again later.
    `said`: what the status command said (ended, maybe not how); `code`: the sidecar;
    `acct`: the accounting record; `answered`: accounting was asked (or there is none)."""
    known = code if isinstance(code, int) else None
    for source in (said, acct):
        if source is not None and source.phase == Phase.ENDED and source.outcome is not None:
            return source if known is None else replace(source, exit_code=known, signal=None)
    if code is UNREADABLE and not expired:
        return None
    if known == 0 or (known is not None and (answered or expired)):
        state = JobState.COMPLETED if known == 0 else JobState.FAILED
        return NativeStatus(Phase.ENDED, "exitcode", state, exit_code=known)
    if stop_reason and (said is not None or answered or expired):
        return NativeStatus(Phase.ENDED, "gone", JobState.CANCELLED)  # stopped before it ran
    if expired:
        return NativeStatus(Phase.ENDED, "gone", JobState.LOST,
                            reason="left the queue with no exit code and no accounting record")
    return None


def unit_status(st: NativeStatus | None, unit: Unit) -> NativeStatus | None:
    """The status of one unit: its task's, or the whole job's when tasks are not listed."""
    if st is None or unit is None or not st.tasks:
        return st
    return st.tasks.get(unit)


def unit_outcome(st: NativeStatus, stop_reason: str | None) -> Outcome:
    state, code = st.outcome or JobState.LOST, st.exit_code
    if state == JobState.COMPLETED and code not in (0, None):
        state = JobState.FAILED
    if stop_reason == "cancel" and state != JobState.COMPLETED:
        return Outcome(JobState.CANCELLED, code, "cancelled on request", st.host, st.native_state)
    if stop_reason == "timeout" and state != JobState.COMPLETED:
        return Outcome(JobState.TIMEOUT, code, "walltime exceeded", st.host, st.native_state)
    reason = st.reason
    if state == JobState.FAILED and not reason:
        reason = exit_reason(code, st.signal)
    elif state == JobState.CANCELLED and not reason:
        reason = "cancelled outside jobgate (by the scheduler or an administrator)"
    return Outcome(state, code, reason, st.host, st.native_state)


def array_outcome(done: dict[Unit, NativeStatus], stop_reason: str | None) -> Outcome:
    """One outcome for an array: it fails if any task did not complete, naming the tasks;
    every task's state and exit code go in `data`."""
    tasks = {u: unit_outcome(st, stop_reason) for u, st in sorted(done.items(), key=_by_unit)}
    data = {"tasks": {str(u): {"state": o.state.value, "exit_code": o.exit_code,
                               "reason": o.reason} for u, o in tasks.items()}}
    bad = [u for u, o in tasks.items() if o.state != JobState.COMPLETED]
    if not bad:
        return Outcome(JobState.COMPLETED, 0, data=data)
    states = {tasks[u].state for u in bad}
    if stop_reason:
        state = JobState.TIMEOUT if stop_reason == "timeout" else JobState.CANCELLED
    elif len(states) == 1 and len(bad) == len(tasks):
        state = states.pop()
    else:
        state = JobState.FAILED
    named = "; ".join(f"{u}: {tasks[u].reason}" for u in bad[:5])
    more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
    code = next((tasks[u].exit_code for u in bad if tasks[u].exit_code is not None), None)
    reason = f"{len(bad)} of {len(tasks)} array tasks did not complete ({named}{more})"
    return Outcome(state, code, reason, data=data)


def _by_unit(item: tuple[Unit, NativeStatus]) -> int:
    return -1 if item[0] is None else item[0]
