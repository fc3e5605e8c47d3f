"""What the API shows: public views that never leak internal fields (run dirs, pids' start
times, stop flags)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Response
from pydantic import BaseModel, Field

from jobgate.spec import JobEvent, JobRecord, JobSpec
from jobgate.states import JobState


class JobOut(BaseModel):
    id: str
    name: str | None
    owner: str
    destination: str
    state: JobState
    native_id: str | None
    exit_code: int | None
    reason: str | None
    host: str | None
    labels: dict[str, str]
    spec: JobSpec
    waiting: str | None = Field(default=None, description="Why a job has not started yet")
    created_at: datetime
    queued_at: datetime | None
    submitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, record: JobRecord, waiting: str | None = None) -> JobOut:
        # The record is already valid: copy its fields, do not validate them again.
        fields = {name: getattr(record, name) for name in _RECORD_FIELDS}
        return cls.model_construct(**fields, waiting=waiting)

    def response(self, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
        """Serialized once, here: a returned Response skips FastAPI's re-validation."""
        return Response(
            self.model_dump_json(),
            status_code=status_code,
            headers=headers,
            media_type="application/json",
        )


_RECORD_FIELDS = tuple(name for name in JobOut.model_fields if name != "waiting")


class JobList(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


class EventOut(BaseModel):
    seq: int
    type: str
    message: str
    data: dict[str, Any]
    time: datetime

    @classmethod
    def of(cls, event: JobEvent) -> EventOut:
        return cls(**event.model_dump(exclude={"job_id"}))


class TokenIn(BaseModel):
    user: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.@-]+$")
    admin: bool = False
    label: str = Field(default="", max_length=200)


class TokenOut(BaseModel):
    user: str
    admin: bool
    token: str = Field(description="Shown once; only its hash is stored")


class MeOut(BaseModel):
    user: str
    admin: bool
    callback_secret: str = Field(
        description="Key of the HMAC-SHA256 X-Jobgate-Signature on your jobs' callbacks"
    )


class DestinationOut(BaseModel):
    name: str
    scheduler: str
    transport: str
    capacity: int
    active: int
    queued: int


class CallbackAttempt(BaseModel):
    id: int
    event_seq: int
    url: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
