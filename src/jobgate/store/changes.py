"""State changes, the hot path: guarded UPDATEs from statements built once per shape,
event rows inserted in one executemany per batch, and outbox rows only for jobs that
have a callback URL (one lookup per batch). Profiling showed SQLAlchemy rebuilding
statements per call cost 3x the database work itself."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Connection, TextClause, insert, literal, select, text

from jobgate.states import FINAL_STATES, JobState, sources
from jobgate.store.tables import callbacks, job_events, jobs

TIME_COLUMN = {
    JobState.QUEUED: "queued_at",
    JobState.SUBMITTED: "submitted_at",
    JobState.RUNNING: "started_at",
}
STATE_NAMES = frozenset(s.value for s in JobState)


@dataclass
class Transition:
    """One guarded state change: applied only if the job is in `expect` (default: the
    states the transition table allows to reach `to`)."""

    job_id: str
    to: JobState
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    expect: frozenset[JobState] | None = None


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@cache
def _update_sql(columns: tuple[str, ...], expect: frozenset[JobState]) -> TextClause:
    # Column names are checked against the table and states come from the enum, so
    # nothing user-given reaches the SQL text; values are bound parameters.
    unknown = set(columns) - set(jobs.c.keys())
    if unknown:
        raise ValueError(f"not columns of jobs: {sorted(unknown)}")
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    states = ", ".join(f"'{s.value}'" for s in sorted(expect))
    return text(f"UPDATE jobs SET {sets} WHERE id = :_id AND state IN ({states})")  # noqa: S608


def apply(conn: Connection, changes: Sequence[Transition], now: float) -> list[bool]:
    """Apply each guarded change in order; write the events of those that took."""
    took, events = [], []
    for t in changes:
        values: dict[str, Any] = {"state": t.to.value, "updated_at": now, **t.fields}
        if "backend_data" in values:
            values["backend_data"] = dumps(values["backend_data"])
        if t.to in TIME_COLUMN:
            values.setdefault(TIME_COLUMN[t.to], now)
        if t.to in FINAL_STATES:
            values.setdefault("finished_at", now)
        expect = t.expect if t.expect is not None else sources(t.to)
        sql = _update_sql(tuple(sorted(values)), expect)
        ok = conn.execute(sql, {**values, "_id": t.job_id}).rowcount == 1
        took.append(ok)
        if ok:
            events.append((t.job_id, t.to.value, t.message, t.data))
    add_events(conn, events, now)
    return took


def add_events(
    conn: Connection, events: Sequence[tuple[str, str, str, dict[str, Any]]], now: float
) -> None:
    """Insert event rows; a state change of a job with a callback URL also gets its
    outbox row, in this same transaction."""
    if not events:
        return
    ids = {e[0] for e in events if e[1] in STATE_NAMES}
    with_callback = set()
    if ids:
        query = select(jobs.c.id).where(jobs.c.id.in_(ids), jobs.c.callback_url.is_not(None))
        with_callback = set(conn.execute(query).scalars())
    plain = []
    for job_id, type_, message, data in events:
        row = {
            "job_id": job_id,
            "time": now,
            "type": type_,
            "message": message,
            "data": dumps(data),
        }
        if job_id in with_callback and type_ in STATE_NAMES:
            seq = conn.execute(insert(job_events), row).inserted_primary_key[0]  # type: ignore[index]
            _outbox(conn, job_id, seq, now)
        else:
            plain.append(row)
    if plain:
        conn.execute(insert(job_events), plain)


def _outbox(conn: Connection, job_id: str, seq: int, now: float) -> None:
    conn.execute(
        insert(callbacks).from_select(
            ["job_id", "event_seq", "url", "next_attempt_at", "created_at"],
            select(jobs.c.id, literal(seq), jobs.c.callback_url, literal(now), literal(now)).where(
                jobs.c.id == job_id
            ),
        )
    )
