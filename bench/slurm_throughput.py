#!/usr/bin/env python3
"""Slurm throughput: N trivial jobs through jobgate to the local Slurm, against a raw
`sbatch` loop that then waits on `squeue` until all are done, in interleaved rounds
(medians); then, at several numbers of tracked jobs, the status commands jobgate runs per
poll (at most ceil(N/500)). Needs the test cluster (scripts/slurm-up.sh).

    .venv/bin/python bench/slurm_throughput.py [--jobs 500] [--repeat 3] [--tracked 100,1000,5000]

Both sides poll at the same interval and submit the same job body (`true`). The raw side
is what a user's shell loop does: one sbatch after the other. jobgate submits one job per
`Gateway.submit` call, and (a second contender) all in one `Gateway.submit_many`. The
tracked-jobs part submits held jobs (`--hold`), so that N of them stay in the queue while
polls are counted, and cancels them after.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from jobgate import Config, Destination, Gateway, JobState
from jobgate.backends.batch import BatchBackend

ACTIVE = "PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED"
CHUNK = 500
HANDED = (JobState.QUEUED, JobState.STAGING_IN)


def run_raw(n: int, poll_s: float, tmp: Path) -> dict[str, float]:
    script = tmp / "job.sh"
    script.write_text("#!/bin/bash\ntrue\n")
    t0 = time.perf_counter()
    ids = []
    for _ in range(n):
        out = subprocess.run(
            ["sbatch", "--parsable", "-o", "/dev/null", str(script)],
            capture_output=True,
            text=True,
            check=True,
        )
        ids.append(out.stdout.strip().split(";")[0])
    submitted = time.perf_counter() - t0
    while True:  # one squeue per interval for all ids, like jobgate's loop
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
    return {"submit_s": submitted, "done_s": time.perf_counter() - t0}


def _gateway(tmp: Path, n: int, poll_s: float) -> Gateway:
    dest = Destination(
        name="slurm",
        scheduler="slurm",
        capacity=n,
        poll_interval_s=poll_s,
        allowed_directives=["--hold"],
    )
    config = Config(
        home=tmp,
        database_url=f"sqlite:///{tmp / 'jobgate.db'}",
        destinations={"slurm": dest},
        default_destination="slurm",
    )
    return Gateway(config)


def _backend(gw: Gateway) -> BatchBackend:
    backend = gw._core._runtime.supervisor.backends.get("slurm")  # type: ignore[union-attr]
    assert isinstance(backend, BatchBackend)
    return backend


def run_jobgate(n: int, poll_s: float, tmp: Path, many: bool) -> dict[str, Any]:
    with _gateway(tmp, n, poll_s) as gw:
        backend = _backend(gw)
        window = _time_submits(backend)
        t0 = time.perf_counter()
        specs = [{"script": "true"}] * n
        jobs = gw.submit_many(specs) if many else [gw.submit(s) for s in specs]
        ended = [job.wait(600) for job in jobs]
        done = time.perf_counter() - t0
        assert ended == [JobState.COMPLETED] * n, {s.value: ended.count(s) for s in set(ended)}
        # Submitted: from the first submit call until the last submit command returned, as
        # the raw loop's is until its last sbatch returned. (Until 2026-12-06 15:01 this
        # polled a count of unsubmitted jobs every 10 ms, ~0.8 ms of the gateway's CPU a
        # query, which the raw loop had nothing like to pay for.)
        return {
            "submit_s": window[-1] - t0,
            "sbatch_window_s": window[-1] - window[0],
            "done_s": done,
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
            if argv[0] in ("/usr/bin/env", "sbatch", "/bin/bash"):
                window[:] = [min(window[:1] or [start]), time.perf_counter()]

    backend.transport.run = timed  # type: ignore[method-assign]
    return window


def tracked(n: int, poll_s: float, polls: int, tmp: Path) -> dict[str, Any]:
    """n held jobs watched: status commands in each of `polls` whole polls (ceil(n/500)),
    counted in the loop around each poll, so that no poll is seen half done."""
    with _gateway(tmp, n, poll_s) as gw:
        backend = _backend(gw)
        spec = {"script": "true", "resources": {"directives": ["--hold"]}}
        jobs = gw.submit_many([spec] * n)
        native = [job.wait(600, until=lambda s: s not in HANDED) and job.native_id for job in jobs]
        per_poll = _count_polls(backend)
        try:
            t0 = time.perf_counter()
            while len(per_poll) < polls:
                time.sleep(0.05)  # a benchmark watching counters from outside
            took = time.perf_counter() - t0
        finally:
            for i in range(0, n, CHUNK):
                subprocess.run(["scancel", *filter(None, native[i : i + CHUNK])], check=False)
    counts = per_poll[:polls]
    return {
        "tracked": n,
        "polls": polls,
        "status_commands": sum(counts),
        "per_poll": sum(counts) / polls,
        "min_per_poll": min(counts),
        "max_per_poll": max(counts),
        "bound": math.ceil(n / CHUNK),
        "poll_s": took / polls,
    }


def _count_polls(backend: BatchBackend) -> list[int]:
    """Status commands run by each poll from now on, counted where the poll runs."""
    counts: list[int] = []
    poll = backend.poller.poll

    async def counted() -> None:
        before = backend.commands["status"]
        await poll()
        if backend.poller.watched:
            counts.append(backend.commands["status"] - before)

    backend.poller.poll = counted  # type: ignore[method-assign]
    return counts


def report(sides: dict[str, list[dict[str, Any]]], n: int, poll_s: float) -> None:
    """The throughput table: medians of the rounds, each side against the raw loop."""

    def med(side: str, key: str) -> float:
        return float(statistics.median(r[key] for r in sides[side]))

    raw_rate, raw_done = n / med("raw", "submit_s"), med("raw", "done_s")
    print(f"\n## Slurm throughput: {n} trivial jobs, poll {poll_s} s, {len(sides['raw'])} rounds\n")
    print("| measure | raw sbatch loop + squeue | jobgate (submit) | jobgate (submit_many) |")
    print("|---|---:|---:|---:|")
    rates = [n / med(s, "submit_s") for s in ("jobgate", "submit_many")]
    dones = [med(s, "done_s") for s in ("jobgate", "submit_many")]
    windows = [n / med(s, "sbatch_window_s") for s in ("jobgate", "submit_many")]
    print(f"| submit rate (jobs/s) | {raw_rate:.0f} | {rates[0]:.0f} | {rates[1]:.0f} |")
    print(
        f"| ... / raw (target >= 1.0, goal 1.5) | 1.00 | {rates[0] / raw_rate:.2f} "
        f"| {rates[1] / raw_rate:.2f} |"
    )
    print(
        f"| sbatch rate, first to last sbatch | {raw_rate:.0f} | {windows[0]:.0f} "
        f"| {windows[1]:.0f} |"
    )
    print(f"| time to all done (s) | {raw_done:.1f} | {dones[0]:.1f} | {dones[1]:.1f} |")
    print(
        f"| ... / raw (target <= 1.05) | 1.00 | {dones[0] / raw_done:.2f} "
        f"| {dones[1] / raw_done:.2f} |"
    )
    worst = max(r["max_status"] for s in ("jobgate", "submit_many") for r in sides[s])
    print(f"| status commands in one poll (max) | 1 | {worst} | | ")
    print(f"\njobgate commands, last round: {sides['jobgate'][-1]['commands']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--poll", type=float, default=0.5, help="poll interval, both sides")
    parser.add_argument("--tracked", default="100,1000,5000", help="N for status counts")
    args = parser.parse_args()
    n = args.jobs
    sides: dict[str, list[dict[str, Any]]] = {"raw": [], "jobgate": [], "submit_many": []}
    # Files stay until the end: deleting a round's run directories would slow the next
    # contender's file creations on this VM's unjournaled ext4 (bench/local_throughput.py),
    # and only jobgate creates files per job.
    base = tempfile.TemporaryDirectory(prefix="jg-bench-slurm-")
    for rnd in range(args.repeat):
        order = list(sides)[rnd % 3 :] + list(sides)[: rnd % 3]
        for side in order:
            tmp = Path(tempfile.mkdtemp(prefix=f"{side}-", dir=base.name))
            if side == "raw":
                result = run_raw(n, args.poll, tmp)
            else:
                result = run_jobgate(n, args.poll, tmp, many=side == "submit_many")
            sides[side].append(result)
            print(
                f"round {rnd + 1} {side:<12} submit {n / result['submit_s']:6.0f} jobs/s,"
                f" all done {result['done_s']:6.1f} s",
                flush=True,
            )

    if args.repeat:
        report(sides, n, args.poll)
    print("\n| tracked jobs | polls | status commands | per poll | min, max in one poll | bound |")
    print("|---:|---:|---:|---:|---:|---:|")
    for count in (int(x) for x in args.tracked.split(",") if x):
        t = tracked(count, args.poll, 5, Path(tempfile.mkdtemp(dir=base.name)))
        print(
            f"| {count:,} | {t['polls']} | {t['status_commands']} | {t['per_poll']:.1f} "
            f"| {t['min_per_poll']}, {t['max_per_poll']} | {t['bound']} |",
            flush=True,
        )
    base.cleanup()


if __name__ == "__main__":
    main()
