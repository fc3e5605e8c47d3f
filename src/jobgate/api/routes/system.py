"""/healthz, /metrics, /destinations, /me."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from jobgate.api.deps import Ctx, CurrentUser
from jobgate.api.schemas import DestinationOut, MeOut

router = APIRouter()


@router.get("/healthz", tags=["system"])
async def healthz(ctx: Ctx) -> dict[str, str]:
    return await ctx.service.system.health()


@router.get("/metrics", response_class=PlainTextResponse, tags=["system"])
async def metrics(ctx: Ctx) -> str:
    system = ctx.service.system
    return ctx.metrics.render(
        await system.counts(), system.callback_outcomes(), system.refused_transitions()
    )


@router.get("/destinations", response_model=list[DestinationOut], tags=["destinations"])
async def destinations(ctx: Ctx, _: CurrentUser) -> list[DestinationOut]:
    return [DestinationOut(**row) for row in await ctx.service.system.destinations()]


@router.get("/me", response_model=MeOut, tags=["tokens"])
async def me(user: CurrentUser) -> MeOut:
    """The token's user, with the secret that signs the callbacks of their jobs."""
    return MeOut(user=user.name, admin=user.admin, callback_secret=user.callback_secret)
