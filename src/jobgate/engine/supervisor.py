"""The supervisor: admits queued jobs up to capacity, submits them, turns what backends
report into guarded state changes (batched: one commit for many jobs), stops jobs on
request, and on start re-attaches to every unfinished job.

State lives in the store, never only here: a `kill -9` loses nothing. Every store call
goes through AsyncStore, so the loop never waits on a lock or a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from jobgate.backends.base import SUBMIT_TRIED, Backend, Submitted
from jobgate.backends.outcome import Outcome
from jobgate.config import Config, Destination
from jobgate.engine.attempts import retry
from jobgate.engine.backends import Backends
from jobgate.engine.dependencies import settle
from jobgate.engine.finishing import RETRY_MAX_S, stage_out
from jobgate.engine.hearing import Hearing
from jobgate.engine.janitor import SWEEP_S, sweep
from jobgate.engine.recovery import adopt
from jobgate.errors import FatalError, JobgateError, TransientError
from jobgate.ids import new_id
from jobgate.spec import JobRecord
from jobgate.states import FINAL_STATES, JobState
from jobgate.store import AsyncStore, Transition
from jobgate.store.batching import Batcher

log = logging.getLogger(__name__)
S = JobState
CLAIM_BATCH = 100  # jobs claimed per transaction
HANDOVER_MAX = 2 * CLAIM_BATCH  # a destination's jobs being handed over at once
TICK_S = 0.25  # how often other processes' submissions and cancels are looked for
HEARTBEAT_S = 5.0
ADMIT_DELAY_S = 0.001
BURST_S = 0.05  # a claim this recent: more submissions are likely on their way
_STAGING_IN = frozenset({S.STAGING_IN})


class Supervisor:
    def __init__(
        self,
        config: Config,
        db: AsyncStore,
        on_change: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.store = db.sync
        self.backends = Backends(config, sink=self)
        self.gateway_id = new_id()
        self.on_change = on_change or (lambda ids: None)
        self.hearing = Hearing(db, self.backends, self.gateway_id, self._add_notes)
        # Awaited once a job's outputs are in, before its end state is written: a job
        # type's parser (jobgate.service.results), so a final job has its results.
        self.finishing: Callable[[JobRecord, dict[str, Any]], Awaitable[None]] | None = None
        self.finishes: Callable[[JobRecord], bool] = lambda _job: False  # finishing, always
        # Transitions that did not take (the job had moved on, e.g. cancelled while a
        # report of it running was on its way): counted and logged with the job id.
        self.refused: Counter[str] = Counter()
        self._pending: list[Transition] = []
        self._notes: list[tuple[str, str, str, dict[str, Any]]] = []
        self._flushing: asyncio.Future[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._stopping: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._stop_wanted = False
        self._paused: dict[str, tuple[float, float]] = {}  # destination -> (until, delay)
        self._full: dict[str, float] = {}  # destination -> loop time it was found full
        self._claimed_at = -BURST_S  # loop time of the last claim that took jobs
        self._handing: Counter[str] = Counter()  # destination -> jobs being handed over
        self._some_ended = True  # a job ended since dependencies were last settled
        self._closing = False
        self._records: Batcher[str, JobRecord | None] = Batcher(
            lambda ids: db.read(db.sync.get_many, ids), "jobgate-ended"
        )

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        await self.db.write(self.store.heartbeat, self.gateway_id, socket.gethostname())
        await adopt(self)  # then poll: a round asks about every job taken over, once
        for dest in self.config.destinations.values():
            await self.backends.get(dest.name).start()
            self._spawn(self.hearing.run(dest))
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
        await self.flush()  # one try: a store that is down now keeps nothing from closing
        await self.backends.close()
        await self.db.write(self.store.release, self.gateway_id)

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
        beat = scan = loop.time()
        swept, settled = -SWEEP_S, -TICK_S
        while not self._closing:
            self._wake.clear()
            try:
                more = False
                # Jobs waiting on others: one query a tick, and at once after an end here.
                if self._some_ended or loop.time() - settled > TICK_S:
                    self._some_ended, settled = False, loop.time()
                    if moves := await settle(self.db):
                        self._applied(moves, await self.db.write(self.store.apply, moves))
                for dest in self.config.destinations.values():
                    more |= await self._admit(dest)
                # Other processes' cancels are looked for once a tick, ours at once.
                if self._stop_wanted or loop.time() - scan > TICK_S:
                    self._stop_wanted, scan = False, loop.time()
                    for dest in self.config.destinations.values():
                        await self._scan_stops(dest)
                if loop.time() - beat > HEARTBEAT_S:
                    await self.db.write(self.store.heartbeat, self.gateway_id, socket.gethostname())
                    await adopt(self)  # another supervisor may have died
                    beat = loop.time()
                if loop.time() - swept > SWEEP_S:
                    swept = loop.time()
                    self._spawn(sweep(self.config, self.db, self.backends))
            except JobgateError as exc:  # the store is busy or down: try again next tick
                log.warning("supervisor pass failed: %s", exc)
            if more:
                await asyncio.sleep(0)  # let exits be handled between claim batches
                continue
            # Not wait_for: on 3.11 it can swallow the cancel that close() sends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self._wake.wait()
                # Submissions come in bursts: within one, gather a few before one claim
                # transaction; a lone one (nothing claimed lately) is claimed at once.
                if loop.time() - self._claimed_at < BURST_S:
                    await asyncio.sleep(ADMIT_DELAY_S)

    # -- admission and submission -------------------------------------------------------

    async def _admit(self, dest: Destination) -> bool:
        now = asyncio.get_running_loop().time()
        if now < self._paused.get(dest.name, (0.0, 0.0))[0]:
            return False  # the scheduler failed transiently: wait out the back-off
        # Full: each submission wakes us, but only a job ending frees a slot. Ours clear
        # this at once (flush); other processes' are seen within a tick.
        if now - self._full.get(dest.name, -TICK_S) < TICK_S:
            return False
        if await self.db.read(self.store.active_count, dest.name) >= dest.capacity:
            self._full[dest.name] = now
            return False
        self._full.pop(dest.name, None)
        # Hand-overs overlap: the next batch is claimed, rendered and staged while the
        # last one's sbatch calls run; whole batches, so that submit shells stay full.
        handing = self._handing[dest.name]
        if handing and HANDOVER_MAX - handing < CLAIM_BATCH:
            return False
        backend = self.backends.get(dest.name)
        claimed = await self.db.write(
            self.store.claim,
            dest.name,
            dest.capacity,
            CLAIM_BATCH,
            self.gateway_id,
            backend.known_base,  # once known: the run dirs are named at admission
        )
        if claimed:
            self._claimed_at = now
            self._handing[dest.name] += len(claimed)
            for job in claimed:
                self._spawn(self._counted(backend, job))
        return len(claimed) == CLAIM_BATCH

    def _pause(self, destination: str) -> float:
        """Back off from a destination whose scheduler failed: 1 s, doubling, at most 60 s."""
        _, last = self._paused.get(destination, (0.0, 0.0))
        delay = min(RETRY_MAX_S, max(1.0, last * 2))
        self._paused[destination] = (asyncio.get_running_loop().time() + delay, delay)
        return delay

    async def hand_over(self, backend: Backend, job: JobRecord) -> None:
        """Submit an admitted job; a failure is recorded, never raised."""
        try:
            job = await backend.placed(job)
            sub = await backend.submit(job)
        except TransientError as exc:  # not the job's fault: back to the queue, retried later
            delay = self._pause(job.destination)
            message = f"submission failed, will retry in {delay:.0f} s: {exc}"
            # The next try looks for the job first: this one may have reached the scheduler.
            tried = {"backend_data": {**job.backend_data, SUBMIT_TRIED: True}}
            self._queue(Transition(job.id, S.QUEUED, message, fields=tried, expect=_STAGING_IN))
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
        self.hearing.listener.resume(job.id, None)  # new: it has said nothing (no query)
        self.record_submitted(job, sub)

    async def _counted(self, backend: Backend, job: JobRecord) -> None:
        try:
            await self.hand_over(backend, job)
        finally:
            self._handing[job.destination] -= 1
            if HANDOVER_MAX - self._handing[job.destination] == CLAIM_BATCH:
                self.wake()  # room for the next whole batch

    def note(
        self, job_id: str, type_: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        """An event that is not a state change (a backend's word on a job): written with
        the next batch of changes."""
        self._notes.append((job_id, type_, message, data or {}))
        self._flush_later()

    def record_submitted(self, job: JobRecord, sub: Submitted) -> JobRecord:
        fields = {
            "native_id": sub.native_id,
            "host": sub.host,
            "backend_data": sub.data,
            "run_dir": job.run_dir,
        }
        state = S.RUNNING if sub.running else S.SUBMITTED
        self._queue(Transition(job.id, state, f"native id {sub.native_id}", fields=fields))
        return job.model_copy(update={**fields, "state": state})

    # -- what backends report -------------------------------------------------------------

    def report(self, job: JobRecord | str, outcome: Outcome) -> None:
        """Called by backends (in the loop) when a job starts running or ends; `job` is
        its record, or its id where the backend keeps none (read here when it ends)."""
        fields = outcome.fields(outcome.reason)
        job_id = job if isinstance(job, str) else job.id
        if outcome.state == S.RUNNING:
            self._queue(Transition(job_id, S.RUNNING, data=outcome.data, fields=fields))
            return
        self._spawn(self._ended(job, outcome, fields))

    async def _ended(self, job: JobRecord | str, outcome: Outcome, fields: dict[str, Any]) -> None:
        """What the job said last is noted before its end (engine/hearing.py)."""
        if isinstance(job, str):
            found = await self._records(job)  # the jobs a poll round ended: one query
            if found is None:
                log.warning("job %s ended but is no longer in the store", job)
                return
            job = found
        values = await self.hearing.last_words(job)
        wanted = job.spec.output_files or job.spec.job_type or values or self.finishes(job)
        if wanted and outcome.state != S.LOST:
            self._queue(Transition(job.id, S.STAGING_OUT, data=outcome.data, fields=fields))
            await stage_out(self, job, outcome, values)
            return
        self.end(Transition(job.id, outcome.state, outcome.reason or "", outcome.data, fields), job)

    def _add_notes(self, notes: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        self._notes.extend(notes)
        self._flush_later()

    def end(self, final: Transition, job: JobRecord) -> None:
        """The job's end, unless its retry policy runs it again (engine/attempts.py)."""
        again = retry(job, self.config.destinations[job.destination], final.to, final.fields)
        self._queue(again or final)

    def _queue(self, transition: Transition) -> None:
        self._pending.append(transition)
        self._flush_later()

    def _flush_later(self) -> None:
        if self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        try:
            await asyncio.sleep(0)  # what this loop pass reports joins the batch
            await self.flush()
        finally:
            self._flushing = None

    async def flush(self) -> None:
        """Write every queued change and note, a batch per transaction, in order (one
        flush at a time: a later batch must never overtake an earlier one)."""
        async with self._flush_lock:
            while self._pending or self._notes:
                batch, self._pending = self._pending, []
                notes, self._notes = self._notes, []
                try:
                    took = await self.db.write(self.store.apply, batch, notes)
                except JobgateError as exc:  # keep them for the next try: nothing is lost
                    log.warning("store write failed, retrying: %s", exc)
                    self._pending[:0], self._notes[:0] = batch, notes
                    if self._closing:
                        return
                    await asyncio.sleep(0.5)
                    continue
                self._applied(batch, took, [n[0] for n in notes])

    def _applied(
        self, batch: list[Transition], took: list[bool], noted: Sequence[str] = ()
    ) -> None:
        """After a commit: who waits on these jobs (or their events) hears of it now."""
        moved = [t for t, ok in zip(batch, took, strict=True) if ok]
        for t, ok in zip(batch, took, strict=True):
            if not ok:
                self.refused[t.to.value] += 1
                log.info("job %s: the move to %s did not take (it had moved on)", t.job_id, t.to)
        self.on_change(list(dict.fromkeys([*(t.job_id for t in moved), *noted])))
        ended_ids = [t.job_id for t in moved if t.to in FINAL_STATES]
        if ended_ids:
            self._stopping.difference_update(ended_ids)
            self._full.clear()
            self._some_ended = True  # a dependency may be settled now
            self.wake()  # capacity was freed

    # -- stopping -------------------------------------------------------------------------

    def request_stop(self, job_id: str) -> None:
        """Act at once on a cancel recorded in this process (others are found by the scan)."""
        self._stop_wanted = True
        self.wake()

    async def _scan_stops(self, dest: Destination) -> None:
        requests = await self.db.read(self.store.stop_requests, dest.name, self.gateway_id)
        for job_id, reason in requests:
            if job_id not in self._stopping:
                job = await self.db.read(self.store.get, job_id)
                if job.state == S.STAGING_IN:
                    continue  # being handed over: stopped once it has a native id
                self._stopping.add(job_id)
                self._spawn(self.backends.get(dest.name).stop(job, reason))

    # -- recovery (engine/recovery.py) ----------------------------------------------------

    def stage_out_later(self, job: JobRecord, outcome: Outcome) -> None:
        self._spawn(stage_out(self, job, outcome))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
