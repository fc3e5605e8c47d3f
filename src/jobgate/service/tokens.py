"""Which tokens are valid, asked of the store as seldom as is safe.

A valid token's user is remembered for AUTH_CACHE_S, keyed by the token's hash (a query
per request cost a fifth of the API's throughput), but never past the token's expiry,
and trusted only while the store's `accounts` marker has not moved since it was read.
Every revocation moves that marker, whichever process (`jobgate token revoke`, another
gateway on the same PostgreSQL) made it. The marker is one primary-key read, made at most
every REVOCATION_CHECK_S by a request that finds it older; a revocation made in this
process forgets everything at once. So a revoked token is refused by every gateway for
requests that start more than REVOCATION_CHECK_S (plus one read) after the revocation.
"""

from __future__ import annotations

import math
import threading
import time

from jobgate.store.accounts import Accounts, hash_token
from jobgate.users import User

AUTH_CACHE_S = 10.0
REVOCATION_CHECK_S = 0.25
_MAX_KNOWN = 10_000


class TokenCache:
    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts
        self._known: dict[str, tuple[float, User]] = {}  # token hash -> (until, user)
        self._marker: int | None = None
        self._checked = -math.inf  # when (monotonic) the marker was last read
        self._lock = threading.Lock()  # store reads run in worker threads (PostgreSQL)

    def cached(self, token: str) -> User | None:
        """The token's user if remembered and the marker was read recently; no query."""
        now = time.monotonic()
        if now - self._checked >= REVOCATION_CHECK_S:
            return None
        known = self._known.get(hash_token(token))
        return known[1] if known is not None and known[0] > now else None

    def authenticate(self, token: str) -> User | None:
        """The token's user, or None (unknown, expired or revoked); remembers valid ones.
        Sync: call it where the store's reads run."""
        digest = hash_token(token)
        marker = self._refresh()
        known = self._known.get(digest)
        if known is not None and known[0] > time.monotonic():
            return known[1]
        found = self._accounts.lookup(digest)
        if found is None:
            return None
        user, expires_at = found
        ttl = AUTH_CACHE_S if expires_at is None else min(AUTH_CACHE_S, expires_at - time.time())
        with self._lock:
            # Not if the marker moved while we looked: the token may be revoked by now.
            if ttl > 0 and self._marker == marker:
                if len(self._known) >= _MAX_KNOWN:
                    self._known.clear()
                self._known[digest] = (time.monotonic() + ttl, user)
        return user

    def forget(self) -> None:
        """After an account change in this process: trust nothing remembered."""
        with self._lock:
            self._known.clear()
            self._checked = -math.inf

    def _refresh(self) -> int | None:
        """The marker, read again if older than REVOCATION_CHECK_S (by one caller at a
        time); everything remembered is dropped when it moved."""
        with self._lock:
            started = time.monotonic()
            if started - self._checked < REVOCATION_CHECK_S:
                return self._marker
            value = self._accounts.marker()
            if value != self._marker:
                self._known.clear()
                self._marker = value
            self._checked = started  # what committed before this read is seen
            return value
