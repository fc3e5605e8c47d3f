"""The status model of batch jobs and how one that ended is judged: what the status command
said, the job's exit-code sidecar, and accounting, in that order; after a grace period with
none of them, LOST. Never success by absence. Pure: `BatchBackend` gathers the evidence.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import NamedTuple

from jobgate.backends.outcome import Outcome, ended
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


ONE_UNIT: tuple[Unit, ...] = (None,)  # a whole (non-array) job


class Known(NamedTuple):
    """What watching a job needs of it: from its record, or (a restart re-attaching
    100,000 jobs) from a few of its columns, no record built (engine/recovery.py)."""

    job_id: str
    native_id: str | None
    run_dir: str | None
    created_at: float
    array: str | None  # its effective resources' array
    running: bool
    stop_reason: StopReason | None


class Tracked:
    """A job the polling loop watches, and what is known of it so far, per unit. No job
    record is kept: its id, native id, run directory (None: the destination's default)
    and age are all that polling needs, so 100,000 watched jobs cost tens of MB, not a
    GB. What is known per unit lives in dicts made on first use (most jobs are running,
    with nothing to remember yet)."""

    __slots__ = (
        "created_at",
        "done",
        "host",
        "job_id",
        "missing_since",
        "native_id",
        "pending_reason",
        "run_dir",
        "running",
        "said",
        "stop_reason",
        "told",
        "units",
    )

    def __init__(
        self,
        job_id: str,
        native_id: str,
        *,
        run_dir: str | None = None,
        created_at: float = 0.0,
        units: tuple[Unit, ...] = ONE_UNIT,
        running: bool = False,
        stop_reason: StopReason | None = None,
    ) -> None:
        self.job_id = sys.intern(job_id)  # shared with the listener's and the poller's keys
        self.native_id = native_id
        self.run_dir = run_dir
        self.created_at = created_at
        self.units = units
        self.running = running
        self.stop_reason = stop_reason
        self.host: str | None = None
        self.pending_reason: str | None = None  # the scheduler's, as last reported
        self.missing_since: float | None = None
        self.told: dict[Unit, JobState] | None = None  # array tasks' states, as said
        self.done: dict[Unit, NativeStatus] | None = None  # final: never asked again
        self.said: dict[Unit, NativeStatus] | None = None  # ended; how or code unknown

    def _done(self, unit: Unit, st: NativeStatus) -> None:
        if self.done is None:
            self.done = {}
        self.done[unit] = st

    def is_done(self, unit: Unit) -> bool:
        return self.done is not None and unit in self.done

    def merge(self, st: NativeStatus | None, now: float) -> list[Unit]:
        """Take in the status command's answer; returns the units that left the queue or
        ended without an exit code, for the sidecar and then accounting to decide."""
        unresolved = []
        for unit in self.units:
            if self.is_done(unit):
                continue
            us = unit_status(st, unit)
            if us is not None and us.phase == Phase.ENDED:
                if us.outcome is not None and (
                    us.exit_code is not None or us.outcome in (JobState.COMPLETED, JobState.LOST)
                ):
                    self._done(unit, us)
                    continue
                if self.said is None:
                    self.said = {}
                self.said[unit] = us
            if us is None or us.phase == Phase.ENDED:
                unresolved.append(unit)
            elif us.phase == Phase.RUNNING and not self.running:
                # one string per host, not per job (100,000 jobs share a few nodes)
                self.running, self.host = True, sys.intern(us.host) if us.host else None
        self.missing_since = (self.missing_since or now) if unresolved else None
        return unresolved

    def task_changes(self, st: NativeStatus | None) -> list[tuple[int, JobState, NativeStatus]]:
        """An array's tasks whose state changed since last said: running, or how they ended."""
        changes = []
        for unit in self.units:
            done = self.done.get(unit) if self.done is not None else None
            us = done or unit_status(st, unit)
            if unit is None or us is None:
                continue
            state = done.outcome if done is not None else None
            if done is None and us.phase == Phase.RUNNING:
                state = JobState.RUNNING
            if state is not None and (self.told or {}).get(unit) != state:
                if self.told is None:
                    self.told = {}
                self.told[unit] = state
                changes.append((unit, state, us))
        return changes

    def needs_accounting(self, unit: Unit, code: SidecarCode) -> bool:
        said = self.said.get(unit) if self.said is not None else None
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
        said = self.said.get(unit) if self.said is not None else None
        decided = decide(said, code, acct, answered, waited >= grace_s, self.stop_reason, due)
        if decided is not None:
            self._done(unit, decided)

    @property
    def finished(self) -> bool:
        return all(self.is_done(u) for u in self.units)

    def outcome(self) -> Outcome:
        done = self.done or {}
        if self.units == ONE_UNIT:
            return unit_outcome(done[None], self.stop_reason)
        return array_outcome(done, self.stop_reason)


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
