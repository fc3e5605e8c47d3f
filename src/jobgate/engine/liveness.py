"""Which supervisors are alive: a fresh heartbeat in the store, and on this host a live
pid too (so a restart after kill -9 adopts at once instead of waiting out the lease);
and what a job adopted from another says of it."""

from __future__ import annotations

import socket
import time

from jobgate.backends.local import process_start
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


# The `recovery` event of an adopted job: its supervisor died, or let go when it stopped.
RECOVERY_NOTES = (
    "re-attached: the gateway that watched this job stopped without notice",
    "re-attached: the gateway that watched this job had stopped cleanly",
)
