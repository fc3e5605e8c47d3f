"""/ui/destinations (capacity, load, why jobs wait, health) and /ui/charts (jobs by state
over time, throughput per minute) with the small JSON the charts draw."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from jobgate.config import Destination
from jobgate.service.system import SystemService
from jobgate.states import JobState
from jobgate.ui import format as fmt
from jobgate.ui.jobs import COUNT_CAP
from jobgate.ui.pages import HEADERS, CurrentViewer, PageRoute, dashboard, render

router = APIRouter(route_class=PageRoute)
ACTIVITY_CAP = 20_000  # jobs a chart reads at most (the newest of its window)


@router.get("/destinations")
async def destinations_page(request: Request, viewer: CurrentViewer) -> Response:
    service = dashboard(request).service
    system = service.system
    rows = [await _load(service.system, d) for d in service.config.destinations.values()]
    now = time.time()
    gateways = [
        {**g, "age": fmt.duration(now - g["heartbeat_at"])} for g in await system.gateways()
    ]
    return render(
        request,
        "destinations.html",
        viewer,
        destinations=rows,
        health=await system.health(),
        gateways=gateways,
        refused=system.refused_transitions(),
        callbacks=system.callback_outcomes(),
    )


async def _load(system: SystemService, dest: Destination) -> dict[str, Any]:
    """A destination's load from capped, index-backed counts of its active states (not
    a count of every job it ever ran)."""
    counts, _ = await system.state_counts(COUNT_CAP, 1, destination=dest.name)
    active = sum(n for s, n in counts.items() if s.active)
    queued = counts.get(JobState.QUEUED, 0)
    full = active >= dest.capacity and queued
    return {
        "name": dest.name,
        "scheduler": dest.scheduler,
        "transport": dest.transport,
        "capacity": dest.capacity,
        "active": active,
        "queued": f"{COUNT_CAP:,}+" if queued >= COUNT_CAP else queued,
        "why": "at capacity: new jobs wait for a slot" if full else "",
    }


@router.get("/charts")
async def charts_page(request: Request, viewer: CurrentViewer) -> Response:
    data = await _series(request, viewer.user.name if not viewer.user.admin else None, 60)
    recent = list(zip(*(data[k][-10:] for k in ("x", "submitted", "finished", "waiting",
                                                 "running", "done")), strict=True))  # fmt: skip
    table = [(fmt.when_s(row[0]), *row[1:]) for row in reversed(recent)]
    return render(request, "charts.html", viewer, table=table)


@router.get("/charts/data.json")
async def charts_data(
    request: Request, viewer: CurrentViewer, minutes: int = Query(60, ge=5, le=24 * 60)
) -> Response:
    owner = None if viewer.user.admin else viewer.user.name
    return JSONResponse(await _series(request, owner, minutes), headers=HEADERS)


async def _series(request: Request, owner: str | None, minutes: int) -> dict[str, list[int]]:
    system = dashboard(request).service.system
    rows = await system.activity(minutes * 60, ACTIVITY_CAP, owner)
    return fmt.series(rows, time.time(), minutes)
