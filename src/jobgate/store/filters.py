"""The conditions of a job list or count, from a door's filters (what keyset pages and
counts share)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from jobgate.states import JobState
from jobgate.store.tables import job_labels, jobs


def _state_column(labelled: bool) -> Any:
    """With a label too, `state || ''`: no index on it, so the planner starts from the
    label's (a run's 1,000 jobs) instead of walking all jobs in a state (at 1,000,000
    jobs: 2 ms instead of 550 ms on SQLite; docs/benchmarks.md)."""
    return jobs.c.state + "" if labelled else jobs.c.state


def conditions(
    *,
    state: Iterable[JobState] | None = None,
    destination: str | None = None,
    label: dict[str, str] | None = None,
    owner: str | None = None,
    name: str | None = None,
    since: float | None = None,
    name_prefix: str | None = None,
    label_keys: Iterable[str] = (),
) -> builtins.list[Any]:
    states = [s.value for s in state] if state is not None else None
    conds = [
        _state_column(bool(label)).in_(states) if states is not None else None,
        jobs.c.destination == destination if destination else None,
        jobs.c.owner == owner if owner else None,
        jobs.c.name == name if name else None,
        jobs.c.created_at >= since if since is not None else None,
        jobs.c.name.startswith(name_prefix, autoescape=True) if name_prefix else None,
    ]
    for key in label_keys:  # the label, whatever its value
        conds.append(jobs.c.id.in_(select(job_labels.c.job_id).where(job_labels.c.key == key)))
    for key, value in (label or {}).items():
        sub = select(job_labels.c.job_id).where(
            job_labels.c.key == key, job_labels.c.value == value
        )
        conds.append(jobs.c.id.in_(sub))
    return [c for c in conds if c is not None]
