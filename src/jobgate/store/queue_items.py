"""Queries of queue_items: which job files of a queue were claimed, by which job."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from jobgate.store.connections import Database
from jobgate.store.tables import queue_items


@dataclass(frozen=True)
class Item:
    queue: str
    key: str
    version: str
    job_id: str
    state: str
    claimed_at: float


def claim(db: Database, queue: str, key: str, version: str, job_id: str) -> bool:
    """Claim one job file for `job_id`: True if this call did, False if it was claimed."""
    now = time.time()
    row = {"queue": queue, "key": key, "version": version, "job_id": job_id}
    try:
        with db.writing() as conn:
            conn.execute(
                insert(queue_items).values(state="claimed", claimed_at=now, updated_at=now, **row)
            )
    except IntegrityError:
        return False
    return True


def claimed(db: Database, queue: str, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (key, version) of these are claimed already (one query for a listing)."""
    if not keys:
        return set()
    names = sorted({k for k, _ in keys})
    with db.reading() as conn:
        rows = conn.execute(
            select(queue_items.c.key, queue_items.c.version).where(
                queue_items.c.queue == queue, queue_items.c.key.in_(names)
            )
        ).all()
    return {(r[0], r[1]) for r in rows}


def items(db: Database, queue: str, state: str | None = None, limit: int = 1000) -> list[Item]:
    query = select(queue_items).where(queue_items.c.queue == queue)  # by claim time
    if state is not None:
        query = query.where(queue_items.c.state == state)
    with db.reading() as conn:
        rows = conn.execute(query.order_by(queue_items.c.claimed_at).limit(limit)).all()
    return [Item(r.queue, r.key, r.version, r.job_id, r.state, r.claimed_at) for r in rows]


def move(db: Database, item: Item, state: str, job_id: str) -> None:
    with db.writing() as conn:
        conn.execute(
            update(queue_items)
            .where(
                queue_items.c.queue == item.queue,
                queue_items.c.key == item.key,
                queue_items.c.version == item.version,
            )
            .values(state=state, job_id=job_id, updated_at=time.time())
        )
