"""Rows as the model's objects: a jobs row as a JobRecord, an events row as a JobEvent."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row

from jobgate.spec import JobEvent, JobRecord, JobSpec, Resources
from jobgate.states import JobState, StopReason
from jobgate.units import ts


def event_of(row: Row[Any]) -> JobEvent:
    """A job_events row as a JobEvent."""
    return JobEvent(
        seq=row.seq,
        job_id=row.job_id,
        time=ts(row.time),
        type=row.type,
        message=row.message,
        data=json.loads(row.data),
    )


def record_of(row: Row[Any], state: JobState | None = None) -> JobRecord:
    m = row._mapping
    return JobRecord(
        id=m["id"],
        name=m["name"],
        owner=m["owner"],
        destination=m["destination"],
        state=state or JobState(m["state"]),
        native_id=m["native_id"],
        exit_code=m["exit_code"],
        reason=m["reason"],
        reason_code=m["reason_code"],
        native_state=m["native_state"],
        pending_reason=m["pending_reason"],
        attempt=m["attempt"],
        host=m["host"],
        run_dir=m["run_dir"],
        labels=json.loads(m["labels"]),
        spec=JobSpec.model_validate_json(m["spec"]),
        resources=Resources.model_validate_json(m["resources"]) if m["resources"] else None,
        created_at=ts(m["created_at"]),
        queued_at=ts(m["queued_at"]),
        submitted_at=ts(m["submitted_at"]),
        started_at=ts(m["started_at"]),
        finished_at=ts(m["finished_at"]),
        stop_reason=StopReason(m["stop_reason"]) if m["stop_reason"] else None,
        backend_data=json.loads(m["backend_data"]),
    )


def resources_json(resources: Resources | None) -> str | None:
    return None if resources is None else resources.model_dump_json(exclude_defaults=True)
