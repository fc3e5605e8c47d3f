"""The store: every job's state, events and labels, on SQLite (default) or PostgreSQL.

Every state change is one guarded compare-and-set UPDATE plus its event row, in
one transaction; batches of changes share a transaction (one commit for many jobs).
The database driver's errors stop here: a store that is locked, read-only or down is
StoreUnavailable (transient), a value it cannot hold a SpecError. This class is the sync
path, written once; async code reaches it through `AsyncStore` (store/aio.py).
"""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    delete,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from jobgate.errors import (
    ConflictError,
    InvalidTransition,
    NotFoundError,
)
from jobgate.spec import JobEvent, JobRecord, JobSpec
from jobgate.states import ACTIVE_STATES, FINAL_STATES, JobState, StopReason, reason_code
from jobgate.store import changes as changes_
from jobgate.store import tasks as tasks_
from jobgate.store.changes import Transition, dumps
from jobgate.store.connections import Database
from jobgate.store.filters import conditions
from jobgate.store.rows import event_of, record_of, resources_json
from jobgate.store.tables import gateways, job_events, job_labels, jobs


class Store(Database):
    """Every query of the gateway, each in its own transaction (or one statement)."""

    # -- jobs --------------------------------------------------------------------------

    def insert_jobs(self, items: Sequence[tuple[JobRecord, str]]) -> list[None]:
        """New jobs with their first event, in one transaction (one commit for all)."""
        rows: list[dict[str, Any]] = []
        labels: list[tuple[str, str, str]] = []
        events: list[tuple[str, str, str, dict[str, Any]]] = []
        for record, message in items:
            now = record.created_at.timestamp()
            rows.append(
                {
                    "id": record.id,
                    "name": record.name,
                    "owner": record.owner,
                    "destination": record.destination,
                    "state": record.state.value,
                    "run_dir": record.run_dir,
                    "spec": record.spec.model_dump_json(exclude_defaults=True),
                    "resources": resources_json(record.resources),
                    "labels": dumps(record.labels),
                    "idempotency_key": record.spec.idempotency_key,
                    "callback_url": record.spec.callback_url,
                    "created_at": now,
                    "queued_at": now if record.state == JobState.QUEUED else None,
                    "reason": record.reason,  # a job refused before it ran: why
                    "reason_code": record.reason_code
                    or (reason_code(record.state, None, None) if record.state.final else None),
                    "finished_at": now if record.state.final else None,
                    "updated_at": now,
                    "backend_data": "{}",
                }
            )
            labels += [(record.id, k, v) for k, v in record.labels.items()]
            events.append((record.id, record.state.value, message, {}))
        try:
            with self.writing(one_statement=True) as conn:
                changes_.insert_jobs(conn, rows, labels, events, time.time())
        except IntegrityError:
            keys = ", ".join(repr(r.spec.idempotency_key) for r, _ in items)
            raise ConflictError(f"idempotency key {keys} was already used") from None
        return [None] * len(items)

    def find_by_idempotency_key(self, owner: str, key: str) -> JobRecord | None:
        with self.reading() as conn:
            row = conn.execute(
                select(jobs).where(jobs.c.owner == owner, jobs.c.idempotency_key == key)
            ).first()
        return None if row is None else record_of(row)

    def get(self, job_id: str) -> JobRecord:
        with self.reading() as conn:
            row = changes_.get(conn, job_id)
        if row is None:
            raise NotFoundError(f"no job {job_id!r}")
        return record_of(row)

    def get_many(self, job_ids: Sequence[str]) -> builtins.list[JobRecord | None]:
        """Each job by id (None if unknown), in one query."""
        with self.reading() as conn:
            rows = {r.id: r for r in changes_.get_many(conn, job_ids)}
        return [record_of(rows[i]) if i in rows else None for i in job_ids]

    def list_jobs(
        self, *, before: str | None = None, limit: int = 100, **filters: Any
    ) -> builtins.list[JobRecord]:
        """Newest first; `before` is a job id to page from (ids sort by time: keyset paging,
        never OFFSET). `filters`: as `count_jobs`."""
        conds = conditions(**filters)
        if before:
            conds.append(jobs.c.id < before)
        query = select(jobs).where(and_(True, *conds)).order_by(jobs.c.id.desc()).limit(limit)
        with self.reading() as conn:
            rows = conn.execute(query).all()
        return [record_of(r) for r in rows]

    def count_jobs(self, **filters: Any) -> int:
        """How many jobs match: state, destination, label, owner, name, since."""
        query = select(func.count()).select_from(jobs).where(and_(True, *conditions(**filters)))
        with self.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def count_states(
        self, states: Iterable[JobState], cap: int, **filters: Any
    ) -> dict[JobState, int]:
        """Jobs per state that match `filters`, each counted up to `cap` at most (one
        index range per state, however many jobs are older): for states few jobs are in."""
        out = {}
        with self.reading() as conn:
            for state in states:
                conds = conditions(**{**filters, "state": [state]})
                ids = select(jobs.c.id).where(and_(True, *conds)).limit(cap).subquery()
                out[state] = int(conn.execute(select(func.count()).select_from(ids)).scalar_one())
        return out

    def recent_states(self, window: int, **filters: Any) -> tuple[dict[JobState, int], int]:
        """Jobs per state among the newest `window` that match `filters`, in one bounded
        read: the newest of all jobs, or with a label filter the newest jobs with that
        label, each looked up by id (a label few jobs carry is not searched for among all
        of them, whichever index a planner would pick). And how many jobs were read."""
        labels = dict(filters.pop("label", None) or {})
        if labels:
            key, value = labels.popitem()
            newest_ids = (
                select(job_labels.c.job_id)
                .where(job_labels.c.key == key, job_labels.c.value == value)
                .order_by(job_labels.c.job_id.desc())
                .limit(window)
                .subquery()
            )
            conds = conditions(**filters, label=labels)
            state_of = select(jobs.c.state).where(jobs.c.id == newest_ids.c.job_id, *conds)
            looked_up = state_of.correlate(newest_ids).scalar_subquery().label("state")
            newest = select(looked_up).select_from(newest_ids).subquery()
        else:
            conds = conditions(**filters)
            rows = select(jobs.c.state).where(and_(True, *conds)).order_by(jobs.c.id.desc())
            newest = rows.limit(window).subquery()
        query = select(newest.c.state, func.count()).group_by(newest.c.state)
        with self.reading() as conn:
            found = conn.execute(query).all()
        counts = {JobState(state): int(n) for state, n in found if state is not None}
        return counts, sum(int(n) for _, n in found)

    def activity(self, since_id: str, cap: int, owner: str | None = None) -> builtins.list[Any]:
        """State and times of the jobs made since `since_id` (a ULID of a time: a range of
        the primary key), newest first, `cap` at most; one owner's only if given."""
        columns = (jobs.c.state, jobs.c.created_at, jobs.c.started_at, jobs.c.finished_at)
        conds = [jobs.c.id >= since_id, *([jobs.c.owner == owner] if owner else [])]
        query = select(*columns).where(*conds).order_by(jobs.c.id.desc())
        with self.reading() as conn:
            return list(conn.execute(query.limit(cap)).all())

    def adopt(
        self,
        destination: str,
        gateway_id: str,
        live: Sequence[str],
        host: str | None = None,
        notes: tuple[str, str] = ("", ""),
    ) -> builtins.list[str]:
        """Take over the active jobs of a destination whose supervisor is gone (or none),
        in one locked transaction, so two starting supervisors never adopt the same job.
        `host`: only jobs running there (a local process can be watched only from its host).
        Each gets a `recovery` event: notes[0] if its supervisor died, notes[1] if it let
        go. Returns their ids, oldest first (read them a chunk at a time)."""
        active = [s.value for s in ACTIVE_STATES]
        orphan = and_(
            jobs.c.destination == destination,
            jobs.c.state.in_(active),
            jobs.c.gateway_id.is_(None) | jobs.c.gateway_id.not_in([*live, gateway_id]),
            (jobs.c.host.is_(None) | (jobs.c.host == host)) if host else true(),
        )
        # PostgreSQL: rows another starting supervisor is taking are left to it
        query = select(jobs.c.id).where(orphan).order_by(jobs.c.id)
        with self.writing() as conn:
            ids = list(conn.execute(query.with_for_update(skip_locked=True)).scalars())
            if ids:
                changes_.note_adopted(conn, ids, *notes, time.time())
                changes_.set_gateway(conn, ids, gateway_id)
        return ids

    def release_jobs(self, job_ids: Sequence[str]) -> None:
        """Let go of some jobs: a later adoption pass (of any supervisor) takes them up."""
        with self.writing() as conn:
            changes_.set_gateway(conn, job_ids, None)

    def release(self, gateway_id: str) -> None:
        """A supervisor stopping cleanly lets go of its jobs (they keep running)."""
        with self.writing() as conn:
            conn.execute(
                update(jobs).where(jobs.c.gateway_id == gateway_id).values(gateway_id=None)
            )
            conn.execute(delete(gateways).where(gateways.c.id == gateway_id))

    def counts(self, destination: str | None = None) -> dict[str, dict[JobState, int]]:
        query = select(jobs.c.destination, jobs.c.state, func.count()).group_by(
            jobs.c.destination, jobs.c.state
        )
        if destination:
            query = query.where(jobs.c.destination == destination)
        out: dict[str, dict[JobState, int]] = {}
        with self.reading() as conn:
            for dest, state, n in conn.execute(query):
                out.setdefault(dest, {})[JobState(state)] = n
        return out

    def active_count(self, destination: str) -> int:
        """Jobs holding a slot of the destination (an index range scan, not a GROUP BY)."""
        with self.reading() as conn:
            return int(changes_.active_count(conn, destination))

    def stop_requests(
        self, destination: str, gateway_id: str
    ) -> builtins.list[tuple[str, StopReason]]:
        """(job id, stop reason) of this supervisor's active jobs someone asked to stop."""
        with self.reading() as conn:
            rows = conn.execute(
                select(jobs.c.id, jobs.c.stop_reason).where(
                    jobs.c.destination == destination,
                    jobs.c.gateway_id == gateway_id,
                    jobs.c.stop_reason.is_not(None),
                    jobs.c.state.in_([s.value for s in ACTIVE_STATES]),
                )
            ).all()
        return [(r[0], StopReason(r[1])) for r in rows]

    # -- state changes -----------------------------------------------------------------

    def transition(self, t: Transition) -> None:
        """One guarded change; InvalidTransition (with the state found) if it did not take."""
        if not self.apply([t])[0]:
            with self.reading() as conn:
                row = changes_.get(conn, t.job_id)
            raise InvalidTransition(t.job_id, t.to.value, None if row is None else row.state)

    def apply(
        self, changes: Sequence[Transition], notes: changes_.Events = ()
    ) -> builtins.list[bool]:
        """Apply guarded transitions (and add other events) in one transaction; True for
        each transition that took."""
        if not changes and not notes:
            return []
        with self.writing() as conn:
            now = time.time()
            changes_.add_events(conn, notes, now)  # first: a job's last words precede its end
            tasks_.keep(conn, notes, now)
            took = changes_.apply(conn, changes, now)
            changes_.keep_pending_reasons(conn, notes)
            return took

    def tasks(self, job_id: str) -> builtins.list[tasks_.Task]:
        with self.reading() as conn:
            return tasks_.tasks_of(conn, job_id)

    def claim(
        self,
        destination: str,
        capacity: int,
        limit: int,
        gateway_id: str,
        base_dir: str | None,
    ) -> builtins.list[JobRecord]:
        """Move up to min(limit, free capacity) QUEUED jobs to STAGING_IN, oldest first;
        a job without a run directory yet gets `base_dir/<id>` (none if base_dir is None).

        Counting and claiming share one locked transaction, so capacity holds across
        processes: SQLite's BEGIN IMMEDIATE, or a PostgreSQL advisory lock per destination.
        """
        with self.writing() as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:d))"), {"d": destination})
            rows = changes_.claim(
                conn, destination, capacity, limit, gateway_id, base_dir, time.time()
            )
        return [record_of(r) for r in rows]

    def set_fields(
        self,
        job_id: str,
        *,
        event_type: str | None = None,
        message: str = "",
        data: dict[str, Any] | None = None,
        only_active: bool = False,
        **values: Any,
    ) -> bool:
        """Update non-state fields (native id, stop reason, ...), with an optional event."""
        if "backend_data" in values:
            values["backend_data"] = dumps(values["backend_data"])
        now = time.time()
        query = update(jobs).where(jobs.c.id == job_id)
        if only_active:
            query = query.where(jobs.c.state.not_in([s.value for s in FINAL_STATES]))
        with self.writing() as conn:
            result = conn.execute(query.values(updated_at=now, **values))
            if result.rowcount != 1:
                return False
            if event_type:
                changes_.add_events(conn, [(job_id, event_type, message, data or {})], now)
        return True

    def add_events(self, items: Sequence[tuple[str, str, str, dict[str, Any]]]) -> None:
        with self.writing() as conn:
            changes_.add_events(conn, items, time.time())

    def input_sources(self) -> set[str]:
        """The input files that jobs not final yet will stage in (uploads to keep)."""
        open_states = [s.value for s in JobState if not s.final]
        query = select(jobs.c.spec).where(
            jobs.c.state.in_(open_states), jobs.c.spec.like('%"input_files"%')
        )
        with self.reading() as conn:
            specs = [JobSpec.model_validate_json(row[0]) for row in conn.execute(query)]
        return {stage.source for spec in specs for stage in spec.input_files}

    def events(self, job_id: str, after: int = 0) -> builtins.list[JobEvent]:
        with self.reading() as conn:
            rows = conn.execute(
                select(job_events)
                .where(job_events.c.job_id == job_id, job_events.c.seq > after)
                .order_by(job_events.c.seq)
            ).all()
        return [event_of(r) for r in rows]

    # -- gateways (which supervisors are alive) -----------------------------------------

    def heartbeat(self, gateway_id: str, host: str) -> None:
        now = time.time()
        with self.writing() as conn:
            done = conn.execute(
                update(gateways).where(gateways.c.id == gateway_id).values(heartbeat_at=now)
            ).rowcount
            if not done:
                conn.execute(
                    insert(gateways),
                    {
                        "id": gateway_id,
                        "host": host,
                        "pid": os.getpid(),
                        "started_at": now,
                        "heartbeat_at": now,
                    },
                )

    def gateways(self) -> builtins.list[Row[Any]]:
        with self.reading() as conn:
            return list(conn.execute(select(gateways)).all())
