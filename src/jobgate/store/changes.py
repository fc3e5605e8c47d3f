"""The hot path: state changes, events, new jobs, claims and reads by id, as SQL written
once and run with `exec_driver_sql` (the driver's own statement cache, none of SQLAlchemy's
per-call compiling: profiling showed that costing several times the database's work).

Outbox rows for callbacks are added by one set-based statement per batch, in the same
transaction as the state changes they announce.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Float, Integer, Row, update

from jobgate.states import ACTIVE_STATES, FINAL_STATES, JobState, reason_code, sources
from jobgate.store.tables import job_events, job_labels, jobs

TABLES = {t.name: t for t in (jobs, job_events, job_labels)}

TIME_COLUMN = {
    JobState.QUEUED: "queued_at",
    JobState.SUBMITTED: "submitted_at",
    JobState.RUNNING: "started_at",
}
STATE_NAMES = frozenset(s.value for s in JobState)
_COLUMNS = frozenset(jobs.c.keys())


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


def _states(states: Sequence[JobState] | frozenset[JobState]) -> str:
    return ", ".join(f"'{s.value}'" for s in sorted(states))


@cache
def sql(dialect: str, statement: str) -> str:
    """`statement` in the driver's parameter style (written with :name)."""
    if dialect == "sqlite":
        return statement
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", statement)  # psycopg's pyformat


def run(conn: Connection, statement: str, params: Any = None) -> Any:
    return conn.exec_driver_sql(sql(conn.dialect.name, statement), params or {})


@cache
def _update(columns: tuple[str, ...], expect: frozenset[JobState]) -> str:
    # Columns are checked against the table and states come from the enum, so nothing
    # user-given reaches the SQL text; values are bound parameters.
    unknown = set(columns) - _COLUMNS
    if unknown:
        raise ValueError(f"not columns of jobs: {sorted(unknown)}")
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    return f"UPDATE jobs SET {sets} WHERE id = :_id AND state IN ({_states(expect)})"  # noqa: S608


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
            code = reason_code(t.to, values.get("native_state"), values.get("exit_code"))
            values.setdefault("reason_code", code)
            values.setdefault("pending_reason", None)
        expect = t.expect if t.expect is not None else sources(t.to)
        ok = run(conn, _update(tuple(sorted(values)), expect), {**values, "_id": t.job_id})
        took.append(ok.rowcount == 1)
        if ok.rowcount == 1:
            events.append((t.job_id, t.to.value, t.message, t.data))
    add_events(conn, events, now)
    return took


def _pg_array(column: Column[Any]) -> str:
    kind = type(column.type)
    return {Float: "float8[]", Integer: "int4[]", Boolean: "bool[]"}.get(kind, "text[]")


@cache
def _insert(dialect: str, table: str, columns: tuple[str, ...], prefix: str = "") -> str:
    """One INSERT for many rows: on PostgreSQL from arrays (one statement to parse, bind and
    execute, not one per row); SQLite runs in-process, so executemany costs it nothing.
    Parameters are named `prefix + column`."""
    unknown = set(columns) - set(TABLES[table].c.keys())
    if unknown:  # checked: no user text reaches the SQL
        raise ValueError(f"not columns of {table}: {sorted(unknown)}")
    names = ", ".join(columns)
    if dialect == "sqlite":
        values = ", ".join(f":{prefix}{c}" for c in columns)
        return f"INSERT INTO {table} ({names}) VALUES ({values})"  # noqa: S608
    arrays = ", ".join(f":{prefix}{c}::{_pg_array(TABLES[table].c[c])}" for c in columns)
    return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608


def insert_rows(conn: Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Rows with the same keys, columns of `table`."""
    if not rows:
        return
    columns = tuple(rows[0])
    statement = _insert(conn.dialect.name, table, columns)
    if conn.dialect.name == "sqlite":
        run(conn, statement, rows)
    else:
        run(conn, statement, _arrays(rows))


def _arrays(rows: Sequence[dict[str, Any]], prefix: str = "") -> dict[str, list[Any]]:
    return {prefix + c: [r[c] for r in rows] for c in rows[0]}


def _in_ids(conn: Connection, column: str, ids: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """`column IN ids` with one statement text for any number of ids (drivers cache
    prepared statements by text)."""
    if conn.dialect.name == "sqlite":
        where = f"{column} IN (SELECT value FROM json_each(:ids))"  # noqa: S608 - ours
        return where, {"ids": dumps(list(ids))}
    return f"{column} = ANY(:ids)", {"ids": list(ids)}


# Every state event of these jobs not yet in the outbox (only jobs with a callback URL).
_OUTBOX = (
    "INSERT INTO callbacks (job_id, event_seq, url, state, attempts, next_attempt_at, "  # noqa: S608
    "created_at) SELECT e.job_id, e.seq, j.callback_url, 'pending', 0, :now, :now "
    "FROM job_events e JOIN jobs j ON j.id = e.job_id "
    "WHERE {ids} AND j.callback_url IS NOT NULL "
    f"AND (e.type IN ({_states(list(JobState))}) OR e.type LIKE :said) "
    "AND e.seq > (SELECT coalesce(max(c.event_seq), 0) FROM callbacks c "
    "WHERE c.job_id = e.job_id)"
)


Events = Sequence[tuple[str, str, str, dict[str, Any]]]  # (job id, type, message, data)


def _event_rows(events: Events, now: float) -> list[dict[str, Any]]:
    return [
        {"job_id": j, "time": now, "type": t, "message": m, "data": dumps(d)}
        for j, t, m, d in events
    ]


def add_events(conn: Connection, events: Events, now: float) -> None:
    """Insert event rows; state changes (and what jobs say, `job.*`) of jobs with a
    callback URL get outbox rows too."""
    insert_rows(conn, "job_events", _event_rows(events, now))
    changed = sorted({j for j, t, _, _ in events if t in STATE_NAMES or t.startswith("job.")})
    if changed:
        where, params = _in_ids(conn, "j.id", changed)
        run(conn, _OUTBOX.format(ids=where), {**params, "now": now, "said": "job.%"})


def insert_jobs(
    conn: Connection,
    rows: list[dict[str, Any]],
    labels: list[tuple[str, str, str]],
    events: Events,
    now: float,
) -> None:
    """New jobs, their labels and first events (and outbox rows). On PostgreSQL as one
    statement, atomic alone: run in autocommit it is one round trip, not six."""
    label_rows = [{"job_id": j, "key": k, "value": v} for j, k, v in labels]
    if conn.dialect.name == "sqlite":
        insert_rows(conn, "jobs", rows)
        insert_rows(conn, "job_labels", label_rows)
        add_events(conn, events, now)
        return
    event_rows = _event_rows(events, now)
    params: dict[str, Any] = {"now": now, **_arrays(rows, "j_"), **_arrays(event_rows, "e_")}
    if label_rows:
        params |= _arrays(label_rows, "l_")
    statement = _insert_jobs_pg(tuple(rows[0]), tuple(event_rows[0]), bool(label_rows))
    run(conn, statement, params)


@cache
def _insert_jobs_pg(
    job_columns: tuple[str, ...], event_columns: tuple[str, ...], labels: bool
) -> str:
    pg = "postgresql"
    ctes = [
        f"j AS ({_insert(pg, 'jobs', job_columns, 'j_')} RETURNING id, callback_url)",
        f"e AS ({_insert(pg, 'job_events', event_columns, 'e_')} RETURNING job_id, seq, type)",
    ]
    if labels:
        ctes.append(f"l AS ({_insert(pg, 'job_labels', ('job_id', 'key', 'value'), 'l_')})")
    return (
        f"WITH {', '.join(ctes)} "  # noqa: S608 - built from table columns only
        "INSERT INTO callbacks (job_id, event_seq, url, state, attempts, next_attempt_at, "
        "created_at) SELECT e.job_id, e.seq, j.callback_url, 'pending', 0, :now, :now "
        f"FROM e JOIN j ON j.id = e.job_id WHERE j.callback_url IS NOT NULL "
        f"AND e.type IN ({_states(list(JobState))})"
    )


def get(conn: Connection, job_id: str) -> Row[Any] | None:
    row: Row[Any] | None = run(conn, "SELECT * FROM jobs WHERE id = :id", {"id": job_id}).first()
    return row


def get_many(conn: Connection, job_ids: Sequence[str]) -> list[Row[Any]]:
    where, params = _in_ids(conn, "id", job_ids)
    return list(run(conn, f"SELECT * FROM jobs WHERE {where}", params))  # noqa: S608


def note_adopted(
    conn: Connection, job_ids: Sequence[str], crashed: str, clean: str, now: float
) -> None:
    """A `recovery` event on each job being adopted, saying whether its supervisor died
    (`crashed`) or let go of it (`clean`): one statement for any number of jobs, before
    their gateway_id changes."""
    where, params = _in_ids(conn, "id", job_ids)
    statement = (
        "INSERT INTO job_events (job_id, time, type, message, data) "  # noqa: S608 - ours
        "SELECT id, :now, 'recovery', CASE WHEN gateway_id IS NULL THEN :clean "
        f"ELSE :crashed END, '{{}}' FROM jobs WHERE {where}"
    )
    run(conn, statement, {**params, "now": now, "clean": clean, "crashed": crashed})


def set_gateway(conn: Connection, job_ids: Sequence[str], gateway_id: str | None) -> None:
    """Who watches these jobs (any number of ids: one bound parameter)."""
    where, params = _in_ids(conn, "id", job_ids)
    run(conn, f"UPDATE jobs SET gateway_id = :g WHERE {where}", {**params, "g": gateway_id})  # noqa: S608


_ACTIVE = _states(list(ACTIVE_STATES))


def active_count(conn: Connection, destination: str) -> int:
    query = f"SELECT count(*) FROM jobs WHERE destination = :d AND state IN ({_ACTIVE})"  # noqa: S608
    return int(run(conn, query, {"d": destination}).scalar_one())


def claim(
    conn: Connection,
    destination: str,
    capacity: int,
    limit: int,
    gateway_id: str,
    base_dir: str | None,
    now: float,
) -> list[Row[Any]]:
    """Inside a transaction that holds the destination's lock (see Store.claim)."""
    free = min(limit, capacity - active_count(conn, destination))
    if free <= 0:
        return []
    ids = [
        r[0]
        for r in run(
            conn,
            "SELECT id FROM jobs WHERE destination = :d AND state = 'QUEUED' "
            "AND (not_before IS NULL OR not_before <= :now) ORDER BY id LIMIT :n",
            {"d": destination, "n": free, "now": now},
        )
    ]
    if not ids:
        return []
    # One guarded UPDATE per id (a row cancelled since the SELECT is simply not claimed);
    # RETURNING gives the rows without another read.
    claimed = []
    for job_id in ids:
        row = run(
            conn,
            "UPDATE jobs SET state = 'STAGING_IN', gateway_id = :g, updated_at = :now, "
            "run_dir = coalesce(run_dir, :base || '/' || id) "
            "WHERE id = :id AND state = 'QUEUED' RETURNING *",
            {"g": gateway_id, "now": now, "id": job_id, "base": base_dir},
        ).first()
        if row is not None:
            claimed.append(row)
    add_events(conn, [(r.id, JobState.STAGING_IN.value, "admitted", {}) for r in claimed], now)
    return claimed


PENDING_REASON = "pending_reason"  # a note of the scheduler's reason a job waits


def keep_pending_reasons(conn: Connection, notes: Events) -> None:
    """A job waiting in its scheduler keeps the reason its last note gave, beside the event."""
    for job_id, type_, message, _ in notes:
        if type_ == PENDING_REASON:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == JobState.SUBMITTED.value)
                .values(pending_reason=message[:200] or None)
            )
