"""The store's connections: the engines of one database, the transactions queries run in,
and the driver's errors translated (a store that is locked, read-only or down is
StoreUnavailable; a value it cannot hold a SpecError)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DataError, OperationalError

from jobgate.errors import SpecError, StoreUnavailable
from jobgate.store import migrate

# How long a writer (off the event loop) waits for SQLite's lock before StoreUnavailable
# (503 in the API, with Retry-After): a few seconds, so a store held by another process
# answers requests instead of hanging them; the supervisor's writes are kept and retried.
BUSY_TIMEOUT_MS = 3_000


# PostgreSQL: a statement that waits this long for a lock another session holds fails
# (StoreUnavailable) instead of hanging its request.
# Custom plans always: psycopg prepares a statement run 5 times, and PostgreSQL's generic
# plan for it ignores how skewed `state` is (a few QUEUED among 100,000 COMPLETED): 0.1 ms
# became a 15 ms scan (bench/ui_jobs_page.py). Planning each costs far less than that.
PG_OPTIONS = {"options": f"-c lock_timeout={BUSY_TIMEOUT_MS} -c plan_cache_mode=force_custom_plan"}


class StoreBusy(StoreUnavailable):
    """SQLite's write lock is held by someone else, and this call was not to wait for it."""


class Database:
    """The engines of one store and the transactions the queries run in."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = self._make_engine(url)
        # SQLite: an engine whose writers fail at once on a lock held elsewhere (for
        # writes tried on the event loop, see AsyncStore); which one a thread uses.
        self._nowait = self._sqlite_engine(url, 0) if self.is_sqlite else self.engine
        self._local = threading.local()
        # For single statements (all reads, some writes): on PostgreSQL an autocommit pool
        # saves the BEGIN and COMMIT/ROLLBACK round trips (SQLite reads skip BEGIN, _on_begin).
        self._autocommit = (
            self.engine
            if self.is_sqlite
            else create_engine(
                url, pool_size=10, isolation_level="AUTOCOMMIT", connect_args=PG_OPTIONS
            )
        )

    def migrate(self) -> None:
        """Bring the schema to the newest migration (the gateway does this once, on open)."""
        try:
            migrate.upgrade(self.engine)
        except OperationalError as exc:
            raise StoreUnavailable(f"store unavailable: {exc.orig}") from exc

    def _make_engine(self, url: str) -> Engine:
        if not self.is_sqlite:
            # No pool_pre_ping (a round trip per checkout): a connection found dead fails
            # its statement as TransientError and the pool is invalidated for the next.
            return create_engine(url, pool_size=10, connect_args=PG_OPTIONS)
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return self._sqlite_engine(url, BUSY_TIMEOUT_MS)

    @staticmethod
    def _sqlite_engine(url: str, busy_ms: int) -> Engine:
        args = {"check_same_thread": False, "timeout": busy_ms / 1000}
        engine = create_engine(url, connect_args=args)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", f"busy_timeout={busy_ms}"):
                dbapi_conn.execute(f"PRAGMA {pragma}")

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Writers take the lock up front: a deferred transaction that later
            # upgrades to a write can fail with SQLITE_BUSY despite busy_timeout.
            options = conn.get_execution_options()
            if options.get("read"):
                return  # one statement, in SQLite's autocommit mode: no BEGIN, no ROLLBACK
            conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("write") else "BEGIN")

        return engine

    @contextmanager
    def writing(self, one_statement: bool = False) -> Iterator[Connection]:
        """A write transaction (for this package's query modules); `one_statement`: the
        SQL is one statement (atomic alone), run on PostgreSQL in autocommit to save the
        BEGIN and COMMIT round trips."""
        if self.is_sqlite:
            engine = self._nowait if getattr(self._local, "nowait", False) else self.engine
        else:
            engine = self._autocommit if one_statement else self.engine
        waits = engine is not self._nowait or not self.is_sqlite
        with (
            _translated(waits),
            engine.connect().execution_options(write=True) as conn,
            conn.begin(),
        ):
            yield conn

    @contextmanager
    def not_waiting(self) -> Iterator[None]:
        """Writes in this block fail with StoreBusy, at once, when SQLite's write lock is
        held elsewhere (taken up front, by BEGIN IMMEDIATE: nothing was done yet)."""
        self._local.nowait = True
        try:
            yield
        finally:
            self._local.nowait = False

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """For one statement (no snapshot is shared across statements)."""
        with _translated(), self._autocommit.connect().execution_options(read=True) as conn:
            yield conn

    def can_write(self) -> bool:
        """Does a write go through now (/healthz)? One to the jobs table that changes
        nothing, committed: it needs the write lock (SQLite), the table's write lock
        (PostgreSQL), and a writable file or server."""
        try:
            with self.writing() as conn:
                conn.exec_driver_sql("UPDATE jobs SET updated_at = updated_at WHERE id = ''")
        except StoreUnavailable:
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()
        self._autocommit.dispose()
        self._nowait.dispose()


@contextmanager
def _translated(waited: bool = True) -> Iterator[None]:
    """The driver's errors, in the project's tree."""
    try:
        yield
    except OperationalError as exc:  # locked, read-only, disk full, connection lost
        if not waited and "locked" in str(exc.orig):
            raise StoreBusy("the store's write lock is held elsewhere") from exc
        raise StoreUnavailable(f"store unavailable: {exc.orig}") from exc
    except DataError as exc:  # the spec's validation should have named it; a safety net
        raise SpecError("spec", "a value is too long or out of range for the store") from exc
