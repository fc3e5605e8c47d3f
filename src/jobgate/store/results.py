"""Queries of what jobs tell: the job_results table (what job types' parsers read from
finished jobs), and the running jobs a supervisor listens to and what they said."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import delete, insert, select

from jobgate.spec import JobEvent
from jobgate.states import JobState
from jobgate.store.changes import add_events
from jobgate.store.connections import Database
from jobgate.store.rows import event_of
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


class Listened(NamedTuple):
    """A running job as listening to it needs it: where its stdout and run directory are
    (the spec's two paths, from its JSON: no record built for each job of each pass)."""

    id: str
    destination: str
    run_dir: str | None
    directory: str | None
    stdout: str | None


class Watching(NamedTuple):
    """An adopted job as re-attaching it to a batch scheduler needs it (engine/recovery):
    read without building its record (100,000 records: seconds of a restart). `array`
    is its effective resources' array, from their JSON; None `resources` means none were
    stored (jobs before migration 0002): such a job needs its record."""

    id: str
    state: JobState
    native_id: str | None
    run_dir: str | None
    created_at: float
    stop_reason: str | None
    array: str | None
    resources: bool


def watching_of(db: Database, job_ids: list[str]) -> list[Watching]:
    """These jobs (ids as adopt returned them), in that order; unknown ones left out."""
    columns = (jobs.c.id, jobs.c.state, jobs.c.native_id, jobs.c.run_dir, jobs.c.created_at)
    query = select(*columns, jobs.c.stop_reason, jobs.c.resources).where(jobs.c.id.in_(job_ids))
    with db.reading() as conn:
        rows = {r.id: r for r in conn.execute(query)}
    found = []
    for job_id in job_ids:
        if (r := rows.get(job_id)) is not None:
            array = json.loads(r.resources).get("array") if r.resources else None
            state, at, stop = JobState(r.state), r.created_at, r.stop_reason
            found.append(
                Watching(r.id, state, r.native_id, r.run_dir, at, stop, array, bool(r.resources))
            )
    return found


def running_of(
    db: Database, destination: str, gateway_id: str, after: str = "", limit: int = 500
) -> list[Listened]:
    """The RUNNING jobs of a destination that this supervisor watches (what it listens
    to), a chunk in id order after `after`: a pass over 100,000 holds 500 at a time."""
    columns = (jobs.c.id, jobs.c.destination, jobs.c.run_dir, jobs.c.spec)
    query = (
        select(*columns)
        .where(
            jobs.c.destination == destination,
            jobs.c.state == JobState.RUNNING.value,
            jobs.c.gateway_id == gateway_id,
            jobs.c.id > after,
        )
        .order_by(jobs.c.id)
        .limit(limit)
    )
    with db.reading() as conn:
        rows = conn.execute(query).all()
    found = []
    for job_id, dest, run_dir, spec_json in rows:
        spec = json.loads(spec_json)
        found.append(Listened(job_id, dest, run_dir, spec.get("directory"), spec.get("stdout")))
    return found


def said_by(db: Database, job_ids: list[str]) -> dict[str, list[JobEvent]]:
    """Each job's own events (`job.*`), oldest first: for many jobs, one query."""
    query = select(job_events).where(
        job_events.c.job_id.in_(job_ids), job_events.c.type.like("job.%")
    )
    found: dict[str, list[JobEvent]] = {}
    with db.reading() as conn:
        for row in conn.execute(query.order_by(job_events.c.job_id, job_events.c.seq)):
            found.setdefault(row.job_id, []).append(event_of(row))
    return found
