"""The one polling loop: per destination, one status round per interval for every watched
job (in chunks of at most `chunk_size`), never a call per job.

The interval is the destination's `poll_interval_s` while jobs start, end or are
submitted, and backs off the longer nothing changes (after 10 quiet minutes, once a
minute); a failed round backs off too (doubling) and changes no job - its first failure
and the recovery are noted on every watched job. Final outcomes are remembered, so a job
re-attached after it ended is answered without asking the scheduler again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from jobgate.backends.base import StatusSink
from jobgate.backends.outcome import Outcome
from jobgate.errors import TransientError
from jobgate.histogram import Histogram
from jobgate.spec import JobRecord

log = logging.getLogger(__name__)

AGE_FACTOR = 0.1  # quiet for 10 minutes: asked about once a minute
MAX_INTERVAL_S = 60.0
FINAL_CACHE = 10_000


class Watched(Protocol):
    @property
    def job_id(self) -> str: ...


W = TypeVar("W", bound=Watched)
Round = Callable[[list[W]], Awaitable[None]]


class Poller(Generic[W]):
    """`round(chunk)` asks about a chunk of watched jobs and calls `finish` for each that
    ended (and `changed` when something else moved); a TransientError means "no answer"."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        round_: Round[W],
        sink: StatusSink,
        chunk_size: int = 500,
    ) -> None:
        self.name, self.base_interval, self.chunk_size = name, interval_s, chunk_size
        self.sink = sink
        self.clock: Callable[[], float] = time.monotonic
        self.watched: dict[str, W] = {}
        self.polls = self.max_rounds_per_poll = 0
        self.latency = Histogram()  # whole polls that answered: /metrics' jobgate_poll_seconds
        self._round = round_
        self._final: OrderedDict[str, Outcome] = OrderedDict()
        self._failures = 0
        self._last_poll = -math.inf
        self._last_change = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- what backends call ---------------------------------------------------------------

    def watch(self, job_id: str, item: W) -> None:
        self.watched[job_id] = item
        self.changed()

    def changed(self) -> None:
        """Something moved (a job was submitted, started, stopped or ended): poll at the
        base interval again, and now if the wait was long."""
        self._last_change = self.clock()
        self._wake.set()

    def finish(self, job: JobRecord | str, outcome: Outcome) -> None:
        """The job (its record, or its id where none is kept) ended: report it once,
        remember how, and stop asking about it."""
        job_id = job if isinstance(job, str) else job.id
        if self.watched.pop(job_id, None) is None:
            return
        self._final[job_id] = outcome
        while len(self._final) > FINAL_CACHE:
            self._final.popitem(last=False)
        self._last_change = self.clock()
        self.sink.report(job, outcome)

    def ended(self, job_id: str) -> Outcome | None:
        return self._final.get(job_id)

    def note_all(self, type_: str, message: str) -> None:
        log.warning("%s: %s", self.name, message)
        for item in self.watched.values():
            self.sink.note(item.job_id, type_, message)

    # -- the loop -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"poll-{self.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def interval(self) -> float:
        """Seconds between polls now: the base while jobs change, longer as they stay quiet,
        doubling after each failed round."""
        base = self.base_interval
        longest = max(base, MAX_INTERVAL_S)
        if self._failures:
            return min(longest, base * (1 << min(self._failures, 10)))
        return min(longest, max(base, (self.clock() - self._last_change) * AGE_FACTOR))

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            if not self.watched:
                await self._wake.wait()
                continue
            delay = self._last_poll + self.interval() - self.clock()
            if delay > 0:  # a new job or a stop may shorten the interval: wait, then look again
                # Not wait_for: on 3.11 it can swallow the cancel that close() sends.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                continue
            self._last_poll = self.clock()
            await self.poll_once()

    async def poll_once(self) -> None:
        """One round as the loop runs it: a failure is logged, noted and backed off from."""
        try:
            await self.poll()
        except Exception as exc:  # transient, or a bug: either way no job changes state
            if not isinstance(exc, TransientError):
                log.exception("polling %s failed", self.name)
            self._failures += 1
            if self._failures == 1:
                why = f"status command failed; jobs keep their state, retrying: {exc}"
                self.note_all("scheduler_unavailable", why)
            return
        if self._failures:
            self.note_all("scheduler_available", "status commands answer again")
            self._failures = 0

    async def poll(self) -> None:
        """Ask about every watched job, a chunk per status command."""
        items = list(self.watched.values())
        if not items:
            return
        chunks = [items[i : i + self.chunk_size] for i in range(0, len(items), self.chunk_size)]
        self.max_rounds_per_poll = max(self.max_rounds_per_poll, len(chunks))
        started = time.perf_counter()
        for chunk in chunks:
            await self._round(chunk)
        self.latency.observe(time.perf_counter() - started)
        self.polls += 1
