"""The gateway behind a PSI/J executor: the embedded one (shared by every executor of the
process that names the same configuration) or a remote server through `jobgate.Client`.

PSI/J has no way to close an executor, and programs call `get_instance` freely, so an
embedded gateway is opened on first use, shared, and closed when the interpreter exits.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import psij

from jobgate.client import Client
from jobgate.config import Config, load_config
from jobgate.errors import JobgateError, TransientError
from jobgate.psij.config import Target
from jobgate.psij.mapping import psij_state
from jobgate.sdk import AsyncGateway
from jobgate.spec import JobRecord, JobSpec
from jobgate.states import FINAL_STATES, JobState

log = logging.getLogger(__name__)
T = TypeVar("T")
Sink = Callable[[JobRecord], None]
LIST_LIMIT = 1000  # the REST API's largest page
OPEN_STATES = [s for s in JobState if s not in FINAL_STATES]


class Source(Protocol):
    # None: changes are pushed to `follow`'s sink; else `poll` is called this often.
    poll_interval: float | None
    closed: bool

    def scheduler_of(self, destination: str | None) -> str: ...
    def submit(self, spec: JobSpec) -> JobRecord: ...
    def get(self, job_id: str) -> JobRecord: ...
    def cancel(self, job_id: str) -> None: ...
    def open_ids(self, destination: str | None) -> list[str]: ...
    def follow(self, job_id: str, known: psij.JobState, sink: Sink) -> None: ...
    def poll(self, known: dict[str, psij.JobState]) -> list[JobRecord]: ...


class EmbeddedSource:
    """AsyncGateway on its own event loop thread. Following a job is one asyncio task
    (`AsyncGateway.wait`, woken by the supervisor's commits), not a thread."""

    poll_interval = None

    def __init__(self, config: Config) -> None:
        self.config = config
        self.closed = False
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._core: AsyncGateway | None = None
        self._follows: set[concurrent.futures.Future[None]] = set()

    def _open(self) -> tuple[asyncio.AbstractEventLoop, AsyncGateway]:
        with self._lock:
            if self.closed:
                raise TransientError("this jobgate gateway was shut down; use a new executor")
            if self._loop is None or self._core is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="jobgate-psij-gateway", daemon=True
                )
                thread.start()
                try:
                    core = asyncio.run_coroutine_threadsafe(_start(self.config), loop).result()
                except BaseException:
                    loop.call_soon_threadsafe(loop.stop)
                    thread.join()
                    loop.close()
                    raise
                self._loop, self._thread, self._core = loop, thread, core
            return self._loop, self._core

    def _call(self, make: Callable[[AsyncGateway], Coroutine[Any, Any, T]]) -> T:
        loop, core = self._open()
        return asyncio.run_coroutine_threadsafe(make(core), loop).result()

    def scheduler_of(self, destination: str | None) -> str:
        return self.config.destination(destination).scheduler

    def submit(self, spec: JobSpec) -> JobRecord:
        return self._call(lambda core: core.submit(spec))

    def get(self, job_id: str) -> JobRecord:
        return self._call(lambda core: core.get(job_id))

    def cancel(self, job_id: str) -> None:
        self._call(lambda core: core.cancel(job_id))

    def open_ids(self, destination: str | None) -> list[str]:
        records = self._call(
            lambda core: core.list(state=OPEN_STATES, destination=destination, limit=LIST_LIMIT)
        )
        return [r.id for r in records]

    def follow(self, job_id: str, known: psij.JobState, sink: Sink) -> None:
        loop, core = self._open()
        future = asyncio.run_coroutine_threadsafe(_follow(core, job_id, known, sink), loop)
        with self._lock:
            self._follows.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._follows.discard(future)

    def poll(self, known: dict[str, psij.JobState]) -> list[JobRecord]:
        return []

    def close(self) -> None:
        with self._lock:
            self.closed = True
            loop, thread, core = self._loop, self._thread, self._core
            self._loop = self._thread = self._core = None
            follows = list(self._follows)
        if loop is None or thread is None or core is None:
            return
        for future in follows:  # outside the lock: cancel() runs _forget in this thread
            future.cancel()
        try:
            asyncio.run_coroutine_threadsafe(core.close(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            if not thread.is_alive():
                loop.close()


async def _start(config: Config) -> AsyncGateway:
    return await AsyncGateway(config).start()


async def _follow(core: AsyncGateway, job_id: str, known: psij.JobState, sink: Sink) -> None:
    try:
        record = await core.wait(job_id, None, lambda s: psij_state(s) != known)
    except Exception as exc:  # else it would sit unseen in the task; the job stays as it was
        log.warning("jobgate PSI/J executor: stopped following job %s: %s", job_id, exc)
        return
    sink(record)


class RemoteSource:
    """A jobgate server. Its API follows one job per event stream, so the executor's
    watcher thread asks for the records of all the jobs it follows once a second instead."""

    poll_interval = 1.0

    def __init__(self, server: str, token: str | None) -> None:
        self._client = Client(server, token)
        self.closed = False
        self._schedulers: dict[str, str] | None = None

    def scheduler_of(self, destination: str | None) -> str:
        if self._schedulers is None:
            self._schedulers = {d["name"]: d["scheduler"] for d in self._client.destinations()}
        if destination is None:  # the server's default is not announced; one is unambiguous
            known = set(self._schedulers.values())
            return known.pop() if len(known) == 1 else ""
        return self._schedulers.get(destination, "")

    def submit(self, spec: JobSpec) -> JobRecord:
        return self.get(self._client.submit(spec).id)

    def get(self, job_id: str) -> JobRecord:
        return self._client._record(job_id)  # the JobSource call: one request, not two

    def cancel(self, job_id: str) -> None:
        self._client.cancel(job_id)

    def open_ids(self, destination: str | None) -> list[str]:
        jobs = self._client.list(state=list(OPEN_STATES), destination=destination, limit=LIST_LIMIT)
        return [j.id for j in jobs]

    def follow(self, job_id: str, known: psij.JobState, sink: Sink) -> None:
        """Nothing to start: `poll` covers every followed job."""

    def poll(self, known: dict[str, psij.JobState]) -> list[JobRecord]:
        changed = []
        for job_id, state in known.items():
            try:
                record = self.get(job_id)
            except JobgateError as exc:  # the next poll tries again
                log.warning("jobgate PSI/J executor: cannot read job %s: %s", job_id, exc)
                continue
            if psij_state(record.state) != state:
                changed.append(record)
        return changed

    def close(self) -> None:
        self.closed = True
        self._client.close()


_shared: dict[tuple[str, ...], EmbeddedSource | RemoteSource] = {}
_shared_lock = threading.Lock()


def source_for(target: Target) -> EmbeddedSource | RemoteSource:
    """The process's source for `target`, made on first use (opening nothing yet)."""
    if target.server:
        key: tuple[str, ...] = ("remote", target.server, target.token or "")
    else:
        config = load_config(target.config_file, home=target.home)
        key = ("embedded", config.database_url, str(config.home), str(config.path))
    with _shared_lock:
        source = _shared.get(key)
        if source is None:
            if target.server:
                source = RemoteSource(target.server, target.token)
            else:
                source = EmbeddedSource(config)
            _shared[key] = source
        return source


@atexit.register
def shutdown() -> None:
    """Close every gateway the executors opened (at exit; tests call it between runs)."""
    with _shared_lock:
        sources = list(_shared.values())
        _shared.clear()
    for source in sources:
        try:
            source.close()
        except Exception as exc:  # at exit, one stuck gateway must not keep the others open
            log.warning("jobgate PSI/J executor: closing %s failed: %s", source, exc)
