"""/ui/jobs: the table of jobs (filters, keyset paging, counts per state), its live
stream, and cancelling several at once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from jobgate.errors import NotFoundError, SpecError
from jobgate.ids import is_id
from jobgate.service import JobService
from jobgate.spec import JobRecord
from jobgate.states import JobState
from jobgate.ui import format as fmt
from jobgate.ui.pages import (
    BASE,
    HEADERS,
    CurrentViewer,
    PageRoute,
    PostedForm,
    Viewer,
    dashboard,
    fragment,
    render,
    still_signed_in,
)
from jobgate.views import parse_states

router = APIRouter(route_class=PageRoute)
PAGE = 50
# Counts per state, never a scan of every job: active states up to COUNT_CAP ("1000+"),
# final ones among the newest COUNT_WINDOW matching jobs; with a label filter, all among
# the newest LABEL_WINDOW jobs with the label (each costs a row read: docs/benchmarks.md).
COUNT_CAP = 1000
COUNT_WINDOW = 5000
LABEL_WINDOW = 1000
LIVE_TICK_S = 2.0  # how often a live page looks again when no change woke it
LIVE_GAP_S = 0.5  # and at most this often, however busy the gateway
_QUERY = re.compile(r"[\w=&%+.~-]*")  # a query string as Filters.query writes it
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
_Many = Annotated[list[str] | None, Query()]


@dataclass
class Filters:
    state: list[str] = field(default_factory=list)
    destination: str = ""
    label: str = ""
    name: str = ""
    owner: str = ""
    before: str = ""

    def service(self, viewer: Viewer) -> dict[str, Any]:
        """`list`'s filters: a user's own jobs, an admin's all (or one owner's)."""
        labels = None
        if self.label:
            key, sep, value = self.label.partition("=")
            if not sep or not key:
                raise SpecError("label", "give a label as key=value")
            labels = {key.strip(): value.strip()}
        owner = (self.owner or None) if viewer.user.admin else viewer.user.name
        return {
            "state": parse_states(self.state) if self.state else None,
            "destination": self.destination or None,
            "label": labels,
            "name": self.name or None,
            "owner": owner,
        }

    def query(self, **change: Any) -> str:
        values = {**self.__dict__, **change}
        return urlencode([(k, v) for k, v in values.items() for v in _many(v) if v], doseq=True)


def _many(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def check_texts(values: dict[str, str]) -> None:
    """No NUL (no store holds one: PostgreSQL refuses it) nor lone surrogate in a field."""
    for name, value in values.items():
        if _NOT_TEXT.search(value):
            raise SpecError(name, "contains a NUL byte or a lone UTF-16 surrogate")


def _filters(
    state: _Many = None,
    destination: str = "",
    label: str = "",
    name: str = "",
    owner: str = "",
    before: str = "",
) -> Filters:
    if before and not is_id(before):
        raise SpecError("before", "not a job id")
    texts = {"state": "".join(state or []), "destination": destination, "label": label}
    check_texts({**texts, "name": name, "owner": owner})
    return Filters([s for s in state or [] if s], destination, label, name, owner, before)


@dataclass
class Row:
    job: JobRecord
    elapsed: str
    waiting: str | None


async def _rows(service: JobService, filters: dict[str, Any], before: str) -> list[Row]:
    jobs = await service.list(before=before or None, limit=PAGE, **filters)
    now = datetime.now(UTC)
    return [Row(j, fmt.elapsed(j, now), await service.waiting_reason(j)) for j in jobs]


async def _counts(service: JobService, f: Filters, filters: dict[str, Any]) -> dict[str, Any]:
    window = LABEL_WINDOW if filters["label"] else COUNT_WINDOW
    found, full = await service.system.state_counts(COUNT_CAP, window, **filters)
    counts = {s: n for s, n in found.items() if n}
    shown = {
        s: f"{n:,}" if s.final or n < COUNT_CAP else f"{COUNT_CAP:,}+" for s, n in counts.items()
    }
    links = {s: f.query(state=[s.value], before="") for s in counts}
    note = ""
    if full and filters["label"]:
        note = f"Counted among the newest {window:,} jobs with this label."
    elif full:
        note = f"Final states: counted among the newest {window:,} matching jobs."
    return {"counts": shown, "state_links": links, "window": note}


@router.get("/jobs")
async def jobs_page(request: Request, viewer: CurrentViewer, state: _Many = None,
                    destination: str = "", label: str = "", name: str = "",
                    owner: str = "", before: str = "") -> Response:  # fmt: skip
    f = _filters(state, destination, label, name, owner, before)
    service = dashboard(request).service
    filters = f.service(viewer)
    rows = await _rows(service, filters, f.before)
    older = f.query(before=rows[-1].job.id) if len(rows) == PAGE else ""
    return render(
        request, "jobs.html", viewer, f=f, rows=rows, older=older, newest=f.query(before=""),
        query=f.query(), live=not f.before, admin=viewer.user.admin, states=list(JobState),
        destinations=sorted(service.config.destinations),
        **await _counts(service, f, filters),
    )  # fmt: skip


@router.get("/jobs/stream")
async def jobs_stream(request: Request, viewer: CurrentViewer, state: _Many = None,
                      destination: str = "", label: str = "", name: str = "",
                      owner: str = "") -> Response:  # fmt: skip
    """The first page's rows and counts (HTML for htmx's SSE swap) whenever they change."""
    f = _filters(state, destination, label, name, owner)
    filters = f.service(viewer)
    stream = _live(request, dashboard(request).service, viewer, f, filters)
    return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)


async def _live(
    request: Request, service: JobService, viewer: Viewer, f: Filters, filters: dict[str, Any]
) -> AsyncIterator[str]:
    sent: dict[str, str] = {}
    version = -1
    while await still_signed_in(request, viewer):
        rows = fragment(
            "_rows.html", rows=await _rows(service, filters, ""), admin=viewer.user.admin
        )
        counts = fragment("_counts.html", **await _counts(service, f, filters))
        for event, html in (("rows", rows), ("counts", counts)):
            if sent.get(event) != html:
                sent[event] = html
                yield sse(event, html)
        yield ": waiting\n\n"
        version = await service.changes.wait(version, LIVE_TICK_S)
        await asyncio.sleep(LIVE_GAP_S)  # a rate limit: many changes, one read


def sse(event: str, html: str) -> str:
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


@router.post("/jobs/cancel")
async def cancel_jobs(request: Request, posted: PostedForm) -> Response:
    service, user = dashboard(request).service, posted.viewer.user
    ids = [i for i in posted.form.getlist("ids") if isinstance(i, str) and is_id(i)]
    done = 0
    for job_id in ids:
        try:
            job = await service.get(job_id)
        except NotFoundError:
            continue
        if job.owner == user.name or user.admin:  # others' jobs: as if they did not exist
            await service.cancel(job_id)
            done += 1
    note = f"Cancel requested for {done} job{'s' * (done != 1)}." if done else "No job selected."
    posted.viewer.session.flash.append(note)
    back = posted.form.get("back")
    query = back if isinstance(back, str) and _QUERY.fullmatch(back) else ""
    return RedirectResponse(f"{BASE}/jobs?{query}", status_code=303, headers=HEADERS)
