"""/ui/jobs/{id}: one job's summary, resources, timeline, live logs, files, results and
cancel; another user's job is a 404 page, as in the API."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from markupsafe import escape

from jobgate.errors import NotFoundError
from jobgate.ids import is_id
from jobgate.service import LOG_STREAMS, JobService
from jobgate.spec import JobRecord
from jobgate.ui import format as fmt
from jobgate.ui import pages
from jobgate.ui.jobs import sse
from jobgate.ui.pages import CurrentViewer, PostedForm, Viewer, dashboard
from jobgate.views import chunks

router = APIRouter(route_class=pages.PageRoute)
TAIL = 64 * 1024  # a log is shown from at most this far before its end
CHUNK = 256 * 1024  # at most this much log per live event
TICK_S = 1.0  # a live page looks again this often when nothing woke it


async def owned(service: JobService, viewer: Viewer, job_id: str) -> JobRecord:
    """The job, if the viewer owns it or is admin; anyone else's is NotFound."""
    if not is_id(job_id):
        raise NotFoundError(f"no job {job_id!r}")
    job = await service.get(job_id)
    if job.owner != viewer.user.name and not viewer.user.admin:
        raise NotFoundError(f"no job {job_id!r}")
    return job


async def log_end(service: JobService, job_id: str, stream: str) -> int:
    """The log's size, found by reading single bytes (the service reads by range only):
    doubling, then halving, so a big log costs a few dozen one-byte reads."""
    if not await service.read_log(job_id, stream, 0, 1):
        return 0
    lo, hi = 0, TAIL  # a byte at lo; is there one at hi?
    while await service.read_log(job_id, stream, hi, 1):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if await service.read_log(job_id, stream, mid, 1) else (lo, mid)
    return hi


async def _log(service: JobService, job: JobRecord, stream: str) -> dict[str, Any]:
    end = await log_end(service, job.id, stream)
    start = max(0, end - TAIL)
    data = await service.read_log(job.id, stream, start, end - start)
    if start:  # begin at a whole line
        cut = data.find(b"\n") + 1
        data, start = data[cut:], start + cut
    return {"name": stream, "text": _text(data), "start": start, "end": start + len(data)}


def _text(data: bytes) -> str:
    return data.decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")


async def _summary(service: JobService, job: JobRecord) -> dict[str, Any]:
    return {
        "job": job,
        "elapsed": fmt.elapsed(job, datetime.now(UTC)),
        "waiting": await service.waiting_reason(job),
        "tasks": await service.tasks(job.id) if (job.resources or job.spec.resources).array else [],
    }


def _set(resources: Any) -> dict[str, Any]:
    found: dict[str, Any] = resources.model_dump(exclude_none=True, exclude_defaults=True)
    return found


@router.get("/jobs/{job_id}")
async def job_page(request: Request, viewer: CurrentViewer, job_id: str) -> Response:
    service = dashboard(request).service
    job = await owned(service, viewer, job_id)
    asked = _set(job.spec.resources)
    effective = _set(job.resources) if job.resources else {}
    result = await service.results.get(job.id)
    events = await service.events(job.id)
    return pages.render(
        request, "job.html", viewer, **await _summary(service, job),
        events=events, after=events[-1].seq if events else 0,
        resources=[(k, asked.get(k), effective.get(k)) for k in {**effective, **asked}],
        logs=[await _log(service, job, s) for s in LOG_STREAMS],
        files=await service.files.list(job),
        result=json.dumps(result.data, indent=2) if result else None,
        result_error=result.error if result else None,
    )  # fmt: skip


@router.get("/jobs/{job_id}/stream")
async def job_stream(
    request: Request,
    viewer: CurrentViewer,
    job_id: str,
    after: Annotated[int, Query(ge=0)] = 0,
    stdout: Annotated[int, Query(ge=0)] = 0,
    stderr: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The job page's one live stream (a browser opens few connections per host): the
    summary as it changes, the events after `after` and the logs from their offsets as
    they come (HTML for htmx's SSE swap: the summary replaced, the rest appended); `end`
    once the job is final and its logs are sent."""
    service = dashboard(request).service
    job = await owned(service, viewer, job_id)
    logs = {"stdout": stdout, "stderr": stderr}
    return StreamingResponse(
        _live(request, viewer, job.id, after, logs),
        media_type="text/event-stream",
        headers=pages.HEADERS,
    )


async def _live(
    request: Request, viewer: Viewer, job_id: str, after: int, logs: dict[str, int]
) -> AsyncIterator[str]:
    service = dashboard(request).service
    sent = ""
    while await pages.still_signed_in(request, viewer):
        job = await service.get(job_id)  # read first: once final, its events and logs are in
        html = pages.fragment("_summary.html", **await _summary(service, job), viewer=viewer)
        if html != sent:
            sent = html
            yield sse("summary", html)
        events = await service.events(job_id, after)
        if events:
            after = events[-1].seq
            yield sse("timeline", pages.fragment("_timeline.html", events=events))
        more = False
        for stream in LOG_STREAMS:
            data = await _next_lines(service, job, stream, logs[stream])
            if data:
                logs[stream] += len(data)
                body = "".join(f"data: {line}\n" for line in str(escape(_text(data))).split("\n"))
                yield f"event: log-{stream}\n{body}\n"
            more = more or len(data) == CHUNK
        if job.state.final and not more:
            yield "event: end\ndata: final\n\n"
            return
        if not more:
            yield ": waiting\n\n"
            await service.wait_change(job_id, TICK_S / 2)


async def _next_lines(service: JobService, job: JobRecord, stream: str, offset: int) -> bytes:
    """The log from `offset`, CHUNK at most: in whole lines while the job still writes."""
    try:
        data = await service.read_log(job.id, stream, offset, CHUNK)
    except NotFoundError:  # the job put something else in the log's place
        return b""
    return data if job.state.final or len(data) == CHUNK else _whole(data)


def _whole(data: bytes) -> bytes:
    """`data` up to its last whole line: the rest is still being written."""
    return data[: data.rfind(b"\n") + 1]


@router.get("/jobs/{job_id}/logs/{stream}")
async def log_text(request: Request, viewer: CurrentViewer, job_id: str, stream: str) -> Response:
    """The whole log as text (the page shows its end; this reads without JavaScript)."""
    service = dashboard(request).service
    job = await owned(service, viewer, job_id)
    if stream not in LOG_STREAMS:
        raise NotFoundError(f"no log {stream!r}")
    data = await service.read_log(job.id, stream, 0, service.files.max_download_bytes)
    return Response(data, media_type="text/plain; charset=utf-8", headers=pages.HEADERS)


@router.get("/jobs/{job_id}/files/{path:path}")
async def download(request: Request, viewer: CurrentViewer, job_id: str, path: str) -> Response:
    """A file of the run directory, as an attachment: opened by the service beneath the
    run directory, no link followed, regular files only."""
    service = dashboard(request).service
    job = await owned(service, viewer, job_id)
    reader = await service.files.open(job, path)
    name = quote(path.rsplit("/", 1)[-1], safe="")
    headers = {**pages.HEADERS, "Content-Disposition": f"attachment; filename*=UTF-8''{name}"}
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    limit = service.files.max_download_bytes
    return StreamingResponse(chunks(reader, limit), media_type=kind, headers=headers)


@router.post("/jobs/{job_id}/cancel")
async def cancel(request: Request, posted: PostedForm, job_id: str) -> Response:
    service = dashboard(request).service
    job = await owned(service, posted.viewer, job_id)
    after = await service.cancel(job.id)
    posted.viewer.session.flash.append(f"Cancel requested: the job is {after.state.value}.")
    return RedirectResponse(f"{pages.BASE}/jobs/{job.id}", status_code=303, headers=pages.HEADERS)
