"""Users and bearer tokens. Tokens are shown once and stored only as SHA-256 hashes; each
has a random public id to list and revoke it by. Every change that must reach the other
processes' token caches at once (a revocation, a user made admin) moves the `accounts`
marker, in the same transaction."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from jobgate.errors import NotFoundError
from jobgate.store.store import Store
from jobgate.store.tables import markers, tokens, users
from jobgate.units import ts
from jobgate.users import NewToken, TokenInfo, User

TOKEN_PREFIX = "jg_"  # noqa: S105 - a prefix, not a secret
MARKER = "accounts"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, store: Store) -> None:
        self.store = store

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
                    made = update(users).where(users.c.name == name, users.c.admin.is_(False))
                    if conn.execute(made.values(admin=True)).rowcount:
                        _move_marker(conn)  # no cached non-admin view of this user
        return self.user(name)

    def user(self, name: str) -> User:
        with self.store.reading() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no user {name!r}")
        return User(row.name, bool(row.admin), row.callback_secret)

    def create_token(
        self, user: str, admin: bool = False, label: str = "", expires_at: float | None = None
    ) -> NewToken:
        """A new token for `user` (created if needed); the only time the token is seen."""
        self.ensure_user(user, admin)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = {
            "hash": hash_token(token),
            "id": secrets.token_hex(8),
            "user": user,
            "label": label,
            "created_at": time.time(),
            "expires_at": expires_at,
        }
        with self.store.writing() as conn:
            conn.execute(insert(tokens), row)
        return NewToken(token, _info_of(row))

    def lookup(self, digest: str) -> tuple[User, float | None] | None:
        """The user of the token with this hash, and when it expires, if it is valid now."""
        # Looking up the hash leaks nothing useful: an attacker cannot choose hash prefixes.
        query = (
            select(users, tokens.c.expires_at)
            .join(tokens, tokens.c.user == users.c.name)
            .where(
                tokens.c.hash == digest,
                tokens.c.revoked_at.is_(None),
                or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > time.time()),
            )
        )
        with self.store.reading() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return User(row.name, bool(row.admin), row.callback_secret), row.expires_at

    def redeem(self, token: str, label: str) -> User | None:
        """Use up a one-time token: revoke it if it is valid now and has this label, in
        one guarded UPDATE (of two tries at once, one wins). Its user, or None."""
        live = update(tokens).where(
            tokens.c.hash == hash_token(token),
            tokens.c.label == label,
            tokens.c.revoked_at.is_(None),
            or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > time.time()),
        )
        with self.store.writing() as conn:
            used = live.values(revoked_at=time.time()).returning(tokens.c.user)
            name = conn.execute(used).scalar()
            if name is not None:
                _move_marker(conn)
        return None if name is None else self.user(name)

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        """Tokens (of `user`, or everyone's), oldest first; revoked and expired ones too."""
        query = select(tokens).order_by(tokens.c.created_at, tokens.c.id)
        if user is not None:
            query = query.where(tokens.c.user == user)
        with self.store.reading() as conn:
            return [_info_of(row._mapping) for row in conn.execute(query)]

    def revoke(self, token_id: str, user: str | None = None) -> TokenInfo:
        """Revoke the token (only if it is `user`'s, when given); revoking twice is once."""
        mine = tokens.c.id == token_id
        if user is not None:
            mine = mine & (tokens.c.user == user)
        with self.store.writing() as conn:
            revoked = update(tokens).where(mine, tokens.c.revoked_at.is_(None))
            took = conn.execute(revoked.values(revoked_at=time.time())).rowcount
            if took:
                _move_marker(conn)
            row = conn.execute(select(tokens).where(mine)).first()
        if row is None:
            raise NotFoundError(f"no token {token_id!r}")
        return _info_of(row._mapping)

    def marker(self) -> int:
        """How often the accounts changed in ways a token cache must see (one PK read)."""
        with self.store.reading() as conn:
            value = conn.execute(select(markers.c.value).where(markers.c.name == MARKER)).scalar()
        return int(value or 0)


def _move_marker(conn: Connection) -> None:
    moved = update(markers).where(markers.c.name == MARKER).values(value=markers.c.value + 1)
    if conn.execute(moved).rowcount:
        return
    try:  # a store whose row was never made (migration 0003 makes it)
        with conn.begin_nested():
            conn.execute(insert(markers), {"name": MARKER, "value": 1})
    except IntegrityError:
        conn.execute(moved)


def _info_of(row: Mapping[Any, Any]) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        user=row["user"],
        label=row["label"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        expires_at=ts(row.get("expires_at")),
        revoked_at=ts(row.get("revoked_at")),
    )
