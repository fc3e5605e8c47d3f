"""Who acts: a user of the gateway, as the store keeps them and tokens name them; and
what is shown of a token (never the token itself, which is seen once, when it is made)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class User:
    name: str
    admin: bool
    callback_secret: str  # signs this user's callbacks (HMAC-SHA256)


@dataclass(frozen=True)
class TokenInfo:
    id: str  # public: list and revoke by it (random; neither the token nor its hash)
    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None  # None: never
    revoked_at: datetime | None  # None: not revoked


@dataclass(frozen=True)
class NewToken:
    token: str  # the bearer token: shown this once, stored only as its hash
    info: TokenInfo
