"""Results of job types: one job's, or a page of many (a sweep as one table)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from jobgate.api.bodies import QueryText, check_text
from jobgate.api.deps import Ctx, CurrentUser, OwnedJob
from jobgate.views import ResultOut

router = APIRouter(tags=["results"])


class ResultList(BaseModel):
    items: list[ResultOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


@router.get("/jobs/{job_id}/results", response_model=ResultOut | None)
async def job_results(job: OwnedJob, ctx: Ctx) -> ResultOut | None:
    """The job's results; `null` until its job type's parser has run (after it ended)."""
    found = await ctx.service.results.get(job.id)
    return None if found is None else ResultOut.of(found)


@router.get("/results", response_model=ResultList)
async def list_results(
    user: CurrentUser,
    ctx: Ctx,
    job_type: Annotated[QueryText | None, Query(description="Only this job type's")] = None,
    cursor: Annotated[
        QueryText | None, Query(description="`next_cursor` of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    owner: Annotated[QueryText | None, Query(description="Admins: one user's only")] = None,
) -> ResultList:
    """Newest first; yours (admins: everyone's, or `owner`'s)."""
    for field, value in (("job_type", job_type), ("cursor", cursor), ("owner", owner)):
        check_text(value, field)
    who = (owner or None) if user.admin else user.name
    rows = await ctx.service.results.list(
        job_type=job_type or None, owner=who, before=cursor or None, limit=limit
    )
    after = rows[-1].job_id if len(rows) == limit else None
    return ResultList(items=[ResultOut.of(r) for r in rows], next_cursor=after)
