"""Job handles: what the embedded `Gateway` and the remote `Client` give back, with the
same interface, so code written against one runs against the other."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from jobgate.spec import JobEvent, JobRecord
from jobgate.states import JobState
from jobgate.tasks import TaskOut


class JobSource(Protocol):
    """What a Job handle needs: the embedded Gateway and the remote Client both provide it."""

    def _record(self, job_id: str) -> JobRecord: ...
    def _wait(
        self, job_id: str, timeout: float | None, until: Callable[[JobState], bool] | None
    ) -> JobRecord: ...
    def _cancel(self, job_id: str) -> JobRecord: ...
    def _read_log(self, job_id: str, stream: str, offset: int) -> bytes: ...
    def _events(self, job_id: str) -> builtins.list[JobEvent]: ...
    def _follow_log(self, job_id: str, stream: str) -> Iterator[bytes]: ...
    def _files(self, job_id: str) -> builtins.list[str]: ...
    def _waiting(self, job_id: str) -> str | None: ...
    def _tasks(self, job_id: str) -> builtins.list[TaskOut]: ...
    def _download(self, job_id: str, path: str) -> Iterator[bytes]: ...
    def _results(self, job_id: str) -> dict[str, Any] | None: ...


class Job:
    """A handle on one job; every property asks the gateway, so it is never stale."""

    def __init__(
        self, source: JobSource, record: JobRecord, warnings: builtins.list[str] | None = None
    ) -> None:
        self._source = source
        self.id = record.id
        self._last = record
        # What its destination said it would not honour, at submit (e.g. --gpus on local).
        self.warnings = warnings or []

    def __repr__(self) -> str:
        return f"<Job {self.id} {self._last.state}>"

    @property
    def record(self) -> JobRecord:
        self._last = self._source._record(self.id)
        return self._last

    @property
    def snapshot(self) -> JobRecord:
        """The record as last fetched (by the list, submit or wait that made this handle),
        without asking the gateway again: for showing many jobs at once."""
        return self._last

    @property
    def state(self) -> JobState:
        return self.record.state

    @property
    def exit_code(self) -> int | None:
        return self.record.exit_code

    @property
    def native_id(self) -> str | None:
        return self.record.native_id

    def wait(
        self, timeout: float | None = None, until: Callable[[JobState], bool] | None = None
    ) -> JobState:
        """Block until the job ends (or `until(state)` holds, or the timeout passes)."""
        self._last = self._source._wait(self.id, timeout, until)
        return self._last.state

    def cancel(self) -> JobState:
        return self._source._cancel(self.id).state

    def results(self) -> dict[str, Any] | None:
        """What its job type's parser read, once the job ended: {"job_id", "job_type",
        "data", "error", "created_at"}; None before (or for a job without a type)."""
        return self._source._results(self.id)

    def read_log(self, stream: str = "stdout", offset: int = 0) -> bytes:
        return self._source._read_log(self.id, stream, offset)

    def follow_log(self, stream: str = "stdout") -> Iterator[bytes]:
        """Chunks of the log as they are written, until the job ends."""
        return self._source._follow_log(self.id, stream)

    def stdout(self) -> str:
        return self.read_log("stdout").decode(errors="replace")

    def stderr(self) -> str:
        return self.read_log("stderr").decode(errors="replace")

    def events(self) -> builtins.list[JobEvent]:
        return self._source._events(self.id)

    def tasks(self) -> builtins.list[TaskOut]:
        """An array's tasks, each with its state, exit code and times."""
        return self._source._tasks(self.id)

    def waiting(self) -> str | None:
        """Why it has not started yet (the gateway's capacity, the scheduler's queue)."""
        return self._source._waiting(self.id)

    def files(self) -> builtins.list[str]:
        """The files of its run directory, relative to it."""
        return self._source._files(self.id)

    def download(self, path: str) -> Iterator[bytes]:
        """Chunks of one of its files (a path that `files()` lists)."""
        return self._source._download(self.id, path)


@dataclass
class Page:
    """One page of a listing, newest first: pass `next_cursor` as `cursor` for the next."""

    jobs: builtins.list[Job]
    next_cursor: str | None
    total: int | None = None  # all that match, when counted
