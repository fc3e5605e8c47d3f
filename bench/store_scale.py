#!/usr/bin/env python3
"""Store scale: N jobs in the store (default 1,000,000; 95 % finished, 5 % active, one
label each), then the queries doors make, timed in-process: the first page of
`GET /api/v1/jobs` (newest 100), a filtered page (state + label), one job's events, and
the count an admin's dashboard asks, and retention's sweep (nothing due; then 1,000 jobs
deleted a transaction). p50 and p99 over many requests, on SQLite and
PostgreSQL. Jobs are written straight through the store's batch insert (what a busy
gateway's submissions amount to), in batches of 5,000. Then (`--part restart`,
bench/restart_scale.py) a `jobgate serve` restarted with 100,000 running jobs: the time
to its first status command and until each job was asked about, and its memory.

    .venv/bin/python bench/store_scale.py [--jobs 1000000] [--part pages,restart] [--json]

PostgreSQL comes from the test services (JOBGATE_TEST_PG_URL in services.env).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import restart_scale
from api_throughput import fresh_pg_database
from jobgate.config import Destination
from jobgate.ids import new_id
from jobgate.spec import JobRecord, JobSpec
from jobgate.states import JobState
from jobgate.store import Store
from jobgate.store.retention import delete_finished

BATCH = 5000
SPEC = JobSpec(script="true")
RESOURCES = Destination(name="local", scheduler="local").effective(SPEC.resources)
FINAL = [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED]


def fill(store: Store, n: int) -> float:
    """n jobs, oldest first; returns the seconds it took."""
    started, now = time.perf_counter(), datetime.now(UTC)
    for first in range(0, n, BATCH):
        items = []
        for i in range(first, min(n, first + BATCH)):
            state = JobState.RUNNING if i % 20 == 0 else FINAL[i % 3]
            record = JobRecord(
                id=new_id(),
                name=f"job-{i}",
                owner=f"user{i % 50}",
                destination="local",
                state=state,
                labels={"run": f"r{i % 1000}"},
                spec=SPEC,
                resources=RESOURCES,  # stored with every submission (migration 0002)
                created_at=now,
            )
            items.append((record, "queued for local"))
        store.insert_jobs(items)
    return time.perf_counter() - started


def timed(fn: Callable[[], Any], requests: int) -> dict[str, float]:
    fn()  # warm: plans, caches
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 2),
    }


def measure(url: str, n: int, requests: int) -> dict[str, Any]:
    store = Store(url)
    store.migrate()
    fill_s = fill(store, n)
    newest = store.list_jobs(limit=1)[0].id
    out = {
        "jobs": n,
        "fill_s": round(fill_s, 1),
        "first_page": timed(lambda: store.list_jobs(limit=100), requests),
        "filtered_page": timed(
            lambda: store.list_jobs(limit=100, state=[JobState.FAILED], label={"run": "r7"}),
            requests,
        ),
        "owner_page": timed(lambda: store.list_jobs(limit=100, owner="user7"), requests),
        "events": timed(lambda: store.events(newest, 0), requests),
        "active_count": timed(lambda: store.count_jobs(state=[JobState.RUNNING]), requests),
        # Retention's hourly sweep with nothing due (every job finished just now): one
        # write transaction that must find none without reading the finished jobs.
        "retention_none_due": timed(lambda: delete_finished(store, time.time() - 86400, 1000), 50),
        # Then due: 1,000 jobs and all kept of them deleted per transaction, 10 batches
        # (last: it empties part of the store).
        "retention_batch_1000": timed(lambda: delete_finished(store, time.time() + 1, 1000), 10),
    }
    store.close()
    return out


def pg_url() -> str | None:
    """A fresh database on the test PostgreSQL (None without the test services)."""
    env = Path("/var/lib/jobgate-test/services.env")
    lines = env.read_text().splitlines() if env.exists() else []
    found = [ln.split("=", 1)[1].strip() for ln in lines if ln.startswith("JOBGATE_TEST_PG_URL=")]
    return fresh_pg_database(found[0]) if found else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--part", default="pages,restart", help="pages, restart, or both")
    ap.add_argument("--active", type=int, default=100_000, help="jobs running at the restart")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }
    for store in args.stores.split(","):
        with tempfile.TemporaryDirectory(prefix="jobgate-scale-") as tmp:
            sqlite = f"sqlite:///{tmp}/jobgate.db"
            if "pages" in args.part and (url := sqlite if store == "sqlite" else pg_url()):
                results[f"{store} pages"] = measure(url, args.jobs, args.requests)
            if "restart" in args.part and (url := f"{sqlite}-r" if store == "sqlite" else pg_url()):
                results[f"{store} restart"] = restart_scale.measure(url, args.active, 2.0)
    print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
