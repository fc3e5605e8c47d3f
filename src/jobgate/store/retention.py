"""Retention: finished jobs older than the configured age go, with everything kept of
them (events, labels, tasks, results, callbacks), a batch per transaction. Queue claims
stay: a job file already run must never be taken again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, select

from jobgate.states import FINAL_STATES
from jobgate.store.tables import callbacks, job_events, job_labels, job_results, job_tasks, jobs

if TYPE_CHECKING:
    from jobgate.store.store import Store

_OWNED = (job_events, job_labels, job_tasks, job_results, callbacks)


def retention_query(before: float, limit: int) -> Select[Any]:
    """Up to `limit` jobs that finished before `before`, oldest first. The state is checked
    too (an active job is never deleted, whatever its times say), as `state || ''`: the
    planner then walks ix_jobs_finished_at from the oldest rather than every final job
    by ix_jobs_state."""
    final = [s.value for s in FINAL_STATES]
    return (
        select(jobs.c.id, jobs.c.destination, jobs.c.run_dir)
        .where((jobs.c.state + "").in_(final), jobs.c.finished_at < before)
        .order_by(jobs.c.finished_at)
        .limit(limit)
    )


def delete_finished(store: Store, before: float, limit: int) -> list[tuple[str, str, str | None]]:
    """Up to `limit` jobs that finished before `before`, deleted: (id, destination,
    run directory) of each, for their run directories to go too."""
    with store.writing() as conn:
        rows = conn.execute(retention_query(before, limit)).all()
        ids = [r.id for r in rows]
        if ids:
            for table in _OWNED:
                conn.execute(delete(table).where(table.c.job_id.in_(ids)))
            conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
    return [(r.id, r.destination, r.run_dir) for r in rows]
