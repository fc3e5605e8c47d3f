"""Array tasks, task by task: kept from notes of type `job.task` (a backend's poll, or
the gateway's own array driver on local and SSH hosts), one upsert per task change, in
the transaction that writes the notes; read per job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from jobgate.states import TASK_EVENT as TASK
from jobgate.states import JobState, reason_code
from jobgate.store.tables import job_tasks


@dataclass(frozen=True)
class Task:
    index: int
    state: str
    exit_code: int | None
    reason_code: str | None
    started_at: float | None
    finished_at: float | None


def keep(
    conn: Connection, notes: Sequence[tuple[str, str, str, dict[str, Any]]], now: float
) -> None:
    """Upsert each task a `job.task` note names (a later note of one task wins)."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for job_id, type_, _, data in notes:
        row = _row(job_id, data, now) if type_ == TASK else None
        if row is not None:
            rows[(job_id, row["idx"])] = {**rows.get((job_id, row["idx"]), {}), **row}
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for row in rows.values():
        statement = insert(job_tasks).values(**row)
        changes = {
            k: statement.excluded[k] for k in row if k not in ("job_id", "idx", "started_at")
        }
        if "started_at" in row:  # the first start stays
            changes["started_at"] = job_tasks.c.started_at
        conn.execute(
            statement.on_conflict_do_update(index_elements=["job_id", "idx"], set_=changes)
        )


def _row(job_id: str, data: dict[str, Any], now: float) -> dict[str, Any] | None:
    try:
        index, state = int(data["index"]), JobState(str(data["state"]))
    except (KeyError, ValueError, TypeError):
        return None  # a job's own line that is not ours to trust
    code = data.get("exit_code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    row: dict[str, Any] = {"job_id": job_id, "idx": index, "state": state.value, "updated_at": now}
    row["exit_code"] = code
    if state == JobState.RUNNING:
        row["started_at"] = now
    if state.final:
        row["finished_at"] = now
        row["reason_code"] = reason_code(state, data.get("native_state"), code)
    return row


def tasks_of(conn: Connection, job_id: str) -> list[Task]:
    rows = conn.execute(
        select(job_tasks).where(job_tasks.c.job_id == job_id).order_by(job_tasks.c.idx)
    ).all()
    return [
        Task(r.idx, r.state, r.exit_code, r.reason_code, r.started_at, r.finished_at) for r in rows
    ]
