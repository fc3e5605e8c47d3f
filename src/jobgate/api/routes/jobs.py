"""/jobs: submit (JSON or multipart with files), list, get, cancel, events, logs, files."""

from __future__ import annotations

import json
import mimetypes
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field, StringConstraints, ValidationError

from jobgate.api import streams
from jobgate.api.bodies import QueryText, check_text
from jobgate.api.deps import Ctx, CurrentUser, OwnedJob
from jobgate.api.schemas import CallbackAttempt, EventOut, JobList, JobOut, job_response
from jobgate.errors import NotFoundError, SpecError, spec_error
from jobgate.service import LOG_STREAMS, Area
from jobgate.spec import JobSpec
from jobgate.states import JobState
from jobgate.tasks import TaskOut
from jobgate.units import ts
from jobgate.views import chunks

router = APIRouter(tags=["jobs"])
_EMPTY = "An empty value is no filter"
# key=value, or empty (no filter): the schema says so, so a fuzzer's "x" is not "valid"
_Label = Annotated[str, StringConstraints(pattern=r"^(([^=\x00]+=[^\x00]*)|)$")]
_MAX_POSITION = 2**62  # event seqs and byte offsets: past any real one, within int64 and seek()
_SPEC_REF = {"$ref": "#/components/schemas/JobRequest"}
MAX_BATCH = 1000  # jobs in one POST /jobs:batch
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _SPEC_REF},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "spec": {"type": "string", "description": "JobRequest as JSON"},
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                }
            },
        },
    }
}


@router.post(
    "/jobs",
    status_code=201,
    response_model=JobOut,
    openapi_extra=_BODY,
    responses={200: {"model": JobOut, "description": "Same Idempotency-Key: that job"}},
)
async def submit_job(
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    started = time.perf_counter()
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        spec = await _multipart_spec(request, ctx)
    else:
        spec = await _json_spec(request, ctx)
    if idempotency_key:
        spec["idempotency_key"] = idempotency_key
    record, created = await ctx.service.submit_once(spec, owner=user.name, area=Area())
    ctx.metrics.submit_latency.observe(time.perf_counter() - started)
    location = {"Location": f"{request.url.path.rstrip('/')}/{record.id}"}
    view = JobOut.of(record, warnings=ctx.service.ignored(record))
    return job_response(view, 201 if created else 200, location)


class BatchIn(BaseModel):
    jobs: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class BatchOut(BaseModel):
    jobs: list[JobOut]


@router.post(
    "/jobs:batch",
    status_code=201,
    response_model=BatchOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["jobs"],
                        "properties": {
                            "jobs": {
                                "type": "array",
                                "items": _SPEC_REF,
                                "minItems": 1,
                                "maxItems": MAX_BATCH,
                            }
                        },
                    }
                }
            },
        }
    },
)
async def submit_batch(request: Request, user: CurrentUser, ctx: Ctx) -> BatchOut:
    """Many jobs in one transaction (each checked first: one bad job, a 422 naming
    `jobs[i].field`, and none is stored). Input files: submit those jobs one by one."""
    body = _parse(await request.body(), "body")
    try:
        batch = BatchIn.model_validate(body)
    except ValidationError as exc:
        raise spec_error(exc) from None
    for i, spec in enumerate(batch.jobs):
        if spec.get("input_files"):
            raise SpecError(f"jobs[{i}].input_files", "a batch's jobs take no input files")
    records = await ctx.service.submit_many(batch.jobs, owner=user.name, area=Area())
    return BatchOut(jobs=[JobOut.of(r, warnings=ctx.service.ignored(r)) for r in records])


def _parse(raw: bytes | str, field: str) -> dict[str, Any]:
    try:
        spec = json.loads(raw)
        if isinstance(spec, dict):
            check_text(spec, "")
    except (ValueError, RecursionError):
        raise SpecError(field, "not valid JSON (or nested too deeply)") from None
    if not isinstance(spec, dict):
        raise SpecError(field, "must be a JSON object (a JobSpec)")
    return spec


async def _json_spec(request: Request, ctx: Ctx) -> dict[str, Any]:
    spec = _parse(await request.body(), "body")  # its size: api/bodies.py
    if spec.get("input_files"):  # paths on the gateway's disk are not the caller's to name
        raise SpecError("input_files", "send input files as multipart/form-data parts")
    return spec


async def _multipart_spec(request: Request, ctx: Ctx) -> dict[str, Any]:
    form = await request.form(max_files=1000, max_fields=10)
    raw = form.get("spec")
    if not isinstance(raw, str):
        raise SpecError("spec", "the multipart form needs a 'spec' field with the JobSpec as JSON")
    spec = _parse(raw, "spec")
    if spec.get("input_files"):
        raise SpecError("spec", "must be a JobSpec object; its input files are the file parts")
    inputs = []
    for i, (_, part) in enumerate(form.multi_items()):
        if isinstance(part, str):
            continue
        path = await ctx.service.files.store_upload(await part.read())
        inputs.append({"source": path, "target": part.filename or f"file{i}"})
    spec["input_files"] = inputs
    return spec


@router.get("/jobs", response_model=JobList)
async def list_jobs(
    user: CurrentUser,
    ctx: Ctx,
    state: Annotated[list[JobState] | None, Query()] = None,
    destination: Annotated[QueryText | None, Query(description=_EMPTY)] = None,
    label: Annotated[list[_Label] | None, Query(description="key=value")] = None,
    name: Annotated[QueryText | None, Query(description=_EMPTY)] = None,
    created_since: Annotated[str | None, Query(description="ISO 8601 time, UTC if no zone")] = None,
    cursor: Annotated[
        QueryText | None, Query(description="`next_cursor` of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    owner: Annotated[QueryText | None, Query(description="Admins: one user's jobs only")] = None,
    count: Annotated[bool, Query(description="Also count all the jobs that match")] = False,
) -> JobList:
    # An empty value is no filter, as a web form sends one for a field left blank.
    texts = {"destination": destination, "name": name, "cursor": cursor, "owner": owner}
    for field, value in texts.items():
        check_text(value, field)
    check_text(label, "label")
    destination, name, cursor, owner = (v or None for v in texts.values())
    labels = {}
    for item in label or []:
        key, _, value = item.partition("=")
        if key:
            labels[key] = value
    since = None
    if created_since:
        try:
            since = datetime.fromisoformat(created_since)
            if since.tzinfo is None:  # the server's local time means nothing to a client
                since = since.replace(tzinfo=UTC)
            since.timestamp()  # year 1 is ISO 8601 but no timestamp
        except (ValueError, OverflowError):
            raise SpecError("created_since", "not an ISO 8601 time (UTC unless given)") from None
    filters: dict[str, Any] = {
        "state": state,
        "destination": destination,
        "label": labels or None,
        "name": name,
        "since": since,
        "owner": owner if user.admin else user.name,
    }
    records = await ctx.service.list(before=cursor, limit=limit, **filters)
    next_cursor = records[-1].id if len(records) == limit else None
    total = await ctx.service.count(**filters) if count else None
    return JobList(items=[JobOut.of(r) for r in records], next_cursor=next_cursor, total=total)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job: OwnedJob, ctx: Ctx) -> Response:
    return job_response(JobOut.of(job, await ctx.service.waiting_reason(job)))


@router.delete("/jobs/{job_id}", status_code=202, response_model=JobOut)
async def cancel_job(job: OwnedJob, ctx: Ctx) -> Response:
    return job_response(JobOut.of(await ctx.service.cancel(job.id)), 202)


@router.get("/jobs/{job_id}/tasks", response_model=list[TaskOut])
async def job_tasks(job: OwnedJob, ctx: Ctx) -> list[TaskOut]:
    """An array job's tasks, task by task, as the poll sees them (empty if not an array)."""
    return await ctx.service.tasks(job.id)


@router.get(
    "/jobs/{job_id}/events",
    response_model=list[EventOut],
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_events(
    job: OwnedJob,
    ctx: Ctx,
    request: Request,
    after: Annotated[int, Query(ge=0, le=_MAX_POSITION)] = 0,
    follow: bool = False,
) -> Any:
    if follow or "text/event-stream" in request.headers.get("accept", ""):
        start = _last_event_id(request, after)
        return StreamingResponse(
            streams.events(ctx.service, job.id, start), media_type="text/event-stream"
        )
    return [EventOut.of(e) for e in await ctx.service.events(job.id, after)]


@router.get(
    "/jobs/{job_id}/logs/{stream}",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_logs(
    job: OwnedJob,
    ctx: Ctx,
    request: Request,
    stream: str,
    offset: Annotated[int, Query(ge=0, le=_MAX_POSITION)] = 0,
    limit: Annotated[int, Query(ge=1, le=64 * 1024 * 1024)] = 16 * 1024 * 1024,
    follow: bool = False,
) -> Response:
    if stream not in LOG_STREAMS:
        raise NotFoundError(f"no log {stream!r} (stdout or stderr)")
    if follow or "text/event-stream" in request.headers.get("accept", ""):
        start = _last_event_id(request, offset)
        await ctx.service.read_log(job.id, stream, start, 0)  # a 404 now, not mid-stream
        return StreamingResponse(
            streams.logs(ctx.service, job.id, stream, start), media_type="text/event-stream"
        )
    data = await ctx.service.read_log(job.id, stream, offset, limit)
    return Response(
        data,
        media_type="text/plain; charset=utf-8",
        headers={"X-Next-Offset": str(offset + len(data))},
    )


@router.get("/jobs/{job_id}/files", response_model=list[str])
async def list_files(job: OwnedJob, ctx: Ctx) -> list[str]:
    """The files of the job's run directory, where its destination keeps them."""
    return await ctx.service.files.list(job)


@router.get(
    "/jobs/{job_id}/files/{path:path}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def get_file(job: OwnedJob, ctx: Ctx, path: str) -> StreamingResponse:
    """The file as it was opened (no link followed, regular files only), at most the
    gateway's `limits.max_download_mb`."""
    reader = await ctx.service.files.open(job, path)
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    limit = ctx.service.files.max_download_bytes
    return StreamingResponse(chunks(reader, limit), media_type=media_type)


def _last_event_id(request: Request, default: int) -> int:
    """Where a resumed stream starts: the Last-Event-ID it saw (a seq or byte offset)."""
    raw = request.headers.get("last-event-id")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) > _MAX_POSITION:
        raise SpecError("Last-Event-ID", "must be an event id (a number) this stream sent")
    return int(raw)


@router.get("/jobs/{job_id}/callbacks", response_model=list[CallbackAttempt])
async def job_callbacks(job: OwnedJob, ctx: Ctx) -> list[CallbackAttempt]:
    rows = await ctx.service.system.callbacks_of(job.id)
    return [
        CallbackAttempt(
            **{
                **r,
                "next_attempt_at": ts(r["next_attempt_at"]),
                "delivered_at": ts(r["delivered_at"]),
            }
        )
        for r in rows
    ]


__all__ = ["JobSpec", "router"]
