#!/usr/bin/env python3
"""The dashboard's jobs page over 100,000 jobs: server time of `GET /ui/jobs` (the first
page, with counts per state) and of a filtered page (a state and a label), asked N times
in-process through httpx's ASGI transport (no network, no browser: the app's own time),
on SQLite and, when the test server is configured, PostgreSQL. Target: p99 <= 50 ms.

The jobs go straight into the store with its batch insert (`Store.insert_jobs`, as the
service does): alice owns 90% of them, bob the rest; most are final (as on a gateway
that has run for a while), 1% running, 2% queued; each carries one of 20 `project`
labels. No supervisor runs: nothing changes under the measurement. PostgreSQL is
analyzed after the load (its autovacuum would be, a minute later); SQLite is not (jobgate
never runs ANALYZE on it).

    .venv/bin/python bench/ui_jobs_page.py [--jobs 100000] [--requests 300] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from api_throughput import fresh_pg_database, machine, pg_url
from jobgate.api import create_app
from jobgate.config import Config, Destination
from jobgate.ids import encode
from jobgate.runtime import Runtime
from jobgate.spec import JobRecord, JobSpec, Resources
from jobgate.states import JobState
from jobgate.ui.sessions import COOKIE

TARGET_P99_MS = 50.0
BATCH = 5_000
STATES = [
    (JobState.COMPLETED, 0.85),
    (JobState.FAILED, 0.07),
    (JobState.CANCELLED, 0.05),
    (JobState.RUNNING, 0.01),
    (JobState.QUEUED, 0.02),
]
PAGES = {
    "first page": "/ui/jobs",
    "state + label": "/ui/jobs?state=FAILED&label=project%3Dp7",
    "admin, all owners": "/ui/jobs",
}


def records(n: int, seed: int = 14) -> list[tuple[JobRecord, str]]:
    """n jobs made over the last week, oldest first (ids sort by their times)."""
    rng = random.Random(seed)
    spec = JobSpec(script="true", resources=Resources(walltime_s=3600))
    states = rng.choices([s for s, _ in STATES], [w for _, w in STATES], k=n)
    start = datetime.now(UTC) - timedelta(days=7)
    step = timedelta(days=7) / n
    out = []
    for i, state in enumerate(states):
        made = start + step * i
        job_id = encode((int(made.timestamp() * 1000) << 80) | rng.getrandbits(79))
        record = JobRecord(
            id=job_id,
            name=f"job-{i}",
            owner="alice" if rng.random() < 0.9 else "bob",
            destination="local",
            state=state,
            labels={"project": f"p{i % 20}"},
            spec=spec,
            resources=spec.resources,
            created_at=made,
        )
        out.append((record, "inserted by the benchmark"))
    return out


async def measure(url: str, jobs: int, requests: int, tmp: Path) -> dict[str, Any]:
    config = Config(
        home=tmp,
        database_url=url,
        destinations={"local": Destination(name="local", capacity=8)},
        default_destination="local",
    )
    runtime = Runtime(config, supervise=False)
    store = runtime.service._store  # the benchmark's one shortcut: a bulk load
    made = time.perf_counter()
    items = records(jobs)
    for i in range(0, len(items), BATCH):
        store.insert_jobs(items[i : i + BATCH])
    load_s = time.perf_counter() - made
    if not store.is_sqlite:  # as autovacuum does after such a load; SQLite is never analyzed
        with store.writing() as conn:
            conn.execute(text("ANALYZE"))
    app = create_app(runtime.service)
    sessions = app.state.dashboard.sessions
    cookies = {}
    for user, admin in (("alice", False), ("admin", True)):
        token = (await runtime.service.accounts.create_token(user, admin=admin)).token
        cookies[user] = sessions.start(token).id
    del items
    gc.collect()
    gc.freeze()  # as `jobgate serve` does once started: no full collections of the loaded
    results: dict[str, Any] = {"load_s": load_s}
    transport = httpx.ASGITransport(app=app)
    clients = {
        who: httpx.AsyncClient(transport=transport, base_url="http://ui", cookies={COOKIE: sid})
        for who, sid in cookies.items()
    }
    asks = [(name, clients["admin" if name.startswith("admin") else "alice"], path)
            for name, path in PAGES.items()]  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in PAGES}
    for i in range(10 + requests):  # the pages in turn: the machine's other load hits all
        for name, client, path in asks:
            t = time.perf_counter()
            res = await client.get(path)
            if i >= 10:  # after a warm-up: templates compiled, caches filled
                times[name].append((time.perf_counter() - t) * 1000)
            assert res.status_code == 200, res.text[:300]
    for client in clients.values():
        await client.aclose()
    await runtime.close()
    return results | {name: _percentiles(t) for name, t in times.items()}


def _percentiles(times: list[float]) -> dict[str, float]:
    times.sort()
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
        "max_ms": times[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    stores = {"sqlite": None, "postgresql": pg_url()}
    out: dict[str, Any] = {"machine": machine(), "jobs": args.jobs, "stores": {}}
    with tempfile.TemporaryDirectory(prefix="jobgate-ui-bench-") as tmp:
        for store, base in stores.items():
            if store == "postgresql" and base is None:
                print("postgresql: no test server (scripts/services-up.sh): skipped")
                continue
            url = f"sqlite:///{tmp}/ui.db" if base is None else fresh_pg_database(base)
            home = Path(tmp) / store
            home.mkdir()
            out["stores"][store] = asyncio.run(measure(url, args.jobs, args.requests, home))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    m = out["machine"]
    print(f"{m['date']}, {m['nproc']} CPUs ({m['cpu']}), load {m['load_average']}")
    print(f"{args.jobs:,} jobs, {args.requests} requests per page; target p99 <= 50 ms")
    print(f"{'store':<11} {'page':<18} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for store, res in out["stores"].items():
        for page in PAGES:
            r = res[page]
            ok = "ok" if r["p99_ms"] <= TARGET_P99_MS else "OVER"
            print(f"{store:<11} {page:<18} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} "
                  f"{r['max_ms']:7.1f} {ok}")  # fmt: skip
        print(f"{store:<11} (loaded in {res['load_s']:.1f} s)")


if __name__ == "__main__":
    main()
