"""The transition table: final states are final; every live state can be cancelled."""

from __future__ import annotations

from jobgate.states import ACTIVE_STATES, FINAL_STATES, TRANSITIONS, JobState, can_move, sources


def test_final_states_never_change() -> None:
    for state in FINAL_STATES:
        assert TRANSITIONS[state] == frozenset()
        assert state.final


def test_every_live_state_can_be_cancelled() -> None:
    for state in JobState:
        if not state.final:
            assert can_move(state, JobState.CANCELLED), state


def test_completed_only_after_the_job_ran_or_was_submitted() -> None:
    assert sources(JobState.COMPLETED) == {
        JobState.SUBMITTED,
        JobState.RUNNING,
        JobState.STAGING_OUT,
    }


def test_timeout_and_lost_only_once_handed_over() -> None:
    assert sources(JobState.TIMEOUT) <= {JobState.SUBMITTED, JobState.RUNNING, JobState.STAGING_OUT}
    assert sources(JobState.LOST) == {JobState.SUBMITTED, JobState.RUNNING}


def test_back_to_queued_only_before_the_job_is_handed_over() -> None:
    assert sources(JobState.QUEUED) == {JobState.NEW, JobState.STAGING_IN}


def test_active_states_count_against_capacity() -> None:
    assert {
        JobState.STAGING_IN,
        JobState.SUBMITTED,
        JobState.RUNNING,
        JobState.STAGING_OUT,
    } == ACTIVE_STATES
    assert not ACTIVE_STATES & FINAL_STATES
