"""The supervisor: admits queued jobs up to capacity, submits them, turns what backends
report into guarded state changes (batched: one commit for many jobs), stops jobs on
request, and on start re-attaches to every unfinished job.

State lives in the store, never only here: a `kill -9` loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from jobgate.backends.base import Backend, Outcome, Submitted
from jobgate.backends.local import process_start
from jobgate.config import Config, Destination
from jobgate.engine.backends import Backends
from jobgate.errors import FatalError, JobgateError, TransientError
from jobgate.ids import new_id
from jobgate.spec import JobRecord
from jobgate.states import FINAL_STATES, JobState
from jobgate.store import Store, Transition

log = logging.getLogger(__name__)
S = JobState
CLAIM_BATCH = 100  # jobs claimed per transaction
TICK_S = 0.25  # how often other processes' submissions and cancels are looked for
HEARTBEAT_S = 5.0
ADMIT_DELAY_S = 0.001
LEASE_S = 15.0  # a supervisor silent this long is dead: its jobs are adopted


def live_gateways(store: Store) -> list[str]:
    """Ids of supervisors alive now: a fresh heartbeat, and on this host a live pid too
    (so a restart after kill -9 adopts at once instead of waiting out the lease)."""
    now, here = time.time(), socket.gethostname()
    alive = []
    for g in store.gateways():
        if now - g.heartbeat_at > LEASE_S:
            continue
        if g.host == here and process_start(g.pid) is None:
            continue
        alive.append(g.id)
    return alive


class Supervisor:
    def __init__(
        self, config: Config, store: Store, on_change: Callable[[list[str]], None] | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.backends = Backends(config, sink=self)
        self.gateway_id = new_id()
        self._on_change = on_change or (lambda ids: None)
        self._pending: list[Transition] = []
        self._flush_handle: asyncio.Handle | None = None
        self._stopping: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._stop_wanted = False
        self._paused: dict[str, tuple[float, float]] = {}  # destination -> (until, delay)
        self._full: dict[str, float] = {}  # destination -> loop time it was found full
        self._closing = False

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        _raise_fd_limit()  # one pidfd per running local job
        self._wake = asyncio.Event()
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        self.store.heartbeat(self.gateway_id, socket.gethostname())
        for dest in self.config.destinations.values():
            await self.backends.get(dest.name).start()
        await self._adopt()
        self._main = asyncio.create_task(self._run(), name="jobgate-supervisor")

    async def close(self) -> None:
        self._closing = True
        self.wake()
        if self._main is not None:
            self._main.cancel()
            await asyncio.gather(self._main, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._flush()
        await self.backends.close()
        self.store.release(self.gateway_id)

    def wake(self) -> None:
        """Look for work now; callable from any thread."""
        if self._wake is None or self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        beat = scan = 0.0
        while not self._closing:
            self._wake.clear()
            try:
                more = False
                for dest in self.config.destinations.values():
                    more |= await self._admit(dest)
                # Other processes' cancels are looked for once a tick, ours at once.
                if self._stop_wanted or loop.time() - scan > TICK_S:
                    self._stop_wanted, scan = False, loop.time()
                    for dest in self.config.destinations.values():
                        self._scan_stops(dest)
                if loop.time() - beat > HEARTBEAT_S:
                    self.store.heartbeat(self.gateway_id, socket.gethostname())
                    await self._adopt()  # another supervisor may have died
                    beat = loop.time()
            except JobgateError as exc:  # the store is busy or down: try again next tick
                log.warning("supervisor pass failed: %s", exc)
            if more:
                await asyncio.sleep(0)  # let exits be handled between claim batches
                continue
            # Not wait_for: on 3.11 it can swallow the cancel that close() sends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self._wake.wait()
                # Submissions come in bursts: gather a few before one claim transaction.
                await asyncio.sleep(ADMIT_DELAY_S)

    # -- admission and submission -------------------------------------------------------

    async def _admit(self, dest: Destination) -> bool:
        now = asyncio.get_running_loop().time()
        if now < self._paused.get(dest.name, (0.0, 0.0))[0]:
            return False  # the scheduler failed transiently: wait out the back-off
        # Full: each submission wakes us, but only a job ending frees a slot. Ours clear
        # this at once (_flush); other processes' are seen within a tick.
        if now - self._full.get(dest.name, -TICK_S) < TICK_S:
            return False
        if self.store.active_count(dest.name) >= dest.capacity:  # unlocked: a cheap read
            self._full[dest.name] = now
            return False
        self._full.pop(dest.name, None)
        claimed = self.store.claim(dest.name, dest.capacity, CLAIM_BATCH, self.gateway_id)
        if claimed:
            backend = self.backends.get(dest.name)
            await asyncio.gather(*(self._submit(backend, job) for job in claimed))
            self._flush()
        return len(claimed) == CLAIM_BATCH

    def _pause(self, destination: str) -> float:
        """Back off from a destination whose scheduler failed: 1 s, doubling, at most 60 s."""
        _, last = self._paused.get(destination, (0.0, 0.0))
        delay = min(60.0, max(1.0, last * 2))
        self._paused[destination] = (asyncio.get_running_loop().time() + delay, delay)
        return delay

    async def _submit(self, backend: Backend, job: JobRecord) -> None:
        try:
            sub = await backend.submit(job)
        except TransientError as exc:  # not the job's fault: back to the queue, retried later
            delay = self._pause(job.destination)
            message = f"submission failed, will retry in {delay:.0f} s: {exc}"
            self._queue(Transition(job.id, S.QUEUED, message, expect=_STAGING_IN))
            return
        except FatalError as exc:
            self._queue(Transition(job.id, S.FAILED, str(exc), fields={"reason": str(exc)}))
            return
        except Exception as exc:  # never leave a job stuck: a crash here is a failure
            log.exception("submitting %s failed", job.id)
            reason = f"submit failed: {exc}"
            self._queue(Transition(job.id, S.FAILED, reason, fields={"reason": reason}))
            return
        self._paused.pop(job.destination, None)
        self._record_submitted(job, sub)

    def note(self, job_id: str, type_: str, message: str) -> None:
        """An event that is not a state change (a backend's word on a job)."""
        try:
            self.store.add_event(job_id, type_, message)
        except JobgateError as exc:
            log.warning("could not record %s for %s: %s", type_, job_id, exc)

    def _record_submitted(self, job: JobRecord, sub: Submitted) -> JobRecord:
        fields = {"native_id": sub.native_id, "host": sub.host, "backend_data": sub.data}
        state = S.RUNNING if sub.running else S.SUBMITTED
        self._queue(Transition(job.id, state, f"native id {sub.native_id}", fields=fields))
        return job.model_copy(update={**fields, "state": state})

    # -- what backends report -------------------------------------------------------------

    def report(self, job: JobRecord, outcome: Outcome) -> None:
        """Called by backends (in the loop) when a job starts running or ends."""
        job_id = job.id
        fields = {"exit_code": outcome.exit_code, "reason": outcome.reason}
        if outcome.host:
            fields["host"] = outcome.host
        if outcome.state == S.RUNNING:
            self._queue(Transition(job_id, S.RUNNING, data=outcome.data, fields=fields))
            return
        if job.spec.output_files and outcome.state != S.LOST:
            self._queue(Transition(job_id, S.STAGING_OUT, data=outcome.data, fields=fields))
            self._spawn(self._stage_out(job, outcome))
            return
        message = outcome.reason or ""
        self._queue(Transition(job_id, outcome.state, message, outcome.data, fields))

    async def _stage_out(self, job: JobRecord, outcome: Outcome) -> None:
        try:
            missing = await self.backends.get(job.destination).stage_out(job)
        except JobgateError as exc:
            missing, outcome = [], Outcome(S.FAILED, outcome.exit_code, f"stage out: {exc}")
        state, reason = outcome.state, outcome.reason
        if missing:
            self.store.add_event(job.id, "warning", f"missing output files: {', '.join(missing)}")
            if state == S.COMPLETED:
                state, reason = S.FAILED, f"missing output files: {', '.join(missing)}"
        fields = {"exit_code": outcome.exit_code, "reason": reason}
        self._queue(Transition(job.id, state, reason or "", fields=fields))

    def _queue(self, transition: Transition) -> None:
        self._pending.append(transition)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Write every queued change in one transaction."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            took = self.store.apply(batch)
        except JobgateError as exc:  # keep them for the next try: nothing is lost
            log.warning("store write failed, retrying: %s", exc)
            self._pending[:0] = batch
            self._flush_handle = asyncio.get_running_loop().call_later(0.5, self._flush)
            return
        moved = [t for t, ok in zip(batch, took, strict=True) if ok]
        self._on_change([t.job_id for t in moved])
        ended = [t.job_id for t in moved if t.to in FINAL_STATES]
        if ended:
            self._stopping.difference_update(ended)
            self._full.clear()
            self.wake()  # capacity was freed

    # -- stopping -------------------------------------------------------------------------

    def request_stop(self, job_id: str) -> None:
        """Act at once on a cancel recorded in this process (others are found by the scan)."""
        self._stop_wanted = True
        self.wake()

    def _scan_stops(self, dest: Destination) -> None:
        for job_id, reason in self.store.stop_requests(dest.name, self.gateway_id):
            if job_id not in self._stopping:
                job = self.store.get(job_id)
                if job.state == S.STAGING_IN:
                    continue  # being handed over: stopped once it has a native id
                self._stopping.add(job_id)
                self._spawn(self.backends.get(dest.name).stop(job, reason))

    # -- recovery -------------------------------------------------------------------------

    async def _adopt(self) -> None:
        live = live_gateways(self.store)
        for dest in self.config.destinations.values():
            backend = self.backends.get(dest.name)
            host = socket.gethostname() if backend.host_bound else None
            jobs, orphaned = self.store.adopt(dest.name, self.gateway_id, live, host)
            if orphaned:
                note = "re-attached: the gateway that watched this job stopped without notice"
                self.store.add_events([(i, "recovery", note, {}) for i in sorted(orphaned)])
            if jobs:
                await self._recover(backend, jobs)

    async def _recover(self, backend: Backend, jobs: list[JobRecord]) -> None:
        for job in jobs:
            if job.state == S.STAGING_OUT:
                outcome = Outcome(_end_state(job), job.exit_code, job.reason)
                self._spawn(self._stage_out(job, outcome))
                continue
            if job.state == S.STAGING_IN:
                try:
                    found = await backend.find(job)
                except TransientError as exc:  # cannot tell yet: leave it for the next pass
                    log.warning("cannot look for %s yet: %s", job.id, exc)
                    self.store.release_jobs([job.id])
                    continue
                if found is None:  # never handed over: safe to submit now
                    await self._submit(backend, job)
                    continue
                await backend.attach(self._record_submitted(job, found))
                continue
            await backend.attach(job)
        self._flush()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


_STAGING_IN = frozenset({S.STAGING_IN})


def _end_state(job: JobRecord) -> JobState:
    if job.stop_reason == "cancel":
        return S.CANCELLED
    if job.stop_reason == "timeout":
        return S.TIMEOUT
    return S.COMPLETED if job.exit_code == 0 else S.FAILED


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
