"""The callback outbox: rows are written by the store with each state change (see
Store._event); this module reads and updates them for delivery."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from jobgate.store.store import Store
from jobgate.store.tables import callbacks


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    def for_job(self, job_id: str) -> list[dict[str, Any]]:
        with self.store._read() as conn:
            rows = conn.execute(
                select(callbacks).where(callbacks.c.job_id == job_id).order_by(callbacks.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]
