"""/ui/submit: a script, its destination and resources, submitted through the service
with the API's checks and messages; on an error the form comes back, nothing created."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from jobgate.errors import SpecError
from jobgate.service import Area
from jobgate.ui.jobs import check_texts
from jobgate.ui.pages import BASE, HEADERS, CurrentViewer, PageRoute, PostedForm, dashboard, render

router = APIRouter(route_class=PageRoute)
FIELDS = ("name", "destination", "script", "walltime", "memory", "cpus")
RESOURCES = {"walltime": "walltime", "memory": "memory", "cpus": "cpus_per_task"}


def spec_of(values: dict[str, str]) -> dict[str, Any]:
    """The JobSpec the form asks for: blank fields are left to the destination's defaults."""
    spec: dict[str, Any] = {"script": values["script"]}
    if values["name"]:
        spec["name"] = values["name"]
    if values["destination"]:
        spec["destination"] = values["destination"]
    resources = {key: values[f] for f, key in RESOURCES.items() if values[f]}
    if resources:
        spec["resources"] = resources
    return spec


def _page(request: Request, posted_or_viewer: Any, status: int, **values: Any) -> Response:
    service = dashboard(request).service
    return render(
        request, "submit.html", posted_or_viewer, status,
        destinations=sorted(service.config.destinations),
        default=service.config.default_destination, **values,
    )  # fmt: skip


@router.get("/submit")
async def submit_page(request: Request, viewer: CurrentViewer) -> Response:
    return _page(request, viewer, 200, values=dict.fromkeys(FIELDS, ""), error=None)


@router.post("/submit")
async def submit(request: Request, posted: PostedForm) -> Response:
    values = {f: v if isinstance(v := posted.form.get(f, ""), str) else "" for f in FIELDS}
    service = dashboard(request).service
    try:
        check_texts(values)
        if not values["script"].strip():
            raise SpecError("script", "give the script to run")
        job = await service.submit(spec_of(values), owner=posted.viewer.user.name, area=Area())
    except SpecError as exc:
        error = {"field": exc.field, "message": exc.message}
        return _page(request, posted.viewer, 422, values=values, error=error)
    posted.viewer.session.flash.append(f"Submitted job {job.id}.")
    return RedirectResponse(f"{BASE}/jobs/{job.id}", status_code=303, headers=HEADERS)
