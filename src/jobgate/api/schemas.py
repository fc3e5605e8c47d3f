"""What the API takes and shows besides jobs and events (whose views, shared with the
callbacks, are in jobgate.views)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Response
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from jobgate.users import TokenInfo
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
    total: int | None = Field(default=None, description="All the jobs that match (`count`)")


_USER = r"^[A-Za-z0-9_.@-]+$"
UserName = Annotated[str, Field(min_length=1, max_length=200, pattern=_USER)]
_CENTURY_S = 100 * 365 * 86400  # as the service allows


class TokenIn(BaseModel):
    user: UserName
    # strict: as the schema says, `true` is no number of seconds, nor 1 a yes
    admin: bool = Field(default=False, strict=True)
    label: str = Field(default="", max_length=200)
    expires_in_s: int | None = Field(
        default=None,
        gt=0,
        le=_CENTURY_S,
        strict=True,
        description="Valid this many seconds from now",
    )
    expires_at: datetime | None = Field(
        default=None, description="Valid until then (ISO 8601, UTC unless it has a zone)"
    )

    @field_validator("expires_at")
    @classmethod
    def _one_expiry(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        if v is not None and info.data.get("expires_in_s") is not None:
            raise ValueError("give expires_in_s or expires_at, not both")
        return v

    def expiry(self) -> datetime | None:
        if self.expires_in_s is not None:
            return datetime.now(UTC) + timedelta(seconds=self.expires_in_s)
        return self.expires_at


class TokenInfoOut(BaseModel):
    """A token as listed: never the token itself, nor its hash."""

    id: str = Field(description="Revoke it with DELETE /tokens/{id}")
    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None = Field(description="null: never")
    revoked_at: datetime | None = Field(description="null: not revoked")

    @classmethod
    def of(cls, info: TokenInfo) -> TokenInfoOut:
        return cls(**asdict(info))


class TokenOut(TokenInfoOut):
    """A new token: the only time it is shown."""

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
