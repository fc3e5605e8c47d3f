"""The web dashboard: server-rendered pages over the same JobService as the API, at /ui/
(docs/dashboard.md). Pages read without JavaScript; htmx and its SSE extension, vendored
in static/, make the tables, the job page and the logs live."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from jobgate.service import JobService
from jobgate.ui import account, job, jobs, submit, system
from jobgate.ui.pages import BASE, Dashboard, PageError, error_page
from jobgate.ui.sessions import Sessions

HOME = f"{BASE}/"


def install(app: FastAPI, service: JobService) -> None:
    """The dashboard's routes and assets in `app`, its sessions in this process's memory."""
    app.state.dashboard = Dashboard(service, Sessions())
    static = StaticFiles(directory=Path(__file__).with_name("static"))
    app.mount(f"{BASE}/static", static, name="ui-static")
    for module in (account, jobs, job, submit, system):
        app.include_router(module.router, prefix=BASE, include_in_schema=False)

    async def home() -> RedirectResponse:
        return RedirectResponse(f"{BASE}/jobs", status_code=303)

    for path in (BASE, HOME):
        app.add_api_route(path, home, include_in_schema=False, methods=["GET"])

    async def unknown(request: Request) -> Response:  # a page, not the API's problem+json
        return error_page(request, PageError(404, "Not found", "There is no such page."))

    app.add_api_route(f"{BASE}/{{rest:path}}", unknown, include_in_schema=False, methods=["GET"])
