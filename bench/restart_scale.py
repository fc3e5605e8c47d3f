#!/usr/bin/env python3
"""A gateway restart with N active batch jobs (default 100,000): `jobgate serve` (API and
supervisor, as users run it) started on a store where N jobs are RUNNING on a Slurm
destination under a supervisor that died. Measured from outside: the time from starting
the server to its first status command, and until every job has been asked about once;
the server's memory (VmRSS, and VmHWM: its peak) once it has polled them all 4 times.
Run by `store_scale.py --part restart`, or alone:

    .venv/bin/python bench/restart_scale.py [--jobs 100000] [--stores sqlite,postgresql]

No Slurm here holds 100,000 jobs (the test cluster's MaxJobCount is 20,000), so the
destination's `squeue` is a small shell script that answers every id it is asked about as
RUNNING and logs when it was asked and which ids: what is measured is the gateway, with
every job still in the queue.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

BATCH = 5000
DEAD = "gateway-that-died"
ROUNDS = 4
# squeue -h -t all -r -j ID,ID,... -O FIELDS: each id as a running, non-array job; and a
# line "<time> <ids>" in the log beside it
SQUEUE = """#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = -j ] && ids=$2; shift; done
printf '%s %s\\n' "$(date +%s.%N)" "$ids" >> "${0%/*}/asked.log"
IFS=,
for id in $ids; do printf '%s|N/A|%s|RUNNING|None|0|node1|\\n' "$id" "$id"; done
"""
CONFIG = """[gateway]
default_destination = "slurm"

[destinations.slurm]
scheduler = "slurm"
capacity = {n}
poll_interval_s = {poll}
commands = {{ squeue = "{squeue}" }}
"""


def fill(url: str, n: int, home: Path) -> float:
    """n RUNNING jobs with native ids, watched by a supervisor that is gone; each with its
    effective resources stored, as every submission since migration 0002 has."""
    from jobgate.config import Destination
    from jobgate.ids import new_id
    from jobgate.spec import JobRecord, JobSpec
    from jobgate.states import JobState
    from jobgate.store import Store
    from jobgate.store.tables import jobs

    store = Store(url)
    store.migrate()
    t0, now, spec = time.perf_counter(), datetime.now(UTC), JobSpec(script="true")
    resources = Destination(name="slurm", scheduler="slurm").effective(spec.resources)
    for first in range(0, n, BATCH):
        records = [
            JobRecord(
                id=new_id(),
                name=f"job-{i}",
                owner=f"user{i % 50}",
                destination="slurm",
                state=JobState.RUNNING,
                labels={"run": f"r{i % 1000}"},
                spec=spec,
                resources=resources,
                created_at=now,
            )
            for i in range(first, min(n, first + BATCH))
        ]
        store.insert_jobs([(r, "queued for slurm") for r in records])
        rows = [
            {"i": r.id, "n": str(first + k + 1), "d": str(home / "runs" / r.id)}
            for k, r in enumerate(records)
        ]
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id == sa.bindparam("i"))
            .values(native_id=sa.bindparam("n"), run_dir=sa.bindparam("d"), gateway_id=DEAD)
        )
        with store.writing() as conn:
            conn.execute(stmt, rows)
    store.close()
    return time.perf_counter() - t0


def memory_mb(pid: int) -> dict[str, float]:
    """A process's resident memory now and at its peak (VmRSS, VmHWM)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def restart(url: str, home: Path, n: int, poll_s: float) -> dict[str, Any]:
    """Start `jobgate serve` on the filled store; follow the stub's log until every job
    was asked about ROUNDS times; the server's memory then."""
    squeue, log = home / "squeue", home / "asked.log"
    squeue.write_text(SQUEUE)
    squeue.chmod(0o755)
    (home / "jobgate.toml").write_text(CONFIG.format(n=n, poll=poll_s, squeue=squeue))
    env = {**os.environ, "JOBGATE_HOME": str(home), "JOBGATE_DATABASE_URL": url}
    env["JOBGATE_CONFIG"] = str(home / "jobgate.toml")
    jobgate = Path(sys.executable).parent / "jobgate"
    argv = [str(jobgate), "serve", "--port", str(_free_port())]
    t0 = time.time()
    server = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    asked: dict[str, int] = {}
    first = covered = None
    try:
        seen = 0
        while min(asked.values(), default=0) < ROUNDS or len(asked) < n:
            if server.poll() is not None:
                raise RuntimeError(f"jobgate serve ended: {server.stderr.read()[-2000:]}")
            time.sleep(0.1)  # a benchmark watching a log from outside: no event to wait on
            lines = log.read_text().splitlines() if log.exists() else []
            for line in lines[seen:]:
                when, _, ids = line.partition(" ")
                first = first or float(when) - t0
                for i in ids.split(","):
                    asked[i] = asked.get(i, 0) + 1
                if covered is None and len(asked) >= n:
                    covered = float(when) - t0
            seen = len(lines)
        memory = memory_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(120)
    return {
        "jobs": n,
        "first_status_command_s": round(first or 0.0, 2),
        "all_asked_s": round(covered or 0.0, 2),
        "status_commands": len(log.read_text().splitlines()),
        "rounds": ROUNDS,
        "rss_mb": memory["VmRSS"],
        "peak_rss_mb": memory["VmHWM"],
    }


def measure(url: str, n: int, poll_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="jobgate-restart-") as tmp:
        fill_s = fill(url, n, Path(tmp))
        return {"fill_s": round(fill_s, 1), **restart(url, Path(tmp), n, poll_s)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--poll", type=float, default=2.0, help="the destination's poll interval")
    ap.add_argument("--stores", default="sqlite,postgresql")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from store_scale import pg_url

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="jobgate-restart-db-") as tmp:
        if "sqlite" in args.stores:
            results["sqlite"] = measure(f"sqlite:///{tmp}/jobgate.db", args.jobs, args.poll)
        if "postgresql" in args.stores and (url := pg_url()):
            results["postgresql"] = measure(url, args.jobs, args.poll)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
