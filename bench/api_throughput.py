#!/usr/bin/env python3
"""API throughput: `POST /api/v1/jobs` and `GET /api/v1/jobs/{id}` of a real `jobgate serve`
(SQLite, and PostgreSQL when the test server is configured), loaded by wrk with 64
connections; in the same run, a bare FastAPI endpoint (uvicorn, loop="asyncio", as serve)
that only validates the same body with `jobgate.JobSpec`: the ceiling. Then the server's
RSS with 10,000 non-final jobs in its store.

The jobs go to a destination of capacity 1 whose slot one `sleep` job holds, so every
benchmark job stays QUEUED (non-final, in the store, never run): the numbers are the API's
and the store's, not process spawning's. wrk runs on one thread (one core), the server on
the other. Run from the repository root (needs `wrk`: apt-get install wrk):

    .venv/bin/python bench/api_throughput.py [--seconds 10] [--repeat 3] [--profile] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from jobgate import JobSpec

JOBGATE = str(Path(sys.executable).with_name("jobgate"))
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
SERVICES_ENV = Path("/var/lib/jobgate-test/services.env")
BODY = {"executable": "/bin/true", "destination": "bench", "labels": {"bench": "api"}}
CONFIG = """\
[destinations.bench]
capacity = 1
"""
ACTIVE_JOBS = 10_000
TARGETS = {"ratio": 0.25, "p99_ms": 50.0, "rss_mb": 250.0}

_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bad_status": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d, "mean_us": %.1f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


# -- the ceiling: bare FastAPI, the same body, the same validation --------------------------


def ceiling_app() -> FastAPI:
    # FastAPI's telemetry off, as in jobgate's app: the ceiling is the higher for it.
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.post("/api/v1/jobs", status_code=201)
    async def submit(request: Request) -> Response:
        spec = JobSpec.model_validate_json(await request.body())
        return Response(spec.model_dump_json(), status_code=201, media_type="application/json")

    return app


def run_ceiling(port: int) -> None:
    import uvicorn

    uvicorn.run(ceiling_app(), host="127.0.0.1", port=port, loop="asyncio", access_log=False)


# -- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _started(cmd: list[str], env: dict[str, str], ready: str) -> Server:
    """Start `cmd`; return once its stderr shows `ready` (and keep draining it)."""
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    srv = Server(proc, "")
    for line in proc.stderr:
        srv.log.append(line)
        if ready in line:
            break
    else:
        raise SystemExit(f"{cmd[0]} exited with {proc.wait()}:\n{''.join(srv.log)}")
    threading.Thread(target=lambda: srv.log.extend(proc.stderr or ()), daemon=True).start()
    return srv


@contextlib.contextmanager
def ceiling() -> Iterator[Server]:
    port = free_port()
    cmd = [sys.executable, __file__, "--ceiling-port", str(port)]
    srv = _started(cmd, dict(os.environ), "Uvicorn running on")  # logged once bound
    srv.url = f"http://127.0.0.1:{port}"
    try:
        yield srv
    finally:
        srv.stop()


@contextlib.contextmanager
def jobgate(tmp: Path, database_url: str) -> Iterator[Server]:
    """`jobgate serve` on this store, a token, and the one slot taken by a held job."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "jobgate.toml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBGATE_")}
    env |= {
        "JOBGATE_HOME": str(tmp / "home"),
        "JOBGATE_DATABASE_URL": database_url,
        "JOBGATE_CONFIG": str(tmp / "jobgate.toml"),
    }
    port = free_port()
    srv = _started([JOBGATE, "serve", "--port", str(port)], env, " running: ")
    srv.url = f"http://127.0.0.1:{port}"
    holder = None
    try:
        token = subprocess.run(
            [JOBGATE, "token", "create", "--user", "bench"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        srv.headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(headers=srv.headers, timeout=60) as c:  # it listens by " running: "
            c.get(f"{srv.url}/api/v1/healthz").raise_for_status()
            res = c.post(
                f"{srv.url}/api/v1/jobs",
                json={"executable": "/bin/sleep", "arguments": ["600"], "destination": "bench"},
            )
            holder = res.json()["id"]
            _until_running(c, srv.url, holder)
        yield srv
    finally:
        if holder is not None:
            httpx.delete(f"{srv.url}/api/v1/jobs/{holder}", headers=srv.headers, timeout=60)
            _until_final(srv, holder)
        srv.stop()


def _until_running(c: httpx.Client, url: str, job_id: str) -> None:
    """Follow the job's event stream until it is RUNNING."""
    with c.stream("GET", f"{url}/api/v1/jobs/{job_id}/events", params={"follow": "true"}) as r:
        for line in r.iter_lines():
            if line in ("event: RUNNING", "event: end"):
                return


def _until_final(srv: Server, job_id: str) -> None:
    with (
        httpx.Client(headers=srv.headers, timeout=60) as c,
        c.stream("GET", f"{srv.url}/api/v1/jobs/{job_id}/events", params={"follow": "true"}) as r,
    ):
        for line in r.iter_lines():
            if line == "event: end":
                return


# -- load -------------------------------------------------------------------------------------


@dataclass
class Load:
    name: str
    requests: int
    seconds: float
    bad: int  # non-2xx answers and socket errors
    p50_ms: float
    p99_ms: float
    server_cpu: float  # cores the server used, on average
    client_cpu: float

    @property
    def rate(self) -> float:
        return (self.requests - self.bad) / self.seconds


def wrk(
    name: str,
    server: Server,
    path: str,
    lua: str,
    seconds: float,
    connections: int,
    tmp: Path,
) -> Load:
    print(f"  {name} ...", file=sys.stderr, flush=True)
    script = tmp / f"{uuid.uuid4().hex}.lua"
    headers = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in server.headers.items())
    script.write_text(headers + lua + _WRK_DONE)
    cpu0, kids0 = _cpu_seconds(server.pid), _children_cpu()
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            server.url + path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    wall = summary["duration_us"] / 1e6
    return Load(
        name,
        summary["requests"],
        wall,
        summary["bad_status"] + summary["socket_errors"],
        summary["p50_us"] / 1000,
        summary["p99_us"] / 1000,
        (_cpu_seconds(server.pid) - cpu0) / wall,
        (_children_cpu() - kids0) / wall,
    )


def post_lua(limit: int | None = None) -> str:
    lua = (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = '{json.dumps(BODY)}'\n"
    )
    if limit is not None:  # stop once `limit` answers came back (to fill the store)
        lua += (
            "local n = 0\n"
            "response = function(status, headers, body)\n"
            f"  n = n + 1; if n >= {limit} then wrk.thread:stop() end\n"
            "end\n"
        )
    return lua


def get_lua(ids_file: Path) -> str:
    return (
        "local ids = {}\n"
        f'for line in io.lines("{ids_file}") do ids[#ids + 1] = line end\n'
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        '  return wrk.format("GET", "/api/v1/jobs/" .. ids[i % #ids + 1])\n'
        "end\n"
    )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size in MB."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def non_final(server: Server) -> int:
    rows = httpx.get(f"{server.url}/api/v1/destinations", headers=server.headers).json()
    return sum(d["queued"] + d["active"] for d in rows)


def some_ids(server: Server, path: Path) -> None:
    res = httpx.get(
        f"{server.url}/api/v1/jobs", params={"limit": 1000}, headers=server.headers, timeout=60
    )
    path.write_text("\n".join(j["id"] for j in res.json()["items"]) + "\n")


# -- profile ----------------------------------------------------------------------------------


@dataclass
class Profile:
    """py-spy samples of the server's event-loop thread, idle ones included (waiting on
    the database blocks the loop too): per function, inclusive and self counts."""

    total: int = 0
    inclusive: Counter[str] = field(default_factory=Counter)
    self: Counter[str] = field(default_factory=Counter)


def profile(pid: int, seconds: float, out: Path) -> Profile:
    subprocess.run(
        [
            *(PY_SPY, "record", "--pid", str(pid), "--duration", str(int(seconds))),
            *("--rate", "250", "--format", "raw", "--output", str(out)),
            *("--idle", "--nonblocking"),
        ],
        capture_output=True,
        check=True,
    )
    prof = Profile()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame(f) for f in stack.split(";")]
        if not any(f.startswith("serve_forever ") for f in frames):
            continue  # not the event loop's thread
        n = int(count)
        prof.total += n
        prof.self[frames[-1]] += n
        for frame in set(frames):
            prof.inclusive[frame] += n
    return prof


def _frame(raw: str) -> str:
    """'insert_job (jobgate/store/store.py:133)' -> 'insert_job (jobgate/store/store.py)'."""
    name, _, where = raw.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


# -- the run ----------------------------------------------------------------------------------


def pg_url() -> str | None:
    url = os.environ.get("JOBGATE_TEST_PG_URL")
    if not url and SERVICES_ENV.exists():
        for line in SERVICES_ENV.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "JOBGATE_TEST_PG_URL":
                url = value.strip().strip('"')
    return url or None


def fresh_pg_database(base_url: str) -> str:
    import sqlalchemy as sa

    name = f"jg_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return base_url.rsplit("/", 1)[0] + "/" + name


@dataclass
class StoreResult:
    store: str
    ceiling: Load
    post: Load
    get: Load
    jobs: int
    rss: tuple[float, float]
    profile: Profile | None = None
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # rate: min, max


def _profile_into(out: list[Profile], pid: int, seconds: int, tmp: Path) -> None:
    out.append(profile(pid, seconds - 1, tmp / "spy.txt"))


def run_store(store: str, url: str, args: argparse.Namespace, tmp: Path) -> StoreResult:
    """Rounds of (ceiling POST, jobgate POST, jobgate GET), interleaved so that the
    machine's other load hits all three alike; each reported load is its median round."""
    secs, conns = args.seconds, args.connections
    rounds: list[tuple[Load, Load, Load]] = []
    prof = None
    with ceiling() as top, jobgate(tmp / store, url) as srv:
        wrk("warm-up", top, "/api/v1/jobs", post_lua(), 2, conns, tmp)
        wrk("warm-up", srv, "/api/v1/jobs", post_lua(), 2, conns, tmp)
        some_ids(srv, tmp / "ids.txt")
        for i in range(args.repeat):
            top_load = wrk("ceiling", top, "/api/v1/jobs", post_lua(), secs, conns, tmp)
            spy: threading.Thread | None = None
            holder: list[Profile] = []
            if args.profile and i == args.repeat - 1:
                spy = threading.Thread(target=_profile_into, args=(holder, srv.pid, secs, tmp))
                spy.start()
            post = wrk("POST /api/v1/jobs", srv, "/api/v1/jobs", post_lua(), secs, conns, tmp)
            if spy is not None:
                spy.join()
                prof = holder[0]
            get = wrk("GET /api/v1/jobs/{id}", srv, "/", get_lua(tmp / "ids.txt"), secs, conns, tmp)
            rounds.append((top_load, post, get))
        medians = [sorted(r, key=lambda x: x.rate)[len(r) // 2] for r in zip(*rounds, strict=True)]
        while (missing := ACTIVE_JOBS - non_final(srv)) > 0:
            # wrk's threads stop at the limit but wrk itself only at its duration: size both.
            secs_needed = math.ceil(missing / max(medians[1].rate, 1.0)) + 1
            wrk("fill", srv, "/api/v1/jobs", post_lua(missing), secs_needed, conns, tmp)
        jobs = non_final(srv)
        rss = rss_mb(srv.pid)
        errors = [line for line in srv.log if " ERROR " in line or "Traceback" in line]
        if errors:
            print("".join(errors), file=sys.stderr)
    ranges = {
        name: (min(x.rate for x in r), max(x.rate for x in r))
        for name, r in zip(("ceiling", "post", "get"), zip(*rounds, strict=True), strict=True)
    }
    top_load, post, get = medians
    return StoreResult(store, top_load, post, get, jobs, rss, prof, ranges)


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }


def report(results: list[StoreResult], info: dict[str, Any], args: argparse.Namespace) -> None:
    la = ", ".join(f"{x:.1f}" for x in info["load_average"])
    print(f"\n## API throughput ({info['date']})\n")
    print(
        f"{info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, load average "
        f"at start {la}; wrk -t1 -c{args.connections}, {args.seconds:g} s per measurement, "
        f"medians of {args.repeat} interleaved rounds.\n"
    )
    print(
        "| load | store | ok req/s (range) | p50 ms | p99 ms | of ceiling | server CPU | errors |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for key, load in (("ceiling", r.ceiling), ("post", r.post), ("get", r.get)):
            ratio = load.rate / r.ceiling.rate
            name = "ceiling: FastAPI + JobSpec" if load is r.ceiling else load.name
            low, high = r.ranges[key]
            print(
                f"| {name} | {r.store} | {load.rate:,.0f} ({low:,.0f}-{high:,.0f}) | "
                f"{load.p50_ms:.1f} | {load.p99_ms:.1f} | {ratio:.0%} | {load.server_cpu:.2f} "
                f"| {load.bad} |"
            )
    print("\n| store | non-final jobs | server RSS MB (peak) |")
    print("|---|---:|---:|")
    for r in results:
        print(f"| {r.store} | {r.jobs:,} | {r.rss[0]:.0f} ({r.rss[1]:.0f}) |")
    print("\nTargets (the issue's): submit >= 25% of the ceiling, p99 < 50 ms, RSS <= 250 MB.")
    print(
        f"With {args.connections} connections always busy the mean latency is "
        f"{args.connections} / throughput: p99 < 50 ms needs well over "
        f"{args.connections / 0.05:,.0f} req/s."
    )
    for r in results:
        ratio = r.post.rate / r.ceiling.rate
        checks = {
            "submit ratio": ratio >= TARGETS["ratio"],
            "POST p99": r.post.p99_ms < TARGETS["p99_ms"],
            "GET p99": r.get.p99_ms < TARGETS["p99_ms"],
            "RSS": r.rss[0] <= TARGETS["rss_mb"],
        }
        verdict = ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in checks.items())
        print(f"- {r.store}: {verdict}")
    for r in results:
        if r.profile:
            print_profile(r)


def print_profile(r: StoreResult) -> None:
    prof = r.profile
    if prof is None or not prof.total:
        return
    print(f"\nThe event loop under POST load ({r.store}; py-spy, idle samples included):\n")
    print("| inclusive | self | function |")
    print("|---:|---:|---|")
    shown = [
        f
        for f, _ in prof.inclusive.most_common()
        if any(k in f for k in ("jobgate/", "psycopg", "sqlalchemy/engine/default", "selectors"))
        and not f.startswith(("serve", "main ", "_Group", "<module>", "serve_forever"))
    ][:14]
    shown += [f for f, _ in prof.self.most_common(6) if f not in shown]
    for f in shown:
        print(f"| {prof.inclusive[f] / prof.total:.0%} | {prof.self[f] / prof.total:.0%} | `{f}` |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--profile", action="store_true", help="py-spy the server under POST")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print the raw numbers")
    parser.add_argument("--ceiling-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ceiling_port:
        run_ceiling(args.ceiling_port)
        return
    info = machine()
    pg = None if args.no_postgres else pg_url()
    if not pg:
        print("no PostgreSQL (JOBGATE_TEST_PG_URL): SQLite only", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="jobgate-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        stores = {"sqlite": f"sqlite:///{tmp / 'jobgate.db'}"}
        if pg:
            stores["postgresql"] = fresh_pg_database(pg)
        for store, url in stores.items():
            print(f"{store}: measuring ...", file=sys.stderr)
            results.append(run_store(store, url, args, tmp))
    report(results, info, args)
    if args.json:
        print(json.dumps([_raw(r) for r in results], indent=2))


def _raw(r: StoreResult) -> dict[str, Any]:
    loads = {x.name: x.__dict__ | {"rate": x.rate} for x in (r.ceiling, r.post, r.get)}
    return {"store": r.store, "loads": loads, "jobs": r.jobs, "rss_mb": r.rss}


if __name__ == "__main__":
    main()
