"""Retries: a job whose end has a reason code its policy names (its own `retry`, else its
destination's) runs again, up to `max` more times, after `backoff_s`. The attempt that
ended is recorded in the event that queues the next (attempt number, native id, state,
reason code, reason, exit code); each attempt runs in a run directory of its own, so
nothing of one is read as the next's. The job's final state is its last attempt's."""

from __future__ import annotations

import time
from typing import Any

from jobgate.config import Destination
from jobgate.spec import JobRecord
from jobgate.states import ACTIVE_STATES, JobState, reason_code
from jobgate.store import Transition

# What an attempt leaves that the next must not inherit.
_RESET: dict[str, Any] = {
    "native_id": None, "exit_code": None, "host": None, "submitted_at": None,
    "started_at": None, "finished_at": None, "stop_reason": None, "backend_data": {},
    "gateway_id": None, "pending_reason": None, "reason_code": None, "native_state": None,
}  # fmt: skip


def retry(
    job: JobRecord, dest: Destination, state: JobState, fields: dict[str, Any]
) -> Transition | None:
    """The move that runs the job again instead of ending it `state`, or None."""
    policy = job.spec.retry or dest.retry
    if policy is None or state == JobState.COMPLETED or job.stop_reason is not None:
        return None  # a job the gateway stopped (cancel, walltime) ends as asked
    code = fields.get("reason_code") or reason_code(
        state, fields.get("native_state"), fields.get("exit_code")
    )
    if code not in policy.on or job.attempt > policy.max:
        return None
    now = time.time()
    ended = {
        "attempt": job.attempt,
        "native_id": job.native_id,
        "state": state.value,
        "reason_code": code,
        "reason": fields.get("reason"),
        "exit_code": fields.get("exit_code"),
    }
    base = job.run_dir.rsplit("~", 1)[0] if job.run_dir else None
    values = {
        **_RESET,
        "attempt": job.attempt + 1,
        "not_before": now + policy.backoff_s if policy.backoff_s else None,
        "queued_at": now,
        "reason": f"attempt {job.attempt} ended {code}: running it again",
        "run_dir": f"{base}~{job.attempt + 1}" if base else None,
    }
    message = (
        f"attempt {job.attempt} ended {state.value} ({code}); attempt {job.attempt + 1} queued"
    )
    return Transition(job.id, JobState.QUEUED, message, ended, values, ACTIVE_STATES)
