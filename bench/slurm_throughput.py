#!/usr/bin/env python3
"""Slurm throughput: N trivial jobs through jobgate to the local Slurm, against a raw `sbatch`
loop that then waits on `squeue` until all are done, in one run. Prints a markdown table:
submit-rate ratio, time-to-all-done ratio, and the status commands jobgate ran per poll
interval (it may run at most ceil(N/500)). Needs the test cluster (scripts/slurm-up.sh).

    .venv/bin/python bench/slurm_throughput.py [--jobs 500] [--poll 0.5] [--partition debug]

Both sides poll at the same interval and submit the same job script body (`true`). The raw
side is what a user's shell loop does: one sbatch after the other.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from jobgate import Config, Destination, Gateway, JobState
from jobgate.backends.batch import BatchBackend

ACTIVE = "PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED"


def run_raw(n: int, poll_s: float, partition: str | None, tmp: Path) -> dict[str, float]:
    script = tmp / "job.sh"
    script.write_text("#!/bin/bash\ntrue\n")
    extra = ["-p", partition] if partition else []
    t0 = time.perf_counter()
    ids = []
    for _ in range(n):
        out = subprocess.run(
            ["sbatch", "--parsable", "-o", "/dev/null", *extra, str(script)],
            capture_output=True,
            text=True,
            check=True,
        )
        ids.append(out.stdout.strip().split(";")[0])
    submitted = time.perf_counter() - t0
    polls = 0
    while True:  # one squeue per interval for all ids, like jobgate's loop
        polls += 1
        out = subprocess.run(
            ["squeue", "-h", "-t", ACTIVE, "-j", ",".join(ids), "-o", "%i"],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode and "Invalid job id" not in out.stderr:
            raise RuntimeError(f"squeue: {out.stderr.strip()}")
        if not out.stdout.strip():  # none active (or all purged already: squeue refuses them)
            break
        time.sleep(poll_s)
    return {"submit_s": submitted, "done_s": time.perf_counter() - t0, "polls": polls}


def run_jobgate(n: int, poll_s: float, partition: str | None, tmp: Path) -> dict[str, Any]:
    dest = Destination(
        name="slurm",
        scheduler="slurm",
        capacity=n,
        poll_interval_s=poll_s,
        defaults={"partition": partition} if partition else {},
    )
    config = Config(
        home=tmp,
        database_url=f"sqlite:///{tmp / 'jobgate.db'}",
        destinations={"slurm": dest},
        default_destination="slurm",
    )
    with Gateway(config) as gw:
        backend = gw._core._runtime.supervisor.backends.get("slurm")  # type: ignore[union-attr]
        assert isinstance(backend, BatchBackend)
        window = _time_submits(backend)
        t0 = time.perf_counter()
        jobs = [gw.submit(script="true") for _ in range(n)]
        for job in jobs:  # handed to Slurm: sbatch has returned and the id is stored
            job.wait(600, until=lambda s: s not in (JobState.QUEUED, JobState.STAGING_IN))
        submitted = time.perf_counter() - t0
        ended = [job.wait(600) for job in jobs]
        done = time.perf_counter() - t0
        assert ended == [JobState.COMPLETED] * n, {s.value: ended.count(s) for s in set(ended)}
        return {
            "submit_s": submitted,
            "sbatch_window_s": window[-1] - window[0],
            "done_s": done,
            "polls": backend.poller.polls,
            "max_status": backend.poller.max_rounds_per_poll,
            "commands": dict(backend.commands),
        }


def _time_submits(backend: BatchBackend) -> list[float]:
    """First start and last end of the submit commands (sbatch, or shells running them),
    seen at the transport: the SDK's inserts and the supervisor's admission excluded."""
    window: list[float] = []
    run = backend.transport.run

    async def timed(argv: list[str], **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await run(argv, **kwargs)
        finally:
            if argv[0] in ("sbatch", "/bin/bash"):
                window[:] = [min(window[:1] or [start]), time.perf_counter()]

    backend.transport.run = timed  # type: ignore[method-assign]
    return window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--poll", type=float, default=0.5, help="poll interval, both sides")
    parser.add_argument("--partition")
    args = parser.parse_args()
    n = args.jobs
    with tempfile.TemporaryDirectory(prefix="jg-bench-raw-") as a:
        raw = run_raw(n, args.poll, args.partition, Path(a))
    with tempfile.TemporaryDirectory(prefix="jg-bench-jobgate-") as b:
        jg = run_jobgate(n, args.poll, args.partition, Path(b))
    bound = math.ceil(n / 500)
    status = jg["commands"].get("status", 0)
    rate_raw, rate_jg = n / raw["submit_s"], n / jg["submit_s"]
    print(f"## Slurm throughput: {n} trivial jobs, poll interval {args.poll} s\n")
    print("| measure | raw sbatch loop + squeue | jobgate | jobgate / raw | target |")
    print("|---|---|---|---|---|")
    print(
        f"| submit rate (jobs/s) | {rate_raw:.0f} | {rate_jg:.0f} "
        f"| {rate_jg / rate_raw:.2f} | >= 0.80 |"
    )
    print(
        f"| sbatch rate inside jobgate, first to last sbatch (jobs/s) | {rate_raw:.0f} "
        f"| {n / jg['sbatch_window_s']:.0f} | {n / jg['sbatch_window_s'] / rate_raw:.2f} | |"
    )
    print(
        f"| time to all done (s) | {raw['done_s']:.1f} | {jg['done_s']:.1f} "
        f"| {jg['done_s'] / raw['done_s']:.2f} | <= 1.20 |"
    )
    print(f"| status commands per poll interval (max) | 1 | {jg['max_status']} | | <= {bound} |")
    print(f"| polls (status rounds) | {raw['polls']:.0f} | {jg['polls']} | | |")
    print(f"| status commands, all rounds | {raw['polls']:.0f} | {status} | | |")
    print(f"\njobgate scheduler commands by kind: {jg['commands']}")


if __name__ == "__main__":
    main()
