"""/jobs: submit (JSON or multipart with files), list, get, cancel, events, logs, files."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse

from jobgate.api import streams
from jobgate.api.deps import Ctx, CurrentUser, OwnedJob
from jobgate.api.schemas import CallbackAttempt, EventOut, JobList, JobOut
from jobgate.errors import NotFoundError, SpecError
from jobgate.ids import new_id
from jobgate.service import LOG_STREAMS
from jobgate.spec import JobSpec, ts
from jobgate.store.outbox import Outbox

router = APIRouter(tags=["jobs"])
_SPEC_REF = {"$ref": "#/components/schemas/JobSpec"}
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
                        "spec": {"type": "string", "description": "JobSpec as JSON"},
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
    response: Response,
    user: CurrentUser,
    ctx: Ctx,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JobOut:
    started = time.perf_counter()
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        spec = await _multipart_spec(request, ctx)
    else:
        spec = await _json_spec(request, ctx)
    if idempotency_key:
        spec["idempotency_key"] = idempotency_key
    record, created = await ctx.service.submit_once(spec, owner=user.name)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"{request.url.path.rstrip('/')}/{record.id}"
    ctx.metrics.submit_latency.observe(time.perf_counter() - started)
    return JobOut.of(record)


async def _json_spec(request: Request, ctx: Ctx) -> dict[str, Any]:
    body = await request.body()
    if len(body) > ctx.max_upload_bytes:
        raise SpecError("body", f"larger than {ctx.max_upload_bytes} bytes")
    try:
        spec = json.loads(body)
    except ValueError:
        raise SpecError("body", "not valid JSON") from None
    if not isinstance(spec, dict):
        raise SpecError("body", "must be a JSON object (a JobSpec)")
    if spec.get("input_files"):  # paths on the gateway's disk are not the caller's to name
        raise SpecError("input_files", "send input files as multipart/form-data parts")
    return spec


async def _multipart_spec(request: Request, ctx: Ctx) -> dict[str, Any]:
    declared = int(request.headers.get("content-length") or 0)
    if declared > ctx.max_upload_bytes:
        raise SpecError("files", f"upload larger than {ctx.max_upload_bytes} bytes")
    form = await request.form(max_files=1000, max_fields=10)
    raw = form.get("spec")
    if not isinstance(raw, str):
        raise SpecError("spec", "the multipart form needs a 'spec' field with the JobSpec as JSON")
    try:
        spec = json.loads(raw)
    except ValueError:
        raise SpecError("spec", "not valid JSON") from None
    if not isinstance(spec, dict) or spec.get("input_files"):
        raise SpecError("spec", "must be a JobSpec object; its input files are the file parts")
    folder = ctx.gateway.config.home / "uploads" / new_id()
    inputs, total = [], 0
    for i, (_, part) in enumerate(form.multi_items()):
        if isinstance(part, str):
            continue
        data = await part.read()
        total += len(data)
        if total > ctx.max_upload_bytes:
            raise SpecError("files", f"upload larger than {ctx.max_upload_bytes} bytes")
        target = part.filename or f"file{i}"
        path = folder / str(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        inputs.append({"source": str(path), "target": target})
    spec["input_files"] = inputs
    return spec


@router.get("/jobs", response_model=JobList)
async def list_jobs(
    user: CurrentUser,
    ctx: Ctx,
    state: Annotated[list[str] | None, Query()] = None,
    destination: str | None = None,
    label: Annotated[list[str] | None, Query(description="key=value")] = None,
    name: str | None = None,
    created_since: Annotated[str | None, Query(description="ISO 8601 time")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobList:
    labels = {}
    for item in label or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SpecError("label", f"{item!r} is not key=value")
        labels[key] = value
    since = None
    if created_since:
        try:
            since = datetime.fromisoformat(created_since)
        except ValueError:
            raise SpecError("created_since", "not an ISO 8601 time") from None
    records = await ctx.service.list(
        state=state,
        destination=destination,
        label=labels or None,
        name=name,
        before=cursor,
        since=since,
        limit=limit,
        owner=None if user.admin else user.name,
    )
    next_cursor = records[-1].id if len(records) == limit else None
    return JobList(items=[JobOut.of(r) for r in records], next_cursor=next_cursor)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job: OwnedJob, ctx: Ctx) -> JobOut:
    return JobOut.of(job, ctx.service.waiting_reason(job))


@router.delete("/jobs/{job_id}", status_code=202, response_model=JobOut)
async def cancel_job(job: OwnedJob, ctx: Ctx) -> JobOut:
    return JobOut.of(await ctx.service.cancel(job.id))


@router.get(
    "/jobs/{job_id}/events",
    response_model=list[EventOut],
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_events(
    job: OwnedJob,
    ctx: Ctx,
    request: Request,
    after: Annotated[int, Query(ge=0)] = 0,
    follow: bool = False,
) -> Any:
    if follow or "text/event-stream" in request.headers.get("accept", ""):
        start = int(request.headers.get("last-event-id") or after)
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
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=64 * 1024 * 1024)] = 16 * 1024 * 1024,
    follow: bool = False,
) -> Response:
    if stream not in LOG_STREAMS:
        raise NotFoundError(f"no log {stream!r} (stdout or stderr)")
    if follow or "text/event-stream" in request.headers.get("accept", ""):
        start = int(request.headers.get("last-event-id") or offset)
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
    base = _run_dir(ctx, job.id)
    if not base.is_dir():
        return []
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


@router.get("/jobs/{job_id}/files/{path:path}", response_class=FileResponse)
async def get_file(job: OwnedJob, ctx: Ctx, path: str) -> FileResponse:
    base = _run_dir(ctx, job.id).resolve()
    full = (base / path).resolve()
    if not full.is_relative_to(base) or not full.is_file():  # no path may leave the run dir
        raise NotFoundError(f"no file {path!r} in job {job.id}")
    return FileResponse(full)


def _run_dir(ctx: Ctx, job_id: str) -> Path:
    return ctx.gateway.config.home / "runs" / job_id


@router.get("/jobs/{job_id}/callbacks", response_model=list[CallbackAttempt])
async def job_callbacks(job: OwnedJob, ctx: Ctx) -> list[CallbackAttempt]:
    rows = Outbox(ctx.service.store).for_job(job.id)
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
