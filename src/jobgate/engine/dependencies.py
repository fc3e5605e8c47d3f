"""Dependencies, evaluated by the gateway from the store (so they hold across
destinations and restarts): a job that waits for others is stored NEW; each supervisor
pass looks at the waiting jobs and the states of what they wait for, in two queries, and
moves each to QUEUED once its conditions hold, or ends it REJECTED with
DEPENDENCY_NEVER_SATISFIED once one can no longer hold (never left waiting forever)."""

from __future__ import annotations

import time

from jobgate.policies import Dependencies
from jobgate.spec import JobRecord
from jobgate.states import JobState, ReasonCode
from jobgate.store import AsyncStore, Transition

BATCH = 500  # waiting jobs looked at per pass
_NEW = frozenset({JobState.NEW})


def judge(deps: Dependencies, found: dict[str, JobRecord]) -> tuple[bool | None, str]:
    """True: every condition holds; False (with why): one never will; None: wait."""
    waiting = False
    for kind, ids in (
        ("afterok", deps.afterok),
        ("afternotok", deps.afternotok),
        ("afterany", deps.afterany),
        ("after", deps.after),
    ):
        for job_id in ids:
            dep = found.get(job_id)
            if dep is None:
                return False, f"{kind}: job {job_id} is gone"
            final = dep.state.final
            if kind == "afterok" and final and dep.state != JobState.COMPLETED:
                return False, f"afterok: job {job_id} ended {dep.state.value}"
            if kind == "afternotok" and dep.state == JobState.COMPLETED:
                return False, f"afternotok: job {job_id} ended COMPLETED"
            started = dep.started_at is not None or final
            waiting |= not (started if kind == "after" else final)
    return (None, "") if waiting else (True, "")


async def settle(db: AsyncStore) -> list[Transition]:
    """The moves due for jobs waiting on others (not yet applied)."""
    waiting = await db.read(db.sync.list_jobs, state=[JobState.NEW], limit=BATCH)
    waiting = [j for j in waiting if j.spec.depends_on is not None]
    if not waiting:
        return []
    ids = sorted(set().union(*(j.spec.depends_on.ids() for j in waiting if j.spec.depends_on)))
    found = {r.id: r for r in await db.read(db.sync.get_many, ids) if r is not None}
    now, moves = time.time(), []
    for job in waiting:
        assert job.spec.depends_on is not None
        verdict, why = judge(job.spec.depends_on, found)
        if verdict:
            moves.append(
                Transition(
                    job.id,
                    JobState.QUEUED,
                    "dependencies met",
                    fields={"queued_at": now},
                    expect=_NEW,
                )
            )
        elif verdict is False:
            fields = {"reason": why, "reason_code": ReasonCode.DEPENDENCY_NEVER_SATISFIED.value}
            moves.append(Transition(job.id, JobState.REJECTED, why, fields=fields, expect=_NEW))
    return moves
