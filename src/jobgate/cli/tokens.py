"""`jobgate token create|list|revoke`: on the gateway's host, writing to the store
directly (or use /api/v1/tokens). A revocation reaches every running gateway on the
store at once (within a quarter of a second)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from jobgate.cli import render
from jobgate.cli.options import json_option
from jobgate.errors import SpecError
from jobgate.sdk import Gateway
from jobgate.service.accounts import SIGN_IN_LINK, AccountService

_DURATION = re.compile(r"(\d{1,9})([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def expiry(value: str | None, now: datetime | None = None) -> datetime | None:
    """`--expires`: a duration from now (90m, 12h, 30d, 2w) or a time (ISO 8601, UTC
    unless it has a zone: 2026-12-31, 2026-12-31T00:00Z)."""
    if value is None:
        return None
    now = now or datetime.now(UTC)
    match = _DURATION.fullmatch(value.strip().lower())
    if match:
        try:
            return now + timedelta(seconds=int(match[1]) * _UNIT_S[match[2]])
        except OverflowError:
            raise SpecError("expires", f"{value!r} is too far away") from None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SpecError(
            "expires", f"{value!r} is neither a duration (12h, 30d) nor a time (2026-12-31T00:00Z)"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= now:
        raise SpecError("expires", f"{when.isoformat()} is not in the future")
    return when


def _accounts(ctx: click.Context) -> AccountService:
    """The store's accounts: this command works on the gateway's host only."""
    server, _ = ctx.find_root().meta["server"]
    if server:
        raise SpecError(
            "server",
            "manage tokens on the server's host, or with the API: POST /api/v1/tokens, "
            "GET /api/v1/tokens, DELETE /api/v1/tokens/ID",
        )
    gw = Gateway(supervise=False, **ctx.find_root().obj)
    ctx.call_on_close(gw.close)
    return gw.service.accounts


@click.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--user", required=True, help="The user the token acts as (created if new).")
@click.option("--admin", is_flag=True, help="The user sees and acts on every job.")
@click.option("--label", default="", help="A note to tell tokens apart.")
@click.option("--expires", help="Valid for (12h, 30d) or until (2026-12-31T00:00Z).")
@json_option
@click.pass_context
def token_create(
    ctx: click.Context, user: str, admin: bool, label: str, expires: str | None, as_json: bool
) -> None:
    """Create a token and print it (it is stored only as a hash: keep it)."""
    accounts = _accounts(ctx)
    try:
        new = accounts.create_token_now(user, admin=admin, label=label, expires_at=expiry(expires))
    except SpecError as exc:  # name the flag, not the service's field
        raise SpecError("expires", exc.message) if exc.field == "expires_at" else exc from None
    if as_json:
        render.print_json({"token": new.token, **render.token_json(new.info)})
    else:
        click.echo(new.token)


@token.command("list")
@click.option("--user", help="Only this user's tokens.")
@json_option
@click.pass_context
def token_list(ctx: click.Context, user: str | None, as_json: bool) -> None:
    """List tokens (never the tokens themselves): id, user, label, times."""
    infos = _accounts(ctx).tokens_now(user)
    if as_json:
        render.print_json([render.token_json(info) for info in infos])
    else:
        render.tokens_table(infos)


@token.command("revoke")
@click.argument("token_ids", nargs=-1, required=True)
@click.pass_context
def token_revoke(ctx: click.Context, token_ids: tuple[str, ...]) -> None:
    """Revoke tokens by id (see `jobgate token list`); every gateway refuses them at once."""
    accounts = _accounts(ctx)
    for token_id in token_ids:
        info = accounts.revoke_now(token_id)
        click.echo(f"{info.id} revoked ({info.user})")


@click.command("ui")
@click.option("--user", required=True, help="Who the link signs in (created if new).")
@click.option("--admin", is_flag=True, help="The user sees and acts on every job.")
@click.option("--url", default="http://127.0.0.1:8765", show_default=True, help="The gateway.")
@click.option("--expires", default="10m", show_default=True, help="The link works this long.")
@click.pass_context
def ui(ctx: click.Context, user: str, admin: bool, url: str, expires: str) -> None:
    """Print a one-time link that signs `user` in to the web dashboard (on the gateway's
    host: it writes the store). Opening it asks to confirm; it works once."""
    accounts = _accounts(ctx)
    when = expiry(expires)
    new = accounts.create_token_now(user, admin=admin, label=SIGN_IN_LINK, expires_at=when)
    click.echo(f"{url.rstrip('/')}/ui/signin/link?code={new.token}")
