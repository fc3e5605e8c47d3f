"""The callback outbox: rows are written by the store with each state change (see
changes.add_events); this module reads and updates them for delivery.

A row is claimed by moving its `next_attempt_at` to the end of a lease and counting the
attempt, in one guarded UPDATE. The claimed row is then not due for anyone else until
the lease ends (so a gateway that dies mid-attempt hands it on by itself), and `attempts`
doubles as the claim's token: a result is recorded only if no one claimed the row since.
No extra columns, so databases created by the first schema need no migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select, update

from jobgate.spec import JobEvent
from jobgate.states import JobState
from jobgate.store.rows import event_of
from jobgate.store.store import Store
from jobgate.store.tables import callbacks, job_events

PENDING, DELIVERED, FAILED, SKIPPED = "pending", "delivered", "failed", "skipped"


@dataclass(frozen=True)
class Claim:
    """One outbox row this process may now try to deliver; `attempts` is its token."""

    id: int
    job_id: str
    event_seq: int
    url: str
    attempts: int
    created_at: float


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    def for_job(self, job_id: str) -> list[dict[str, Any]]:
        with self.store.reading() as conn:
            rows = conn.execute(
                select(callbacks).where(callbacks.c.job_id == job_id).order_by(callbacks.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    # -- claiming ---------------------------------------------------------------------------

    def any_due(self, now: float) -> bool:
        """A cheap read (indexed), so an idle poll never takes SQLite's write lock."""
        with self.store.reading() as conn:
            row = conn.execute(select(callbacks.c.id).where(_due(now)).limit(1)).first()
        return row is not None

    def claim(self, now: float, lease_s: float, limit: int) -> list[Claim]:
        """Claim up to `limit` due rows, each the oldest undelivered row of its job (so a
        job's callbacks go out one at a time, in order), for `lease_s` seconds."""
        query = select(callbacks).where(_due(now)).order_by(callbacks.c.id).limit(limit)
        if not self.store.is_sqlite:  # SQLite's BEGIN IMMEDIATE already serializes claims
            query = query.with_for_update(skip_locked=True)
        claimed = []
        with self.store.writing() as conn:
            for row in conn.execute(query).all():
                took = conn.execute(
                    update(callbacks)
                    .where(
                        callbacks.c.id == row.id,
                        callbacks.c.attempts == row.attempts,
                        callbacks.c.state == PENDING,
                    )
                    .values(attempts=row.attempts + 1, next_attempt_at=now + lease_s)
                ).rowcount
                if took == 1:
                    claimed.append(
                        Claim(
                            row.id,
                            row.job_id,
                            row.event_seq,
                            row.url,
                            row.attempts + 1,
                            row.created_at,
                        )
                    )
        return claimed

    # -- what a delivery needs --------------------------------------------------------------

    def sequence(self, claim: Claim) -> int:
        """1, 2, 3, ... per job: rows are never deleted, so the count is stable."""
        with self.store.reading() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        callbacks.c.job_id == claim.job_id, callbacks.c.id <= claim.id
                    )
                ).scalar_one()
            )

    def event(self, seq: int) -> JobEvent | None:
        with self.store.reading() as conn:
            r = conn.execute(select(job_events).where(job_events.c.seq == seq)).first()
        return None if r is None else event_of(r)

    def previous_state(self, claim: Claim) -> str | None:
        """The job's state before the change this row announces (None: it is the first)."""
        with self.store.reading() as conn:
            row = conn.execute(
                select(job_events.c.type)
                .where(
                    job_events.c.job_id == claim.job_id,
                    job_events.c.seq < claim.event_seq,
                    job_events.c.type.in_([s.value for s in JobState]),
                )
                .order_by(job_events.c.seq.desc())
                .limit(1)
            ).first()
        return None if row is None else str(row[0])

    # -- results (each only if the claim still holds) -----------------------------------------

    def delivered(self, claim: Claim, status: int, now: float) -> bool:
        return self._finish(
            claim, state=DELIVERED, delivered_at=now, last_status=status, last_error=None
        )

    def skipped(self, claim: Claim, now: float, why: str) -> bool:
        """Not to be sent (its receiver would see nothing new): the job's next row is due."""
        return self._finish(
            claim, state=SKIPPED, next_attempt_at=now, attempts=claim.attempts - 1, last_error=why
        )

    def retry(
        self, claim: Claim, at: float, error: str, status: int | None = None, *, count: bool = True
    ) -> bool:
        """Due again at `at`; `count=False` when the attempt never started (not an attempt)."""
        attempts = claim.attempts if count else claim.attempts - 1
        return self._finish(
            claim, next_attempt_at=at, attempts=attempts, last_status=status, last_error=error
        )

    def failed(
        self, claim: Claim, now: float, error: str, status: int | None = None, *, count: bool = True
    ) -> bool:
        """Given up on: the job's next row becomes due. `count=False`: never sent."""
        attempts = claim.attempts if count else claim.attempts - 1
        return self._finish(
            claim,
            state=FAILED,
            next_attempt_at=now,
            attempts=attempts,
            last_status=status,
            last_error=error,
        )

    def _finish(self, claim: Claim, **values: Any) -> bool:
        with self.store.writing() as conn:
            return (
                conn.execute(
                    update(callbacks)
                    .where(
                        callbacks.c.id == claim.id,
                        callbacks.c.attempts == claim.attempts,
                        callbacks.c.state == PENDING,
                    )
                    .values(**values)
                ).rowcount
                == 1
            )


def _due(now: float) -> ColumnElement[bool]:
    """Pending, due, and no older pending row of the same job (that one goes first)."""
    older = callbacks.alias("older")
    return and_(
        callbacks.c.state == PENDING,
        callbacks.c.next_attempt_at <= now,
        ~exists().where(
            older.c.job_id == callbacks.c.job_id,
            older.c.state == PENDING,
            older.c.id < callbacks.c.id,
        ),
    )
