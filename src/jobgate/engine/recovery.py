"""Taking over unfinished jobs: at start, and whenever another supervisor died. Jobs are
adopted in one locked transaction (ids only), then read and re-attached a chunk at a
time, so a restart with 100,000 active jobs holds a few hundred records at once, never
all of them (backends keep what watching needs, not the records)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from jobgate.backends.batch import BatchBackend
from jobgate.backends.batch_status import Known
from jobgate.backends.outcome import ended
from jobgate.engine.liveness import RECOVERY_NOTES, live_gateways
from jobgate.errors import TransientError
from jobgate.states import JobState, StopReason
from jobgate.store.results import watching_of

if TYPE_CHECKING:
    from jobgate.backends.base import Backend
    from jobgate.engine.supervisor import Supervisor
    from jobgate.spec import JobRecord

log = logging.getLogger(__name__)
CHUNK = 500  # jobs read, noted and re-attached together


async def adopt(sup: Supervisor) -> None:
    """Every destination's jobs whose supervisor is gone (or let go of them). The next
    chunk is read while one is re-attached."""
    live = await sup.db.read(live_gateways, sup.store)
    for dest in sup.config.destinations.values():
        backend = sup.backends.get(dest.name)
        host = socket.gethostname() if backend.host_bound else None
        adopt = sup.store.adopt
        ids = await sup.db.write(adopt, dest.name, sup.gateway_id, live, host, RECOVERY_NOTES)
        chunks = [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
        read = _read_watching if isinstance(backend, BatchBackend) else _read_records
        ahead: Awaitable[list[JobRecord]] | None = None
        for i, chunk in enumerate(chunks):
            found = await (ahead or read(sup, backend, chunk))
            if i + 1 < len(chunks):
                ahead = asyncio.ensure_future(read(sup, backend, chunks[i + 1]))
            await _recover(sup, backend, found)


async def _read_records(sup: Supervisor, _backend: Backend, ids: list[str]) -> list[JobRecord]:
    return [job for job in await sup.db.read(sup.store.get_many, ids) if job is not None]


async def _read_watching(sup: Supervisor, backend: Backend, ids: list[str]) -> list[JobRecord]:
    """A batch scheduler's jobs: those it only watches are re-attached from a few columns
    (no record built: at 100,000 jobs, most of a restart's time); the records of the rest
    (caught staging, or stored without resources) are returned for _recover."""
    assert isinstance(backend, BatchBackend)
    rest = []
    for w in await sup.db.read(watching_of, sup.store, ids):
        if w.state in (JobState.STAGING_IN, JobState.STAGING_OUT) or not w.resources:
            rest.append(w.id)
        else:
            stop = StopReason(w.stop_reason) if w.stop_reason else None
            running = w.state == JobState.RUNNING
            backend.attach_known(
                Known(w.id, w.native_id, w.run_dir, w.created_at, w.array, running, stop)
            )
    return await _read_records(sup, backend, rest) if rest else []


async def _recover(sup: Supervisor, backend: Backend, jobs: list[JobRecord]) -> None:
    for job in jobs:
        if job.state == JobState.STAGING_OUT:
            state = JobState.COMPLETED if job.exit_code == 0 else JobState.FAILED
            outcome = ended(job.exit_code, job.stop_reason, state=state, reason=job.reason)
            sup.stage_out_later(job, outcome)
        elif job.state == JobState.STAGING_IN:
            await _recover_handover(sup, backend, job)
        else:
            await backend.attach(job)
    await sup.flush()


async def _recover_handover(sup: Supervisor, backend: Backend, job: JobRecord) -> None:
    """A job caught between admission and its native id: find it, or submit it."""
    try:
        job = await backend.placed(job)
        found = await backend.find(job)
    except TransientError as exc:  # cannot tell yet: leave it for the next pass
        log.warning("cannot look for %s yet: %s", job.id, exc)
        await sup.db.write(sup.store.release_jobs, [job.id])
        return
    if found is None:  # never handed over: safe to submit now
        await sup.hand_over(backend, job)
    else:
        await backend.attach(sup.record_submitted(job, found))
