"""Who acts: a user of the gateway, as the store keeps them and tokens name them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    name: str
    admin: bool
    callback_secret: str  # signs this user's callbacks (HMAC-SHA256)
