"""Dependencies: the context, the current user, and the one ownership check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

from jobgate.api.metrics import Metrics
from jobgate.errors import NotFoundError
from jobgate.ids import is_id
from jobgate.service import JobService
from jobgate.spec import JobRecord
from jobgate.users import User


@dataclass
class ApiContext:
    service: JobService
    max_upload_bytes: int = 100 * 1024 * 1024
    metrics: Metrics = field(default_factory=Metrics)


async def _context(request: Request) -> ApiContext:  # async: sync deps run in a thread
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(_context)]


class _BearerUser(HTTPBearer):
    """The request's user, from its bearer token: one dependency (FastAPI resolves each
    sub-dependency per request), still published in OpenAPI as the HTTPBearer scheme."""

    async def __call__(self, request: Request) -> User:  # type: ignore[override]
        cred = await super().__call__(request)
        if cred is None:
            raise HTTPException(401, "missing bearer token")
        ctx: ApiContext = request.app.state.ctx
        user = await ctx.service.accounts.authenticate(cred.credentials)
        if user is None:
            raise HTTPException(401, "invalid token")
        return user


_current_user = _BearerUser(
    auto_error=False,
    scheme_name="HTTPBearer",
    description="A token from `jobgate token create`",
)
CurrentUser = Annotated[User, Depends(_current_user)]


async def _admin(user: CurrentUser) -> User:
    if not user.admin:
        raise HTTPException(403, "admin only")
    return user


AdminUser = Annotated[User, Depends(_admin)]


async def _owned_job(job_id: str, user: CurrentUser, ctx: Ctx) -> JobRecord:
    """The job, if the user owns it (or is admin); others' jobs are 404, not 403, so that
    their existence does not leak."""
    if not is_id(job_id):  # not an id we make (and no NUL byte for PostgreSQL)
        raise NotFoundError(f"no job {job_id!r}")
    job = await ctx.service.get(job_id)
    if job.owner != user.name and not user.admin:
        raise NotFoundError(f"no job {job_id!r}")
    return job


OwnedJob = Annotated[JobRecord, Depends(_owned_job)]
