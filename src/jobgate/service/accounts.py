"""Users and tokens, for the doors: who a token is; new tokens, with an optional expiry;
listing and revoking them (see jobgate.service.tokens for how revocation reaches every
process at once)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from jobgate.errors import NotFoundError, SpecError
from jobgate.service.tokens import TokenCache
from jobgate.store import AsyncStore
from jobgate.store.accounts import Accounts
from jobgate.users import NewToken, TokenInfo, User

MAX_EXPIRY_S = 100 * 365 * 86400
# `jobgate ui` prints a sign-in link: a short-lived token with this label, which the
# dashboard uses up once for a session token of its own (labelled LINK_SESSION).
SIGN_IN_LINK = "dashboard sign-in link"
LINK_SESSION = "dashboard session (from a sign-in link)"
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")  # as the store makes them


class AccountService:
    def __init__(self, db: AsyncStore) -> None:
        self._db = db
        self._accounts = Accounts(db.sync)
        self._cache = TokenCache(self._accounts)

    async def authenticate(self, token: str) -> User | None:
        """The token's user, or None. A token seen in the last seconds costs no query."""
        return self._cache.cached(token) or await self._db.read(self._cache.authenticate, token)

    async def user(self, name: str) -> User:
        return await self._db.read(self._accounts.user, name)

    async def create_token(
        self, user: str, admin: bool = False, label: str = "", expires_at: datetime | None = None
    ) -> NewToken:
        """A new token for `user` (created if new); the only time the token is seen."""
        when = _expiry(expires_at)
        new = await self._db.write(self._accounts.create_token, user, admin, label, when)
        self._cache.forget()  # the user may have been made admin
        return new

    def create_token_now(
        self, user: str, admin: bool = False, label: str = "", expires_at: datetime | None = None
    ) -> NewToken:
        """create_token for sync callers (the CLI)."""
        return self._accounts.create_token(user, admin, label, _expiry(expires_at))

    async def tokens(self, user: str | None = None) -> list[TokenInfo]:
        """`user`'s tokens (None: everyone's), revoked and expired ones included."""
        return await self._db.read(self._accounts.tokens, user)

    def tokens_now(self, user: str | None = None) -> list[TokenInfo]:
        return self._accounts.tokens(user)

    async def revoke(self, token_id: str, user: str | None = None) -> TokenInfo:
        """Revoke a token, at once for every gateway on this store. With `user`, only a
        token of theirs: any other id is NotFoundError, as an unknown one."""
        _check_id(token_id)
        info = await self._db.write(self._accounts.revoke, token_id, user)
        self._cache.forget()
        return info

    async def redeem(self, token: str, label: str) -> User | None:
        """Use up a one-time token with this label (a dashboard sign-in link): its user
        the first time, None ever after (or if it expired, or has another label)."""
        user = await self._db.write(self._accounts.redeem, token, label)
        self._cache.forget()
        return user

    def revoke_now(self, token_id: str, user: str | None = None) -> TokenInfo:
        _check_id(token_id)
        info = self._accounts.revoke(token_id, user)
        self._cache.forget()
        return info


def _check_id(token_id: str) -> None:
    if not _TOKEN_ID.fullmatch(token_id):  # not an id we make (nor a NUL for PostgreSQL)
        raise NotFoundError(f"no token {token_id!r}")


def _expiry(expires_at: datetime | None) -> float | None:
    if expires_at is None:
        return None
    when = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
    if when.timestamp() <= time.time():
        raise SpecError("expires_at", f"{when.isoformat()} is not in the future")
    if when.timestamp() > time.time() + MAX_EXPIRY_S:  # and shown without overflow
        raise SpecError("expires_at", f"{when.isoformat()} is over 100 years away: give none")
    return when.timestamp()
