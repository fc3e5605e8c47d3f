"""Users and tokens, for the doors: who a token is, and new tokens."""

from __future__ import annotations

from jobgate.store import AsyncStore
from jobgate.store.accounts import Accounts
from jobgate.users import User


class AccountService:
    def __init__(self, db: AsyncStore) -> None:
        self._db = db
        self._accounts = Accounts(db.sync)

    async def authenticate(self, token: str) -> User | None:
        """The token's user, or None. A token seen in the last seconds costs no query."""
        return self._accounts.cached(token) or await self._db.read(
            self._accounts.authenticate, token
        )

    async def user(self, name: str) -> User:
        return await self._db.read(self._accounts.user, name)

    async def create_token(self, user: str, admin: bool = False, label: str = "") -> str:
        """A new token for `user` (created if new); the only time the token is seen."""
        return await self._db.write(self._accounts.create_token, user, admin, label)

    def create_token_now(self, user: str, admin: bool = False, label: str = "") -> str:
        """create_token for sync callers (the CLI)."""
        return self._accounts.create_token(user, admin, label)
