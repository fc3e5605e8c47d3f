"""What a job asks of the gateway beyond its run: to wait for other jobs (dependencies,
as sbatch's --dependency) and to be run again after some ends (retries)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jobgate.ids import is_id
from jobgate.states import ReasonCode

KINDS = ("afterok", "afternotok", "afterany", "after")
# Ends that are nobody's fault, retried by `retry: {"max": N}` unless it names its own.
TRANSIENT = [ReasonCode.NODE_FAIL, ReasonCode.PREEMPTED, ReasonCode.LOST]


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Dependencies(_Policy):
    """afterok: each ended COMPLETED; afternotok: each ended otherwise; afterany: each
    ended; after: each started (or ended). A condition that can no longer hold ends the
    job REJECTED with DEPENDENCY_NEVER_SATISFIED."""

    afterok: list[str] = Field(default_factory=list, max_length=1000)
    afternotok: list[str] = Field(default_factory=list, max_length=1000)
    afterany: list[str] = Field(default_factory=list, max_length=1000)
    after: list[str] = Field(default_factory=list, max_length=1000)

    @field_validator("afterok", "afternotok", "afterany", "after")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        for job_id in v:
            if not is_id(job_id):
                raise ValueError(f"{job_id!r} is not a job id")
        return v

    def ids(self) -> set[str]:
        return {*self.afterok, *self.afternotok, *self.afterany, *self.after}

    @classmethod
    def parse_sbatch(cls, text: str) -> Dependencies:
        """`afterok:ID[:ID],afterany:ID` (commas: all of them must hold)."""
        found: dict[str, list[str]] = {}
        for part in filter(None, text.split(",")):
            kind, _, ids = part.partition(":")
            if kind not in KINDS or not ids:
                raise ValueError(f"{part!r}: give KIND:ID[:ID...], KIND one of {', '.join(KINDS)}")
            found.setdefault(kind, []).extend(ids.split(":"))
        try:
            return cls.model_validate(found)
        except ValidationError as exc:
            raise ValueError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None


class Retry(_Policy):
    max: int = Field(default=1, ge=0, le=10, description="Attempts after the first, at most")
    on: list[ReasonCode] = Field(
        default_factory=lambda: list(TRANSIENT), description="The reason codes retried"
    )
    backoff_s: float = Field(default=0.0, ge=0, le=86400, description="Wait before each retry")
