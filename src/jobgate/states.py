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
