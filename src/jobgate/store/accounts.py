"""Users and bearer tokens. Tokens are shown once and stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from jobgate.errors import NotFoundError
from jobgate.store.store import Store
from jobgate.store.tables import tokens, users
from jobgate.users import User

TOKEN_PREFIX = "jg_"  # noqa: S105 - a prefix, not a secret
AUTH_CACHE_S = 10.0  # a token's user is remembered this long (one query per request cost 20%)
_AUTH_CACHE_MAX = 10_000


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._known: dict[str, tuple[float, User]] = {}  # token hash -> (expiry, user)

    def ensure_user(self, name: str, admin: bool = False) -> User:
        """Create the user if new; an existing user is made admin if asked (never demoted)."""
        with self.store.writing() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(users),
                        {
                            "name": name,
                            "admin": admin,
                            "created_at": time.time(),
                            "callback_secret": secrets.token_urlsafe(32),
                        },
                    )
            except IntegrityError:
                if admin:
                    conn.execute(update(users).where(users.c.name == name).values(admin=True))
                    self._known.clear()  # no cached non-admin view of this user
        return self.user(name)

    def user(self, name: str) -> User:
        with self.store.reading() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no user {name!r}")
        return User(row.name, bool(row.admin), row.callback_secret)

    def create_token(self, user: str, admin: bool = False, label: str = "") -> str:
        """A new token for `user` (created if needed); the only time the token is seen."""
        self.ensure_user(user, admin)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.writing() as conn:
            conn.execute(
                insert(tokens),
                {
                    "hash": hash_token(token),
                    "user": user,
                    "label": label,
                    "created_at": time.time(),
                },
            )
        return token

    def cached(self, token: str) -> User | None:
        """The token's user if it was looked up in the last AUTH_CACHE_S (keyed by hash,
        so no token is kept in memory); no query."""
        known = self._known.get(hash_token(token))
        return known[1] if known is not None and known[0] > time.monotonic() else None

    def authenticate(self, token: str) -> User | None:
        """The token's user, looked up and remembered (unknown tokens are not)."""
        digest = hash_token(token)
        user = self._lookup(digest)
        if user is not None:
            if len(self._known) >= _AUTH_CACHE_MAX:
                self._known.clear()
            self._known[digest] = (time.monotonic() + AUTH_CACHE_S, user)
        return user

    def _lookup(self, digest: str) -> User | None:
        # Looking up the hash leaks nothing useful: an attacker cannot choose hash prefixes.
        with self.store.reading() as conn:
            row = conn.execute(
                select(users)
                .join(tokens, tokens.c.user == users.c.name)
                .where(tokens.c.hash == digest)
            ).first()
        return None if row is None else User(row.name, bool(row.admin), row.callback_secret)
