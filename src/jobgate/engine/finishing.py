"""A job's end once it left its scheduler: its output files collected onto the gateway's
host (through transient errors, backing off: the outputs of a job that is done must not
be lost to a hiccup), its results parsed, then its end state (or its next attempt)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from jobgate.backends.outcome import Outcome
from jobgate.errors import JobgateError, TransientError
from jobgate.spec import JobRecord
from jobgate.states import JobState, ReasonCode
from jobgate.store import Transition

if TYPE_CHECKING:
    from jobgate.engine.supervisor import Supervisor

S = JobState
RETRY_MAX_S = 60.0


async def stage_out(
    sup: Supervisor, job: JobRecord, outcome: Outcome, values: dict[str, Any] | None = None
) -> None:
    """Collect the outputs, through transient errors (backing off: the outputs of a job
    that is done must not be lost to a hiccup), then the end state."""
    backend, delay, code = sup.backends.get(job.destination), 1.0, None
    while True:
        try:
            missing = await backend.stage_out(job)
            break
        except TransientError as exc:
            if delay == 1.0:
                sup.note(job.id, "stage_out_retry", f"stage-out: {exc}; retrying")
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
        except JobgateError as exc:
            missing, outcome = [], Outcome(S.FAILED, outcome.exit_code, f"stage out: {exc}")
            code = ReasonCode.STAGING_ERROR.value
            break
    if sup.finishing is not None:
        await sup.finishing(job, values or {})
    state, reason = outcome.state, outcome.reason
    if missing:
        listed = ", ".join(missing)
        sup.note(job.id, "warning", f"missing output files: {listed}")
        if state == S.COMPLETED:
            state, reason = S.FAILED, f"missing output files: {listed}"
            code = ReasonCode.STAGING_ERROR.value
    fields = outcome.fields(reason, code)
    sup.end(Transition(job.id, state, reason or "", fields=fields), job)
