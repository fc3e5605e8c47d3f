"""The store on both databases: guarded transitions (taken, refused, final for ever) and
the migrations (an empty database reaches head, and head is what tables.py says)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from jobgate.errors import InvalidTransition
from jobgate.spec import JobRecord, JobSpec, Resources
from jobgate.states import FINAL_STATES, JobState
from jobgate.store import AsyncStore, Store, Transition, migrate
from jobgate.store.accounts import Accounts, hash_token
from jobgate.store.retention import delete_finished, retention_query
from jobgate.store.tables import jobs, metadata

S = JobState


@pytest.fixture
def store(database_url: str) -> Store:
    s = Store(database_url)
    s.migrate()
    return s


def _job(n: int, state: JobState = S.QUEUED) -> JobRecord:
    return JobRecord(
        id=f"01TEST{n:020d}",
        name=f"j{n}",
        owner="alice",
        destination="local",
        state=state,
        run_dir=f"/runs/01TEST{n:020d}",
        spec=JobSpec(script="true"),
        resources=Resources(walltime_s=60),
        created_at=datetime.now(UTC),
    )


def test_a_transition_takes_once_and_writes_its_event(store: Store) -> None:
    store.insert_jobs([(_job(1), "queued")])
    store.transition(Transition(_job(1).id, S.STAGING_IN, "admitted"))
    assert store.get(_job(1).id).state == S.STAGING_IN
    with pytest.raises(InvalidTransition) as info:  # QUEUED -> STAGING_IN again: refused
        store.transition(Transition(_job(1).id, S.STAGING_IN, "admitted twice"))
    assert (info.value.job_id, info.value.current) == (_job(1).id, "STAGING_IN")
    assert [e.type for e in store.events(_job(1).id)] == ["QUEUED", "STAGING_IN"]
    stored = store.get(_job(1).id)
    assert (stored.run_dir, stored.resources) == (_job(1).run_dir, Resources(walltime_s=60))


def test_a_batch_reports_each_change_and_final_states_never_change(store: Store) -> None:
    store.insert_jobs([(_job(i), "queued") for i in range(3)])
    took = store.apply(
        [
            Transition(_job(0).id, S.CANCELLED, "cancelled"),
            Transition(_job(1).id, S.RUNNING, "skips the table"),  # QUEUED -> RUNNING: no
            Transition(_job(2).id, S.FAILED, "", fields={"reason": "bad", "exit_code": 3}),
        ]
    )
    assert took == [True, False, True]
    for final in sorted(FINAL_STATES):
        for job_id in (_job(0).id, _job(2).id):
            assert store.apply([Transition(job_id, final, "again")]) == [False]
    assert store.get(_job(0).id).state == S.CANCELLED
    failed = store.get(_job(2).id)
    assert (failed.state, failed.exit_code, failed.reason) == (S.FAILED, 3, "bad")
    assert store.get(_job(1).id).state == S.QUEUED
    assert [e.type for e in store.events(_job(2).id)] == ["QUEUED", "FAILED"]


def test_many_jobs_are_adopted_once_each_in_order_saying_why(store: Store) -> None:
    """1,200 active jobs (more than a chunk, more than SQLite's bound parameters allow in
    one IN list): ids only, oldest first; one `recovery` event each, saying whether the
    supervisor that watched it died or let go; a live supervisor's jobs are left alone."""
    jobs = [_job(i, S.RUNNING) for i in range(1200)]
    store.insert_jobs([(j, "queued") for j in jobs])
    ids = [j.id for j in jobs]
    notes = ("died", "let go")
    assert store.adopt("local", "first", [], None, notes) == ids  # nobody watched them
    store.release_jobs(ids[:200])  # a clean stop lets go of some
    assert store.adopt("local", "second", [], None, notes) == ids  # "first" is dead
    assert store.adopt("local", "third", ["second"], None, notes) == []  # "second" lives
    said = {i: tuple(e.message for e in store.events(i) if e.type == "recovery") for i in ids}
    assert {i: said[i] for i in ids[:200]} == dict.fromkeys(ids[:200], ("let go", "let go"))
    assert {i: said[i] for i in ids[200:]} == dict.fromkeys(ids[200:], ("let go", "died"))


def test_running_jobs_are_listened_to_a_chunk_at_a_time(store: Store) -> None:
    """Keyset chunks of one supervisor's running jobs: each once, in id order, with where
    its stdout goes (the spec's paths); queued jobs and other supervisors' are not."""
    from jobgate.store.results import running_of

    running = [_job(i, S.RUNNING) for i in range(1100)]
    talker = _job(1100, S.RUNNING).model_copy(
        update={"spec": JobSpec(script="true", directory="work", stdout="out.txt")}
    )
    store.insert_jobs([(j, "queued") for j in [*running, talker, _job(2000)]])
    store.adopt("local", "me", [], None)
    store.insert_jobs([(_job(3000, S.RUNNING), "queued")])  # nobody's yet
    seen, after = [], ""
    while chunk := running_of(store, "local", "me", after, 500):
        assert len(chunk) <= 500
        seen += chunk
        after = chunk[-1].id
    assert [j.id for j in seen] == [j.id for j in [*running, talker]]
    assert (seen[-1].run_dir, seen[-1].directory, seen[-1].stdout) == (
        talker.run_dir,
        "work",
        "out.txt",
    )
    assert (seen[0].directory, seen[0].stdout) == (None, None)


def test_adopted_jobs_are_read_for_watching_without_records(store: Store) -> None:
    """What re-attaching a batch job needs, from its columns: an array from its stored
    resources, a stop reason, the time; a job stored without resources says so (it then
    needs its record); unknown ids are left out, the others keep the order asked."""
    from jobgate.store.results import watching_of

    array = _job(1, S.RUNNING).model_copy(
        update={"resources": Resources(array="0-3%2", walltime_s=60)}
    )
    bare = _job(2, S.SUBMITTED).model_copy(update={"resources": None})
    store.insert_jobs([(array, ""), (bare, "")])
    with store.writing() as conn:
        conn.execute(sa.update(jobs).where(jobs.c.id == bare.id).values(stop_reason="cancel"))
        conn.execute(sa.update(jobs).where(jobs.c.id == array.id).values(native_id="41"))
    found = watching_of(store, [bare.id, "01UNKNOWN0000000000000000X", array.id])
    assert [w.id for w in found] == [bare.id, array.id]
    assert (found[1].state, found[1].native_id, found[1].array) == (S.RUNNING, "41", "0-3%2")
    assert found[1].resources and found[1].run_dir == array.run_dir
    assert found[1].created_at == pytest.approx(array.created_at.timestamp())
    assert (found[0].resources, found[0].stop_reason, found[0].array) == (False, "cancel", None)


def test_retention_takes_the_oldest_finished_first_along_its_index(store: Store) -> None:
    """Oldest first, never an active job (even one with a finished time, as a bug might
    leave), and found through ix_jobs_finished_at: without it each hourly sweep read every
    final job (1,000,000 jobs: 0.3 s of blocked writers on SQLite; docs/benchmarks.md)."""
    store.insert_jobs([(_job(i, S.COMPLETED if i < 3 else S.RUNNING), "") for i in range(4)])
    with store.writing() as conn:  # finished at 300, 100, 200; the RUNNING one at 50
        for i, at in enumerate((300.0, 100.0, 200.0, 50.0)):
            conn.execute(sa.update(jobs).where(jobs.c.id == _job(i).id).values(finished_at=at))
    assert [r[0] for r in delete_finished(store, 250.0, 1)] == [_job(1).id]
    assert [r[0] for r in delete_finished(store, 250.0, 10)] == [_job(2).id]
    assert {j.id for j in store.list_jobs(limit=10)} == {_job(0).id, _job(3).id}
    sql = retention_query(999.0, 10).compile(store.engine, compile_kwargs={"literal_binds": True})
    explain = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET enable_seqscan = off"))  # 2 rows: it would scan
        plan = " ".join(str(row) for row in conn.exec_driver_sql(f"{explain}{sql}"))
    assert "ix_jobs_finished_at" in plan, plan


def test_an_empty_database_migrates_to_head_and_head_is_tables_py(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    assert migrate.current(engine) is None
    Store(database_url).migrate()
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert migrate.current(engine) == head == migrate.HEAD
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    engine.dispose()


def test_a_database_of_the_first_release_keeps_its_jobs_through_upgrades(
    database_url: str,
) -> None:
    engine = sa.create_engine(database_url)
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:  # a job as the first release stored it
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, owner, destination, state, spec, created_at, updated_at) "
                "VALUES ('01OLD000000000000000000000', 'bob', 'local', 'COMPLETED', "
                '\'{"script": "true"}\', 1.0, 1.0)'
            )
        )
    engine.dispose()
    store = Store(database_url)
    store.migrate()
    old = store.get("01OLD000000000000000000000")
    assert (old.state, old.owner, old.resources, old.spec.script) == (
        S.COMPLETED,
        "bob",
        None,
        "true",
    )


def test_a_token_of_the_first_release_gets_an_id_and_still_works(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    migrate.upgrade(engine, "0001")
    cols = sa.column
    old_users = sa.table(
        "users", cols("name"), cols("admin"), cols("callback_secret"), cols("created_at")
    )
    old_tokens = sa.table("tokens", cols("hash"), cols("user"), cols("label"), cols("created_at"))
    with engine.begin() as conn:  # a user and two tokens as the first release stored them
        conn.execute(
            old_users.insert().values(name="bob", admin=False, callback_secret="s", created_at=1.0)
        )
        for token in ("jg_old1", "jg_old2"):
            row = {"hash": hash_token(token), "user": "bob", "label": "", "created_at": 1.0}
            conn.execute(old_tokens.insert().values(row))
    engine.dispose()
    store = Store(database_url)
    store.migrate()
    accounts = Accounts(store)
    infos = accounts.tokens("bob")
    assert len({t.id for t in infos}) == 2 and all(len(t.id) == 16 for t in infos)
    assert all(t.expires_at is None and t.revoked_at is None for t in infos)
    assert accounts.marker() == 0
    found = accounts.lookup(hash_token("jg_old1"))
    assert found is not None and found[0].name == "bob"
    accounts.revoke(infos[0].id)
    assert accounts.marker() == 1
    assert {accounts.lookup(hash_token(t)) is None for t in ("jg_old1", "jg_old2")} == {True, False}


def test_a_sqlite_lock_held_elsewhere_never_stalls_the_event_loop(tmp_path: Path) -> None:
    """A write tried on the loop fails at once and waits for the lock in the writer thread;
    reads go on meanwhile. The lock is another process's, as in a real deployment."""
    import asyncio
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'jobgate.db'}"
    store = Store(url)
    store.migrate()
    store.insert_jobs([(_job(1), "queued")])
    holder = subprocess.Popen(  # holds the write lock until told to let go (a line on stdin)
        [sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "jobgate.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == "locked\n"
    db = AsyncStore(store)

    async def scenario() -> None:
        write = asyncio.ensure_future(db.write(store.insert_jobs, [(_job(2), "queued")]))
        for _ in range(20):  # the loop keeps turning while the write waits for the lock
            await asyncio.sleep(0)
        assert not write.done()
        assert (await db.read(store.get, _job(1).id)).state == S.QUEUED  # reads answer
        holder.stdin.write("go\n")  # type: ignore[union-attr]
        holder.stdin.flush()  # type: ignore[union-attr]
        await write
        assert (await db.read(store.get, _job(2).id)).state == S.QUEUED

    asyncio.run(scenario())
    assert holder.wait(10) == 0
    db.close()


LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""
