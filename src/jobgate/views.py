"""Public views of jobs and events: what the API answers and what callbacks carry. They
sit beside the model, below every layer that shows jobs, so the engine's callbacks and
the REST door render a job the same way without importing each other. Internal fields
(gateway ids, pids' start times, stop flags) never appear here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from jobgate.errors import SpecError
from jobgate.spec import JobEvent, JobRecord, JobSpec, Resources
from jobgate.states import JobState

# Jobs from a drop-in API carry compat=<its name>: their callbacks go out in its format.
COMPAT_LABEL = "compat"


class JobOut(BaseModel):
    id: str
    name: str | None
    owner: str
    destination: str
    state: JobState
    native_id: str | None
    exit_code: int | None
    reason: str | None
    reason_code: str | None = Field(
        default=None,
        description="Why it ended, for programs: EXIT_CODE, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, "
        "PREEMPTED, CANCELLED, SUBMIT_ERROR, STAGING_ERROR, LOST, REJECTED, "
        "DEPENDENCY_NEVER_SATISFIED (None: it completed, or has not ended)",
    )
    native_state: str | None = Field(
        default=None, description="The scheduler's own word for its end (Slurm's OUT_OF_MEMORY)"
    )
    host: str | None
    run_dir: str | None = Field(
        default=None, description="The job's run directory, as its destination sees it"
    )
    labels: dict[str, str]
    spec: JobSpec
    resources: Resources | None = Field(
        default=None, description="The resources the job runs with: its own and the defaults"
    )
    waiting: str | None = Field(default=None, description="Why a job has not started yet")
    warnings: list[str] = Field(
        default_factory=list,
        description="On submit: what the destination will not honour (e.g. GPUs on `local`)",
    )
    created_at: datetime
    queued_at: datetime | None
    submitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(
        cls, record: JobRecord, waiting: str | None = None, warnings: list[str] | None = None
    ) -> JobOut:
        # The record is already valid: copy its fields, do not validate them again.
        fields = {name: getattr(record, name) for name in _RECORD_FIELDS}
        return cls.model_construct(**fields, waiting=waiting, warnings=warnings or [])


_RECORD_FIELDS = tuple(name for name in JobOut.model_fields if name not in ("waiting", "warnings"))


class EventOut(BaseModel):
    seq: int
    type: str
    message: str
    data: dict[str, Any]
    time: datetime

    @classmethod
    def of(cls, event: JobEvent) -> EventOut:
        return cls(**event.model_dump(exclude={"job_id"}))


@dataclass(frozen=True)
class Announcement:
    """One state change of a job, to be called back."""

    event_id: str  # "<job id>:<event seq>": receivers drop duplicates by it
    sequence: int  # 1, 2, 3, ... per job
    job: JobRecord
    event: JobEvent
    previous_state: str | None  # the job's state before this change (None: the first)


@dataclass(frozen=True)
class Delivery:
    method: str  # POST, PUT
    body: bytes  # JSON


# A callback format: what to send for an announcement, or None to send nothing (its
# receiver would learn nothing new). Doors register theirs by name (the `compat` label).
CallbackFormat = Callable[[Announcement], Delivery | None]


def jobgate_format(a: Announcement) -> Delivery:
    """jobgate's own callback: POST {event_id, sequence, job, event} (docs/callbacks.md)."""
    payload = {
        "event_id": a.event_id,
        "sequence": a.sequence,
        "job": JobOut.of(a.job).model_dump(mode="json"),
        "event": EventOut.of(a.event).model_dump(mode="json"),
    }
    return Delivery("POST", json.dumps(payload, separators=(",", ":")).encode())


class FileReader(Protocol):
    """An open file of a job's (a download): reads come from the descriptor that was
    checked when it was opened, never from its name again."""

    async def read(self, offset: int, size: int) -> bytes: ...

    async def close(self) -> None: ...


FILE_CHUNK = 1024 * 1024


async def chunks(reader: FileReader, limit: int) -> AsyncIterator[bytes]:
    """A download: the file's bytes, `limit` at most, closed at the end (or when left)."""
    offset = 0
    try:
        while offset < limit:
            data = await reader.read(offset, min(FILE_CHUNK, limit - offset))
            if not data:
                return
            offset += len(data)
            yield data
    finally:
        await reader.close()


def parse_states(items: list[str] | tuple[str, ...] | list[JobState]) -> list[JobState]:
    """States as people type them (`running`), checked once for every door; an unknown one
    is a SpecError that lists them all."""
    try:
        return [JobState(str(s).upper()) for s in items]
    except ValueError:
        known = ", ".join(s.value for s in JobState)
        raise SpecError("state", f"unknown state in {list(items)} (known: {known})") from None


class ResultOut(BaseModel):
    """What a job type's parser read from a finished job (docs/job-types.md)."""

    job_id: str
    job_type: str
    data: dict[str, Any] = Field(description="The parser's JSON object")
    error: str | None = Field(default=None, description="Why the parser failed, if it did")
    created_at: datetime

    @classmethod
    def of(cls, result: Any) -> ResultOut:
        return cls(
            job_id=result.job_id,
            job_type=result.job_type,
            data=result.data,
            error=result.error,
            created_at=datetime.fromtimestamp(result.created_at, UTC),
        )


def store_filters(
    *,
    state: Iterable[JobState | str] | JobState | str | None = None,
    destination: str | None = None,
    label: dict[str, str] | None = None,
    owner: str | None = None,
    name: str | None = None,
    since: datetime | None = None,
    name_prefix: str | None = None,
    label_keys: Iterable[str] = (),
) -> dict[str, Any]:
    """The store's filters from a door's: states checked, times as timestamps."""
    states = None
    if state is not None:
        states = parse_states([state] if isinstance(state, str) else list(state))
    return {
        "state": states,
        "destination": destination,
        "label": label,
        "owner": owner,
        "name": name,
        "since": since.timestamp() if since else None,
        "name_prefix": name_prefix,
        "label_keys": list(label_keys),
    }
