"""/tokens: create (admin), list and revoke. A user lists and revokes their own tokens, an
admin anyone's; someone else's token is 404, exactly like one that does not exist."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from jobgate.api import problems
from jobgate.api.deps import AdminUser, Ctx, CurrentUser
from jobgate.api.schemas import TokenIn, TokenInfoOut, TokenOut, UserName

router = APIRouter(tags=["tokens"])


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenOut,
    responses=problems.responses(401, 403, 422),
)
async def create_token(body: TokenIn, ctx: Ctx, _: AdminUser) -> TokenOut:
    """A token for `user` (made if new), valid until revoked or its expiry, if given."""
    accounts = ctx.service.accounts
    new = await accounts.create_token(
        body.user, admin=body.admin, label=body.label, expires_at=body.expiry()
    )
    admin = (await accounts.user(body.user)).admin
    return TokenOut(**asdict(new.info), admin=admin, token=new.token)


@router.get(
    "/tokens",
    response_model=list[TokenInfoOut],
    responses=problems.responses(401, 403, 422),
)
async def list_tokens(
    ctx: Ctx,
    user: CurrentUser,
    of: Annotated[UserName | None, Query(alias="user", description="Admin: only theirs")] = None,
) -> list[TokenInfoOut]:
    """Your tokens, oldest first, with expired and revoked ones; an admin: everyone's."""
    if not user.admin and of not in (None, user.name):
        raise HTTPException(403, "only an admin lists another user's tokens")
    infos = await ctx.service.accounts.tokens(of if user.admin else user.name)
    return [TokenInfoOut.of(info) for info in infos]


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenInfoOut,
    responses=problems.responses(401, 404),
)
async def revoke_token(token_id: str, ctx: Ctx, user: CurrentUser) -> TokenInfoOut:
    """Revoke a token (yours; an admin: anyone's): every gateway on this store refuses it
    within a quarter of a second. Revoking it again changes nothing."""
    info = await ctx.service.accounts.revoke(token_id, None if user.admin else user.name)
    return TokenInfoOut.of(info)
