"""Queries of what jobs tell: the job_results table (what job types' parsers read from
finished jobs), and the running jobs a supervisor listens to and what they said."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select

from jobgate.spec import JobEvent, JobRecord
from jobgate.states import JobState
from jobgate.store.changes import add_events
from jobgate.store.connections import Database
from jobgate.store.rows import event_of, record_of
from jobgate.store.tables import job_events, job_results, jobs


@dataclass(frozen=True)
class Result:
    job_id: str
    owner: str
    job_type: str
    data: dict[str, Any]
    error: str | None
    created_at: float


def put_result(
    db: Database,
    job_id: str,
    owner: str,
    job_type: str,
    data: dict[str, Any],
    error: str | None,
    message: str,
) -> None:
    """The job's result (replacing one parsed before: a parser may run again), and its
    `results` event saying so, in one transaction."""
    now = time.time()
    row = {
        "job_id": job_id,
        "owner": owner,
        "job_type": job_type,
        "data": json.dumps(data, default=str),
        "error": error,
        "created_at": now,
    }
    with db.writing() as conn:
        conn.execute(delete(job_results).where(job_results.c.job_id == job_id))
        conn.execute(insert(job_results).values(row))
        add_events(conn, [(job_id, "results", message, {"error": error})], now)


def get_result(db: Database, job_id: str) -> Result | None:
    with db.reading() as conn:
        row = conn.execute(select(job_results).where(job_results.c.job_id == job_id)).first()
    return None if row is None else _result(row)


def list_results(
    db: Database,
    *,
    job_type: str | None = None,
    owner: str | None = None,
    job_ids: list[str] | None = None,
    before: str | None = None,
    limit: int = 100,
) -> list[Result]:
    """Newest first, a keyset page: results of jobs older than `before`."""
    query = select(job_results).order_by(job_results.c.job_id.desc()).limit(limit)
    if job_type is not None:
        query = query.where(job_results.c.job_type == job_type)
    if owner is not None:
        query = query.where(job_results.c.owner == owner)
    if job_ids is not None:
        query = query.where(job_results.c.job_id.in_(job_ids))
    if before is not None:
        query = query.where(job_results.c.job_id < before)
    with db.reading() as conn:
        return [_result(r) for r in conn.execute(query).all()]


def _result(row: Any) -> Result:
    return Result(
        row.job_id, row.owner, row.job_type, json.loads(row.data), row.error, row.created_at
    )


def running_of(db: Database, destination: str, gateway_id: str) -> list[JobRecord]:
    """The RUNNING jobs of a destination that this supervisor watches (what it listens to)."""
    query = select(jobs).where(
        jobs.c.destination == destination,
        jobs.c.state == JobState.RUNNING.value,
        jobs.c.gateway_id == gateway_id,
    )
    with db.reading() as conn:
        return [record_of(r) for r in conn.execute(query).all()]


def last_said(db: Database, job_id: str, kinds: tuple[str, ...] = ()) -> list[JobEvent]:
    """The job's own events (`job.*`), oldest first; `kinds`: only these types."""
    query = select(job_events).where(job_events.c.job_id == job_id, job_events.c.type.like("job.%"))
    if kinds:
        query = query.where(job_events.c.type.in_(kinds))
    with db.reading() as conn:
        return [event_of(r) for r in conn.execute(query.order_by(job_events.c.seq)).all()]
