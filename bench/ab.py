#!/usr/bin/env python3
"""A/B: two source trees of jobgate under the same load, interleaved round by round, so a
change can be judged on a noisy machine. Each tree is a `src` folder (e.g. a git worktree
of the commit before: `git worktree add /tmp/before HEAD~1`); the children import it
through PYTHONPATH. Loads: the local throughput child (1,000 /bin/true jobs) and the API
(POST, then GET, against a fresh `jobgate serve` per round on each store). Medians.

    .venv/bin/python bench/ab.py /tmp/before/src src [--rounds 3] [--no-api] [--no-local]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))


def local_round(src: str) -> list[float]:
    """[wall s, gateway CPU s, jobs CPU s] for 1,000 jobs (bench/local_throughput.py)."""
    env = {**os.environ, "PYTHONPATH": src}
    cmd = [sys.executable, str(HERE / "local_throughput.py"), "--child", "jobgate"]
    out = subprocess.run(
        [*cmd, "--jobs", "1000", "--capacity", "256"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: list[float] = json.loads(out.strip().splitlines()[-1])
    return result


def api_round(src: str, store: str) -> tuple[float, float]:
    """(POST req/s, GET req/s) against a `jobgate serve` of `src` (bench/api_throughput.py)."""
    import api_throughput as api
    from conftest import fresh_pg_database, pg_url

    os.environ["PYTHONPATH"] = src  # the server is started with this environment
    tmp = Path(tempfile.mkdtemp(prefix="jobgate-ab-"))
    url = fresh_pg_database(pg_url()) if store == "postgresql" else f"sqlite:///{tmp / 'db'}"
    with api.jobgate(tmp / "server", url) as srv:
        api.wrk("warm-up", srv, "/api/v1/jobs", api.post_lua(), 2, 64, tmp)
        api.some_ids(srv, tmp / "ids.txt")
        post = api.wrk("POST", srv, "/api/v1/jobs", api.post_lua(), 8, 64, tmp)
        get = api.wrk("GET", srv, "/", api.get_lua(tmp / "ids.txt"), 8, 64, tmp)
    return post.rate, get.rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="the first tree's src folder (the baseline)")
    ap.add_argument("b", help="the second tree's src folder")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-local", action="store_true")
    ap.add_argument("--no-api", action="store_true")
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    trees = {"A": str(Path(args.a).resolve()), "B": str(Path(args.b).resolve())}
    stores = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, src in trees.items():
            if not args.no_local:
                wall, gateway_cpu, _ = local_round(src)
                results.setdefault(f"{name} local wall s", []).append(wall)
                results.setdefault(f"{name} local gateway CPU s", []).append(gateway_cpu)
            for store in [] if args.no_api else stores:
                post, get = api_round(src, store)
                results.setdefault(f"{name} {store} POST req/s", []).append(post)
                results.setdefault(f"{name} {store} GET req/s", []).append(get)
    print(f"A = {trees['A']}\nB = {trees['B']}")
    for key, values in sorted(results.items(), key=lambda kv: kv[0][2:] + kv[0][0]):
        rounded = ", ".join(f"{v:,.2f}" if v < 100 else f"{v:,.0f}" for v in values)
        print(f"{key:32} median {statistics.median(values):10,.2f}   ({rounded})")


if __name__ == "__main__":
    main()
