"""What the API takes and shows besides jobs and events (whose views, shared with the
callbacks, are in jobgate.views)."""

from __future__ import annotations

from datetime import datetime

from fastapi import Response
from pydantic import BaseModel, Field

from jobgate.views import EventOut, JobOut

__all__ = ["EventOut", "JobOut"]


def job_response(
    job: JobOut, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Serialized once, here: a returned Response skips FastAPI's re-validation."""
    return Response(
        job.model_dump_json(),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


class JobList(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


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
