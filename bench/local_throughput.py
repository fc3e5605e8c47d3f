#!/usr/bin/env python3
"""Local throughput: N `/bin/true` jobs through jobgate, PSI/J's local executor, and a raw
`os.posix_spawn` loop (the ceiling); plus single-job latency (submit -> final state).

Every measurement runs in a fresh child process (this script with `--child`), so no
framework's threads, signal handlers (PSI/J installs a SIGCHLD handler on import) or heap
disturb another's. Rounds are interleaved, with the order rotated each round, and the
medians over the rounds are reported. The contenders' files stay until the whole run
ends: on an ext4 without a journal (this VM's), creating a file skips inodes freed in
the last ~30 s, one buffer lookup each, so deleting a round's thousands of files would
make the next contender's every file creation slower (seen: 0.05 -> 0.6 ms a file).
Run from the repository root:

    .venv/bin/python bench/local_throughput.py [--jobs 1000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jobgate import Config, Destination, Gateway, JobSpec, JobState

TRUE = "/bin/true"
BIG_CAPACITY = 256  # well above what this benchmark can keep in flight: never throttles
LATENCY_JOBS = 50


def _raise_fd_limit() -> None:  # PSI/J keeps a pipe per job; give everyone the same limit
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the contenders (each runs in its own child process) ----------------------------------


def run_spawn(n: int, _tmp: Path) -> list[float]:
    """The ceiling: spawn all, then reap all. No wrapper, no files, no bookkeeping."""
    os.waitpid(os.posix_spawn(TRUE, [TRUE], os.environ), 0)  # warm-up

    def batch() -> None:
        pids = [os.posix_spawn(TRUE, [TRUE], os.environ) for _ in range(n)]
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0

    return _measured(batch)


def run_jobgate(n: int, tmp: Path, capacity: int, latency: bool, many: bool) -> list[float]:
    config = Config(
        home=tmp,
        database_url=f"sqlite:///{tmp / 'jobgate.db'}",
        destinations={"local": Destination(name="local", capacity=capacity)},
    )
    spec = JobSpec(executable=TRUE)
    with Gateway(config) as gw:
        assert gw.submit(spec).wait(60) == JobState.COMPLETED  # warm-up
        if latency:
            return [_timed(lambda: gw.submit(spec).wait(60), JobState.COMPLETED) for _ in range(n)]

        def batch() -> None:
            jobs = gw.submit_many([spec] * n) if many else [gw.submit(spec) for _ in range(n)]
            states = [job.wait(600) for job in jobs]
            assert all(s == JobState.COMPLETED for s in states), {str(s) for s in states}

        return _measured(batch)


def run_psij(n: int, tmp: Path, latency: bool) -> list[float]:
    import psij  # here only: its import installs a SIGCHLD handler

    config = psij.JobExecutorConfig(work_directory=tmp / "work")
    ex = psij.JobExecutor.get_instance("local", config=config)

    def job() -> Any:
        j = psij.Job(psij.JobSpec(executable=TRUE, directory=tmp))
        ex.submit(j)
        return j

    def final(j: Any) -> Any:
        return j.wait().state

    assert final(job()) == psij.JobState.COMPLETED  # warm-up (deploys the launcher scripts)
    if latency:
        return [_timed(lambda: final(job()), psij.JobState.COMPLETED) for _ in range(n)]

    def batch() -> None:
        jobs = [job() for _ in range(n)]
        states = [final(j) for j in jobs]
        assert all(s == psij.JobState.COMPLETED for s in states), {str(s) for s in states}

    return _measured(batch)


def _cpu() -> tuple[float, float]:
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _measured(batch: Any) -> list[float]:
    """[wall s, CPU s of this (gateway) process, CPU s of the job processes it reaped]"""
    (me0, kids0), t0 = _cpu(), time.perf_counter()
    batch()
    took, (me1, kids1) = time.perf_counter() - t0, _cpu()
    return [took, me1 - me0, kids1 - kids0]


def _timed(fn: Any, expect: Any) -> float:
    t0 = time.perf_counter()
    state = fn()
    took = time.perf_counter() - t0
    assert state == expect, state
    return took


def child(kind: str, n: int, capacity: int, base: str) -> list[float]:
    _raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=base))  # removed by the driver, last
    os.environ["HOME"] = str(tmp)  # nothing may write under the real home (~/.psij, ...)
    if kind == "spawn":
        return run_spawn(n, tmp)
    if kind.startswith("jobgate"):
        latency, many = kind.endswith("latency"), kind.endswith("many")
        return run_jobgate(n, tmp, capacity, latency, many)
    return run_psij(n, tmp, latency=kind.endswith("latency"))


# -- the driver ---------------------------------------------------------------------------


def measure(kind: str, n: int, capacity: int, base: str) -> list[float]:
    cmd = [sys.executable, __file__, "--child", kind, "--jobs", str(n), "--capacity", str(capacity)]
    cmd += ["--base", base]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800).stdout
    result: list[float] = json.loads(out.strip().splitlines()[-1])
    return result


def machine() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1000, help="jobs per throughput run")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds (medians)")
    ap.add_argument(
        "--capacity",
        type=int,
        default=BIG_CAPACITY,
        help=f"jobgate's large capacity (default {BIG_CAPACITY})",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object instead")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.jobs, args.capacity, args.base)))
        return
    base = tempfile.mkdtemp(prefix="jobgate-bench-")
    try:
        report(args, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def report(args: argparse.Namespace, base: str) -> None:
    ncpu = os.cpu_count() or 1
    big = f"jobgate (capacity {args.capacity})"
    small = f"jobgate (capacity {ncpu} = nproc)"
    runs: list[tuple[str, str, int, int]] = [  # label, child kind, jobs, capacity
        ("raw posix_spawn (ceiling)", "spawn", args.jobs, 0),
        ("PSI/J local executor", "psij", args.jobs, 0),
        (big, "jobgate", args.jobs, args.capacity),
        (f"{big[:-1]}, submit_many)", "jobgate-many", args.jobs, args.capacity),
        (small, "jobgate", args.jobs, ncpu),
        ("jobgate latency", "jobgate-latency", LATENCY_JOBS, args.capacity),
        ("PSI/J latency", "psij-latency", LATENCY_JOBS, 0),
    ]
    info = machine()
    if not args.json:
        print(
            f"date     {info['date']}\nmachine  {info['nproc']} CPUs, {info['cpu']}, "
            f"Linux {info['kernel']}, Python {info['python']}"
        )
        print(
            f"jobs     {args.jobs} x {TRUE}, submit all then wait all; "
            f"{args.repeat} interleaved rounds, medians\n"
        )
    rounds: dict[str, list[list[float]]] = {r[0]: [] for r in runs}  # [jobs/s, CPU ms/job x2]
    lat: dict[str, list[float]] = {r[0]: [] for r in runs}
    for rnd in range(args.repeat):
        shift = rnd % len(runs)
        for label, kind, n, cap in runs[shift:] + runs[:shift]:
            values = measure(kind, n, cap, base)
            if kind.endswith("latency"):
                lat[label] += values
                note = f"p50 {pct(values, 0.5) * 1e3:7.1f} ms"
            else:
                took, own, kids = values
                rounds[label].append([n / took, own * 1e3 / n, kids * 1e3 / n])
                note = f"{n / took:7.0f} jobs/s"
            if not args.json:
                print(f"  round {rnd + 1}  {label:<34} {note}", flush=True)

    med = {
        k: [statistics.median(col) for col in zip(*v, strict=True)] for k, v in rounds.items() if v
    }
    ceiling, psij_rate = med[runs[0][0]][0], med[runs[1][0]][0]
    tput = {
        k: {
            "jobs_per_s": m[0],
            "vs_psij": m[0] / psij_rate,
            "vs_ceiling": m[0] / ceiling,
            "gateway_cpu_ms_per_job": m[1],
            "job_cpu_ms_per_job": m[2],
            "rounds_jobs_per_s": [r[0] for r in rounds[k]],
        }
        for k, m in med.items()
    }
    latency = {
        k: {"p50_ms": pct(v, 0.5) * 1e3, "p90_ms": pct(v, 0.9) * 1e3, "n": len(v)}
        for k, v in lat.items()
        if v
    }
    jg_ratio, jg_p50 = tput[big]["vs_psij"], latency["jobgate latency"]["p50_ms"]
    result = {
        "machine": info,
        "jobs": args.jobs,
        "repeat": args.repeat,
        "capacity": {"large": args.capacity, "nproc": ncpu},
        "throughput": tput,
        "latency": latency,
        "targets": {
            "jobgate_vs_psij": jg_ratio,
            "min": 1.5,
            "goal": 3.0,
            "p50_ms": jg_p50,
            "p50_ms_max": 10.0,
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"\n{'throughput (median)':<36} {'jobs/s':>7} {'x PSI/J':>8} {'x ceiling':>10}"
        f"   CPU ms/job: {'gateway':>7} {'jobs':>6}"
    )
    for label, t in tput.items():
        print(
            f"  {label:<34} {t['jobs_per_s']:7.0f} {t['vs_psij']:8.2f} {t['vs_ceiling']:10.3f}"
            f"               {t['gateway_cpu_ms_per_job']:7.2f} {t['job_cpu_ms_per_job']:6.2f}"
        )
    print(f"\n{'latency, submit -> final':<36} {'p50 ms':>7} {'p90 ms':>8} {'n':>6}")
    for label, d in latency.items():
        print(f"  {label:<34} {d['p50_ms']:7.1f} {d['p90_ms']:8.1f} {d['n']:6d}")
    print(
        f"\ntargets: jobgate >= 1.5x PSI/J (goal 3x): {jg_ratio:.2f}x "
        f"{'PASS' if jg_ratio >= 1.5 else 'FAIL'}; p50 <= 10 ms: {jg_p50:.1f} ms "
        f"{'PASS' if jg_p50 <= 10 else 'FAIL'}"
    )
    print("(gateway = CPU of the submitting process; jobs = CPU of the processes it reaped)")


if __name__ == "__main__":
    main()
