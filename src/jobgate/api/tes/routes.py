"""GA4GH TES 1.1 under /ga4gh/tes/v1: service-info, tasks (create, list, get, cancel),
and the schema this door answers to (openapi.json beside this module). Users and
ownership as everywhere: the same bearer tokens (or HTTP Basic, the token as password),
a task is its owner's (and admins'), someone else's is 404."""

from __future__ import annotations

import asyncio
import json
import socket
from functools import cache
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from jobgate.api.bodies import check_text, token_of
from jobgate.api.deps import ApiContext, Ctx
from jobgate.api.tes.models import STATES, Task
from jobgate.api.tes.staging import Storage
from jobgate.api.tes.tasks import LABEL, Outputs, job_spec, parameters
from jobgate.api.tes.views import TaskViews, tes_state
from jobgate.errors import NotFoundError, SpecError, spec_error
from jobgate.service import Area, JobService
from jobgate.service.callback_urls import CallbackUrls
from jobgate.spec import JobRecord
from jobgate.states import JobState
from jobgate.users import User
from jobgate.version import __version__

PREFIX = "/ga4gh/tes/v1"
router = APIRouter(tags=["ga4gh-tes"])
_S = JobState
# The jobgate states a TES state can come from (then checked job by job: tes_state).
_CANDIDATES: dict[str, list[JobState]] = {
    "QUEUED": [_S.NEW, _S.QUEUED, _S.SUBMITTED], "INITIALIZING": [_S.STAGING_IN],
    "RUNNING": [_S.RUNNING, _S.STAGING_OUT], "COMPLETE": [_S.COMPLETED],
    "EXECUTOR_ERROR": [_S.FAILED], "CANCELED": [_S.CANCELLED],
    "SYSTEM_ERROR": [_S.FAILED, _S.TIMEOUT, _S.REJECTED, _S.LOST, _S.COMPLETED],
    "CANCELING": [s for s in JobState if not s.final], "PREEMPTED": [_S.FAILED, _S.LOST],
    "UNKNOWN": [], "PAUSED": [],
}  # fmt: skip
View = Annotated[str, Query(pattern="^(MINIMAL|BASIC|FULL)$")]


class Door:
    """What the routes share: the storage policy, the views (with their cache)."""

    def __init__(self, service: JobService) -> None:
        hosts = CallbackUrls(service.config.tes.allowed_hosts)  # as callbacks: public only
        self.storage = Storage(service.config.tes, hosts.check_now)
        self.views = TaskViews(service)
        self.outputs = Outputs(service, self.storage)


def install(app: Any, service: JobService) -> None:
    door = Door(service)
    app.state.tes = door
    service.results.finishers.append(door.outputs)
    # Its own schema (openapi.json, TES's), not in jobgate's /api/v1 one.
    app.include_router(router, prefix=PREFIX, include_in_schema=False)


async def _user(request: Request) -> User:
    """Bearer (or Basic with the token as password): the API's users."""
    ctx: ApiContext = request.app.state.ctx
    token = token_of(request.headers.get("authorization", ""))
    user = await ctx.service.accounts.authenticate(token) if token else None
    if user is None:
        raise HTTPException(401, "a bearer token (or Basic with the token as password)")
    return user


TesUser = Annotated[User, Depends(_user)]


def _door(request: Request) -> Door:
    door: Door = request.app.state.tes
    return door


@router.get("/service-info")
async def service_info(ctx: Ctx) -> dict[str, Any]:
    config = ctx.service.config
    params = sorted({p for d in config.destinations.values() for p in parameters(d)})
    return {
        "id": f"org.jobgate.{socket.gethostname()}",
        "name": "jobgate",
        "type": {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"},
        "description": "jobgate: one gateway for batch jobs (local, SSH, Slurm, PBS)",
        "organization": {"name": "jobgate", "url": "https://github.com/jobgate/jobgate"},
        "version": __version__,
        "storage": [f"{s}://" for s in config.tes.storage],
        "tesResources_backend_parameters": params,
    }


@router.post("/tasks")
async def create_task(request: Request, user: TesUser, ctx: Ctx) -> dict[str, str]:
    try:
        body = json.loads(await request.body())
        check_text(body)
        task = Task.model_validate(body)
    except ValueError as exc:
        raise _invalid(exc) from None
    door = _door(request)
    service = ctx.service
    spec = await asyncio.to_thread(
        job_spec, task, service.config, user.name, door.storage, service.files.keep
    )
    record = await service.submit(spec, owner=user.name, area=Area())
    return {"id": record.id}


def _invalid(exc: ValueError) -> SpecError:
    if isinstance(exc, ValidationError):
        return spec_error(exc)
    return SpecError("body", f"not a JSON task: {exc}")


@router.get("/tasks")
async def list_tasks(
    request: Request,
    user: TesUser,
    ctx: Ctx,
    name_prefix: str | None = None,
    state: Annotated[str | None, Query(pattern=f"^({'|'.join(STATES)})$")] = None,
    tag_key: Annotated[list[str] | None, Query()] = None,
    tag_value: Annotated[list[str] | None, Query()] = None,
    page_size: Annotated[int, Query(ge=1, le=2047)] = 256,
    page_token: str | None = None,
    view: View = "MINIMAL",
) -> JSONResponse:
    keys, values = tag_key or [], tag_value or []
    for text in [name_prefix or "", *keys, *values]:
        check_text(text, "query")
    # A token is the last id of a page; anything else pages from where it sorts.
    before = (
        "".join(c for c in (page_token or "") if c.isascii() and c.isalnum())[:26].upper() or None
    )
    exact = {k: v for k, v in zip(keys, values, strict=False) if v}
    anyvalue = [k for i, k in enumerate(keys) if i >= len(values) or not values[i]]
    filters: dict[str, Any] = {"label": {**exact, LABEL: "1"}, "label_keys": anyvalue}
    filters |= {"name_prefix": name_prefix, "owner": None if user.admin else user.name}
    if state is not None:
        filters["state"] = _CANDIDATES[state]
    found, cursor = await _page(ctx.service, filters, state, page_size, before)
    results = await _results(ctx.service, found)
    door = _door(request)
    tasks = [await door.views.render(j, view, results.get(j.id)) for j in found]
    body: dict[str, Any] = {"tasks": tasks}
    if cursor:
        body["next_page_token"] = cursor
    return JSONResponse(body)


async def _page(
    service: JobService, filters: dict[str, Any], state: str | None, size: int, before: str | None
) -> tuple[list[JobRecord], str | None]:
    """A page of tasks, newest first; with a state filter, only jobs in that TES state
    (a few pages of candidates are read to fill it). The token is the last job seen."""
    if state is not None and not filters["state"]:
        return [], None
    found: list[JobRecord] = []
    for _ in range(8):
        batch = await service.list(before=before, limit=size + 1, **filters)
        more = len(batch) > size
        batch = batch[:size]
        if state is not None:
            results = await _results(service, batch)
            batch = [j for j in batch if tes_state(j, results.get(j.id)) == state]
        found += batch
        if len(found) >= size or not more:
            break
        before = batch[-1].id if batch else before
    return found[:size], (found[size - 1].id if len(found) >= size else None)


async def _results(service: JobService, jobs: list[JobRecord]) -> dict[str, dict[str, Any]]:
    done = [j.id for j in jobs if j.state == _S.COMPLETED or j.state.final]
    if not done:
        return {}
    return {r.job_id: r.data for r in await service.results.list(job_ids=done, limit=len(done))}


async def _task(service: JobService, user: User, task_id: str) -> JobRecord:
    if not task_id.isalnum() or len(task_id) != 26:
        raise NotFoundError(f"no task {task_id!r}")
    job = await service.get(task_id)
    if (job.owner != user.name and not user.admin) or job.labels.get(LABEL) != "1":
        raise NotFoundError(f"no task {task_id!r}")
    return job


@router.get("/tasks/{task_id}")
async def get_task(
    request: Request, task_id: str, user: TesUser, ctx: Ctx, view: View = "MINIMAL"
) -> JSONResponse:
    job = await _task(ctx.service, user, task_id)
    result = await ctx.service.results.get(job.id) if job.state.final else None
    return JSONResponse(
        await _door(request).views.render(job, view, result.data if result else None)
    )


@router.post("/tasks/{task_id}:cancel")
async def cancel_task(task_id: str, user: TesUser, ctx: Ctx) -> dict[str, Any]:
    job = await _task(ctx.service, user, task_id)
    await ctx.service.cancel(job.id)
    return {}


@router.get("/openapi.json", include_in_schema=False)
async def openapi() -> JSONResponse:
    return JSONResponse(_schema())


@cache
def _schema() -> dict[str, Any]:
    return json.loads(files("jobgate.api.tes").joinpath("openapi.json").read_text())  # type: ignore[no-any-return]
