"""The status model of batch jobs and how one that ended is judged: what the status command
said, the job's exit-code sidecar, and accounting, in that order; after a grace period with
none of them, LOST. Never success by absence. Pure: `BatchBackend` gathers the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from jobgate.backends.outcome import Outcome, ended
from jobgate.spec import JobRecord
from jobgate.states import JobState, StopReason


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


SIDECAR_GRACE_S = 10.0  # a stopped job's wrapper writes its sidecar within this, or never
Unit = int | None  # an array index, or None for a whole (non-array) job
UNREADABLE = object()  # the sidecar could not be read just now (transport down): ask again
SidecarCode = int | None | object


def decide(
    said: NativeStatus | None,
    code: SidecarCode,
    acct: NativeStatus | None,
    answered: bool,
    expired: bool,
    stop_reason: StopReason | None,
    sidecar_due: bool = False,
) -> NativeStatus | None:
    """How a unit that is no longer live in the queue ended, or None to ask again later.
    `said`: what the status command said (ended, maybe not how); `code`: the sidecar;
    `acct`: the accounting record; `answered`: accounting was asked (or there is none);
    `sidecar_due`: a job that ran was stopped, and its wrapper (which records the
    command's code even on SIGTERM) may not have written the sidecar yet."""
    known = code if isinstance(code, int) else None
    for source in (said, acct):
        if source is not None and source.phase == Phase.ENDED and source.outcome is not None:
            if known is None and sidecar_due:
                return None  # its exit code is a moment away: keep it, ask again
            return source if known is None else replace(source, exit_code=known, signal=None)
    if code is UNREADABLE and not expired:
        return None
    if known == 0 or (known is not None and (answered or expired)):
        state = JobState.COMPLETED if known == 0 else JobState.FAILED
        return NativeStatus(Phase.ENDED, "exitcode", state, exit_code=known)
    if stop_reason and (said is not None or answered or expired):
        return NativeStatus(Phase.ENDED, "gone", JobState.CANCELLED)  # stopped before it ran
    if expired:
        return NativeStatus(
            Phase.ENDED,
            "gone",
            JobState.LOST,
            reason="left the queue with no exit code and no accounting record",
        )
    return None


@dataclass(eq=False)
class Tracked:
    """A job the polling loop watches, and what is known of it so far, per unit."""

    job: JobRecord
    native_id: str
    units: list[Unit]  # its array indices, or [None]
    running: bool = False
    stop_reason: StopReason | None = None
    host: str | None = None
    pending_reason: str | None = None  # the scheduler's, as last reported
    told: dict[Unit, JobState] = field(default_factory=dict)  # array tasks' states, as said
    missing_since: float | None = None
    done: dict[Unit, NativeStatus] = field(default_factory=dict)  # final: never asked again
    said: dict[Unit, NativeStatus] = field(default_factory=dict)  # ended; how or code unknown

    def merge(self, st: NativeStatus | None, now: float) -> list[Unit]:
        """Take in the status command's answer; returns the units that left the queue or
        ended without an exit code, for the sidecar and then accounting to decide."""
        unresolved = []
        for unit in self.units:
            if unit in self.done:
                continue
            us = unit_status(st, unit)
            if us is not None and us.phase == Phase.ENDED:
                if us.outcome is not None and (
                    us.exit_code is not None or us.outcome in (JobState.COMPLETED, JobState.LOST)
                ):
                    self.done[unit] = us
                    continue
                self.said[unit] = us
            if us is None or us.phase == Phase.ENDED:
                unresolved.append(unit)
            elif us.phase == Phase.RUNNING and not self.running:
                self.running, self.host = True, us.host
        self.missing_since = (self.missing_since or now) if unresolved else None
        return unresolved

    def task_changes(self, st: NativeStatus | None) -> list[tuple[int, JobState, NativeStatus]]:
        """An array's tasks whose state changed since last said: running, or how they ended."""
        changes = []
        for unit in self.units:
            done = self.done.get(unit)
            us = done or unit_status(st, unit)
            if unit is None or us is None:
                continue
            state = done.outcome if done is not None else None
            if done is None and us.phase == Phase.RUNNING:
                state = JobState.RUNNING
            if state is not None and self.told.get(unit) != state:
                self.told[unit] = state
                changes.append((unit, state, us))
        return changes

    def needs_accounting(self, unit: Unit, code: SidecarCode) -> bool:
        said = self.said.get(unit)
        return (said is None or said.outcome is None) and code not in (0, UNREADABLE)

    def decide(
        self,
        unit: Unit,
        code: SidecarCode,
        acct: NativeStatus | None,
        answered: bool,
        now: float,
        grace_s: float,
    ) -> None:
        waited = now - (self.missing_since or now)
        due = self.stop_reason is not None and self.running and waited < SIDECAR_GRACE_S
        said = self.said.get(unit)
        decided = decide(said, code, acct, answered, waited >= grace_s, self.stop_reason, due)
        if decided is not None:
            self.done[unit] = decided

    @property
    def finished(self) -> bool:
        return all(u in self.done for u in self.units)

    def outcome(self) -> Outcome:
        if self.units == [None]:
            return unit_outcome(self.done[None], self.stop_reason)
        return array_outcome(self.done, self.stop_reason)


def unit_status(st: NativeStatus | None, unit: Unit) -> NativeStatus | None:
    """The status of one unit: its task's, or the whole job's when tasks are not listed."""
    if st is None or unit is None or not st.tasks:
        return st
    return st.tasks.get(unit)


def unit_outcome(st: NativeStatus, stop: StopReason | None) -> Outcome:
    return ended(
        st.exit_code,
        stop,
        state=st.outcome or JobState.LOST,
        signal=st.signal,
        reason=st.reason,
        host=st.host,
        native_state=st.native_state,
    )


def array_outcome(done: dict[Unit, NativeStatus], stop_reason: StopReason | None) -> Outcome:
    """One outcome for an array: it fails if any task did not complete, naming the tasks;
    every task's state and exit code go in `data`."""
    tasks = {u: unit_outcome(st, stop_reason) for u, st in sorted(done.items(), key=_by_unit)}
    data = {
        "tasks": {
            str(u): {"state": o.state.value, "exit_code": o.exit_code, "reason": o.reason}
            for u, o in tasks.items()
        }
    }
    bad = [u for u, o in tasks.items() if o.state != JobState.COMPLETED]
    if not bad:
        return Outcome(JobState.COMPLETED, 0, data=data)
    states = {tasks[u].state for u in bad}
    if stop_reason:
        state = stop_reason.state
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
