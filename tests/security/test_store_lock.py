"""A store held by another process for 30 s never freezes the server: reads and /healthz
answer throughout (it says the store takes no writes), writes answer 503 with Retry-After
within a few seconds, and every job the server accepted (201) is there afterwards."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest

from api.conftest import Server, is_problem

HOLD_S = 30.0  # the scenario: another process keeps the store's write lock this long
QUICK = httpx.Timeout(10.0)  # an answer, not a hang: writers give up after 3 s

SQLITE_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""
PG_HOLDER = """
import sys, psycopg
conn = psycopg.connect(sys.argv[1].replace("postgresql+psycopg", "postgresql"))
conn.execute("LOCK TABLE jobs, job_events IN EXCLUSIVE MODE")  # readers pass, writers wait
print("locked", flush=True)
sys.stdin.readline()
conn.rollback()
"""

pytestmark = pytest.mark.slow


def _hold(database_url: str) -> subprocess.Popen[str]:
    sqlite = database_url.startswith("sqlite")
    target = database_url.split("///", 1)[1] if sqlite else database_url
    holder = subprocess.Popen(
        [sys.executable, "-c", SQLITE_HOLDER if sqlite else PG_HOLDER, target],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def test_a_store_locked_for_30_s_leaves_the_server_answering(
    server: Server, database_url: str
) -> None:
    alice = server.client("alice")
    accepted = [server.submit("alice", script="true")["id"]]
    holder = _hold(database_url)
    answers: Counter[str] = Counter()
    try:
        end = time.monotonic() + HOLD_S
        while time.monotonic() < end:  # the whole time the lock is held
            health = httpx.get(f"{server.api}/healthz", timeout=QUICK)
            assert health.status_code == 503 and health.json()["store"]["writes"] is False
            assert alice.get(f"/jobs/{accepted[0]}", timeout=QUICK).status_code == 200
            res = alice.post("/jobs", json={"script": "true"}, timeout=QUICK)
            if res.status_code == 201:  # a batch that slipped in before the lock took
                accepted.append(res.json()["id"])
                continue
            is_problem(res, 503)
            assert int(res.headers["retry-after"]) > 0
            answers["refused"] += 1
    finally:
        assert holder.stdin is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        holder.wait(30)
    assert answers["refused"] >= 2
    assert httpx.get(f"{server.api}/healthz", timeout=QUICK).status_code == 200
    accepted.append(server.submit("alice", script="true")["id"])
    for job_id in accepted:
        assert server.wait("alice", job_id)["state"] == "COMPLETED"
