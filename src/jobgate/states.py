"""Job states and the one transition table every state change is checked against."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    NEW = "NEW"
    QUEUED = "QUEUED"
    STAGING_IN = "STAGING_IN"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    STAGING_OUT = "STAGING_OUT"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    REJECTED = "REJECTED"
    LOST = "LOST"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES

    @property
    def active(self) -> bool:
        """Counts against a destination's capacity."""
        return self in ACTIVE_STATES


FINAL_STATES = frozenset(
    {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.TIMEOUT,
        JobState.REJECTED,
        JobState.LOST,
    }
)
ACTIVE_STATES = frozenset(
    {JobState.STAGING_IN, JobState.SUBMITTED, JobState.RUNNING, JobState.STAGING_OUT}
)

S = JobState
# Shortcuts past a state (STAGING_IN -> RUNNING for a job started at once, RUNNING ->
# COMPLETED with nothing to stage out, SUBMITTED -> an end state for a job that
# finished between two polls) save a commit per job and lose no information.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.NEW: frozenset({S.QUEUED, S.REJECTED, S.CANCELLED}),
    S.QUEUED: frozenset({S.STAGING_IN, S.SUBMITTED, S.FAILED, S.CANCELLED}),
    # STAGING_IN -> QUEUED: the scheduler could not be reached; the job waits its turn again.
    S.STAGING_IN: frozenset({S.QUEUED, S.SUBMITTED, S.RUNNING, S.FAILED, S.CANCELLED}),
    S.SUBMITTED: frozenset(
        {S.RUNNING, S.STAGING_OUT, S.COMPLETED, S.FAILED, S.CANCELLED, S.TIMEOUT, S.LOST}
    ),
    S.RUNNING: frozenset({S.STAGING_OUT, S.COMPLETED, S.FAILED, S.CANCELLED, S.TIMEOUT, S.LOST}),
    S.STAGING_OUT: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.TIMEOUT}),
}
for _final in FINAL_STATES:
    TRANSITIONS[_final] = frozenset()


class StopReason(StrEnum):
    """Why the gateway stopped a job (stored: a restarted gateway still knows a job it
    killed was not a failure)."""

    CANCEL = "cancel"
    TIMEOUT = "timeout"

    @property
    def state(self) -> JobState:
        """The end state of a job stopped for this reason (unless it completed first)."""
        return JobState.CANCELLED if self is StopReason.CANCEL else JobState.TIMEOUT

    @property
    def reason(self) -> str:
        return "cancelled on request" if self is StopReason.CANCEL else "walltime exceeded"


def sources(target: JobState) -> frozenset[JobState]:
    """Every state from which `target` may be reached."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def can_move(source: JobState, target: JobState) -> bool:
    return target in TRANSITIONS[source]


TASK_EVENT = "job.task"  # an array task's state: data {"index", "state", "exit_code"}


class ReasonCode(StrEnum):
    """Why a job ended, for programs (the reason text is for people): retry it, or fix it.
    None for a job that completed."""

    EXIT_CODE = "EXIT_CODE"  # the job's command failed: its exit code says how
    TIMEOUT = "TIMEOUT"  # walltime (or Slurm's --deadline) reached
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"  # a node failed (or failed to boot) under it
    PREEMPTED = "PREEMPTED"
    CANCELLED = "CANCELLED"  # on request, or by the scheduler or an administrator
    SUBMIT_ERROR = "SUBMIT_ERROR"  # it never reached the scheduler
    STAGING_ERROR = "STAGING_ERROR"  # its files could not be brought back
    LOST = "LOST"  # the scheduler forgot it, with no exit code and no accounting
    REJECTED = "REJECTED"  # refused before it ran (a site's hook, a queue's validator)
    DEPENDENCY_NEVER_SATISFIED = "DEPENDENCY_NEVER_SATISFIED"


# Schedulers' end states that say more than FAILED (Slurm's; PBS's exit statuses map here).
NATIVE_CODES = {
    "OUT_OF_MEMORY": ReasonCode.OUT_OF_MEMORY,
    "NODE_FAIL": ReasonCode.NODE_FAIL,
    "BOOT_FAIL": ReasonCode.NODE_FAIL,
    "PREEMPTED": ReasonCode.PREEMPTED,
    "DEADLINE": ReasonCode.TIMEOUT,
}
_BY_STATE = {
    JobState.TIMEOUT: ReasonCode.TIMEOUT,
    JobState.CANCELLED: ReasonCode.CANCELLED,
    JobState.REJECTED: ReasonCode.REJECTED,
    JobState.LOST: ReasonCode.LOST,
}


def reason_code(state: JobState, native_state: str | None, exit_code: int | None) -> str | None:
    """The code of an end the caller did not name one for."""
    if state == JobState.COMPLETED:
        return None
    if native_state in NATIVE_CODES:
        return NATIVE_CODES[native_state].value
    if state in _BY_STATE:
        return _BY_STATE[state].value
    return ReasonCode.EXIT_CODE.value if exit_code is not None else ReasonCode.SUBMIT_ERROR.value
