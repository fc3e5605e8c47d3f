"""/healthz, /metrics, /destinations, /me."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from jobgate.api.deps import Ctx, CurrentUser
from jobgate.api.problems import problem
from jobgate.api.schemas import DestinationOut, MeOut

router = APIRouter()


@router.get(
    "/healthz",
    tags=["system"],
    responses={503: {"description": "The store cannot take writes (or reads) now"}},
)
async def healthz(ctx: Ctx) -> Response:
    """200 if the store answers reads and takes writes; 503 (problem+json, with what works)
    if not. It answers within a few seconds either way."""
    store = await ctx.service.system.health()
    if all(store.values()):
        return JSONResponse({"status": "ok", "store": store})
    down = [what for what, ok in store.items() if not ok]
    return problem(
        503, "Store unavailable", f"the store does not take {' or '.join(down)}", store=store
    )


@router.get("/metrics", response_class=PlainTextResponse, tags=["system"])
async def metrics(ctx: Ctx) -> str:
    system = ctx.service.system
    return ctx.metrics.render(
        await system.counts(),
        system.callback_outcomes(),
        system.refused_transitions(),
        system.poll_latency(),
    )


@router.get("/destinations", response_model=list[DestinationOut], tags=["destinations"])
async def destinations(ctx: Ctx, _: CurrentUser) -> list[DestinationOut]:
    return [DestinationOut(**row) for row in await ctx.service.system.destinations()]


@router.get("/me", response_model=MeOut, tags=["tokens"])
async def me(user: CurrentUser) -> MeOut:
    """The token's user, with the secret that signs the callbacks of their jobs."""
    return MeOut(user=user.name, admin=user.admin, callback_secret=user.callback_secret)
