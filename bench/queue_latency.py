#!/usr/bin/env python3
"""Drop-box queue latency: N job files put in an S3 queue (the test S3 server), time from
each file's put to its job's start, with one and with two `jobgate serve` sharing the
queue on one PostgreSQL (both from scripts/services-up.sh). Rounds are interleaved;
medians over rounds are reported. Run from the repository root:

    .venv/bin/python bench/queue_latency.py [--files 1000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from api_throughput import fresh_pg_database  # bench/ is on the path: run as a script

SERVICES = Path("/var/lib/jobgate-test/services.env")
JOBGATE = str(Path(sys.executable).with_name("jobgate"))


def services() -> dict[str, str]:
    env = dict(
        line.split("=", 1)
        for line in SERVICES.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {k: v.strip('"') for k, v in env.items()}


def serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A `jobgate serve` logging to a file (a pipe nobody reads would stall it)."""
    with log.open("wb") as out:
        proc = subprocess.Popen([JOBGATE, "serve", "--no-api"], env=env, stderr=out)
    deadline = time.time() + 60
    while " running: " not in log.read_text():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"jobgate serve did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return proc


def one_round(n: int, gateways: int, svc: dict[str, str]) -> dict[str, Any]:
    import s3fs

    endpoint = svc["JOBGATE_TEST_S3_ENDPOINT"]
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="testing", secret="testing")
    bucket = f"jg-bench-{uuid.uuid4().hex[:10]}"
    fs.mkdir(bucket)
    url = fresh_pg_database(svc["JOBGATE_TEST_PG_URL"])
    with tempfile.TemporaryDirectory(prefix="jobgate-bench-") as tmp:
        config = Path(tmp, "jobgate.toml")
        config.write_text(
            "[destinations.local]\ncapacity = 64\n"
            f'[queues.bench]\nurl = "s3://{bucket}/q"\npoll_interval_s = 0.2\n'
            f'storage_options = {{ endpoint_url = "{endpoint}", '
            'key = "testing", secret = "testing" }\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBGATE_")}
        env |= {
            "JOBGATE_HOME": f"{tmp}/home",
            "JOBGATE_DATABASE_URL": url,
            "JOBGATE_CONFIG": str(config),
        }
        procs = [serve(env, Path(tmp, f"serve{i}.log")) for i in range(gateways)]
        try:
            put_at: dict[str, float] = {}
            t0 = time.time()
            for i in range(n):
                key = f"j{i:05}.sh"
                fs.pipe_file(f"{bucket}/q/pending/{key}", b"#!/bin/sh\ntrue\n")
                put_at[key] = time.time()
            put_s = time.time() - t0
            engine = sa.create_engine(url)
            started: dict[str, float] = {}
            deadline = time.time() + 600
            while len(started) < n and time.time() < deadline:
                time.sleep(0.2)
                with engine.connect() as conn:
                    rows = conn.execute(
                        sa.text(
                            "SELECT l.value, j.started_at FROM jobs j JOIN job_labels l "
                            "ON l.job_id = j.id AND l.key = 'queue_key' "
                            "WHERE j.started_at IS NOT NULL"
                        )
                    ).all()
                started = {k: s for k, s in rows}
            engine.dispose()
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(60)
    waits = sorted(started[k] - put_at[k] for k in started)
    return {
        "started": len(started),
        "put_s": put_s,
        "all_started_s": max(started.values()) - t0 if started else float("nan"),
        "p50_s": statistics.median(waits),
        "p90_s": waits[int(len(waits) * 0.9) - 1],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    svc = services()
    results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for r in range(args.repeat):
        for gateways in (1, 2) if r % 2 == 0 else (2, 1):
            res = one_round(args.files, gateways, svc)
            results[gateways].append(res)
            print(f"  round {r + 1}  {gateways} gateway(s): {res}", file=sys.stderr)
    summary = {
        g: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for g, rs in results.items()
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs "
        f"({re.sub(' +', ' ', cpu)})"
    )
    print(
        f"{args.files} files, S3 (moto) queue, PostgreSQL store, poll 0.2 s; "
        f"medians of {args.repeat} rounds"
    )
    print("gateways  started  put all (s)  all started (s)  put->started p50 (s)  p90 (s)")
    for g, s in summary.items():
        print(
            f"{g:>8}  {s['started']:>7.0f}  {s['put_s']:>11.2f}  {s['all_started_s']:>15.2f}  "
            f"{s['p50_s']:>20.2f}  {s['p90_s']:>7.2f}"
        )


if __name__ == "__main__":
    main()
