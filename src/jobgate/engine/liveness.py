"""Which supervisors are alive: a fresh heartbeat in the store, and on this host a live
pid too (so a restart after kill -9 adopts at once instead of waiting out the lease);
and what a job adopted from another says of it."""

from __future__ import annotations

import socket
import time
from typing import Any

from jobgate.backends.local import process_start
from jobgate.spec import JobRecord
from jobgate.store import Store

LEASE_S = 15.0  # a supervisor silent this long is dead: its jobs are adopted


def live_gateways(store: Store) -> list[str]:
    now, here = time.time(), socket.gethostname()
    alive = []
    for g in store.gateways():
        if now - g.heartbeat_at > LEASE_S:
            continue
        if g.host == here and process_start(g.pid) is None:
            continue
        alive.append(g.id)
    return alive


def recovery_notes(
    jobs: list[JobRecord], orphaned: set[str]
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """An event on each adopted job: its gateway died, or let go of it when it stopped."""
    crashed = "re-attached: the gateway that watched this job stopped without notice"
    clean = "re-attached: the gateway that watched this job had stopped cleanly"
    return [(j.id, "recovery", crashed if j.id in orphaned else clean, {}) for j in jobs]
