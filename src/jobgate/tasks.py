"""One task of an array job, as doors show it (the store keeps them task by task)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from jobgate.states import JobState
from jobgate.units import ts


class TaskOut(BaseModel):
    """One task of an array job, as the poll saw it."""

    index: int
    state: JobState
    exit_code: int | None = None
    reason_code: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def of(cls, task: Any) -> TaskOut:
        """From the store's row (index, state, exit_code, reason_code, epoch times)."""
        return cls(
            index=task.index,
            state=JobState(task.state),
            exit_code=task.exit_code,
            reason_code=task.reason_code,
            started_at=ts(task.started_at),
            finished_at=ts(task.finished_at),
        )
