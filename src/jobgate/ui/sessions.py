"""Dashboard sessions: a random id in an HttpOnly, SameSite=Strict cookie, mapped in this
process's memory to the token that signed in (never sent back to the browser), with an
idle and an absolute expiry, and a CSRF token per session for every form that changes
something. The token is checked again on each request, so revoking it ends the session."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "jobgate_session"
IDLE_S = 8 * 3600  # a working day without a click signs out
MAX_AGE_S = 24 * 3600  # and a day at most, however busy
MAX_SESSIONS = 10_000  # the oldest go first: memory stays bounded whoever signs in


@dataclass
class Session:
    id: str
    token: str
    csrf: str
    created: float
    seen: float
    flash: list[str] = field(default_factory=list)  # one-time notes for the next page
    token_id: str | None = None  # a token made for this session (a link's): revoked at its end

    def expired(self, now: float) -> bool:
        return now - self.seen > IDLE_S or now - self.created > MAX_AGE_S


def csrf_ok(session: Session, sent: str | None) -> bool:
    """Whether a form carried this session's CSRF token (compared in constant time)."""
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())


class Sessions:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}

    def start(self, token: str, token_id: str | None = None) -> Session:
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), token, secrets.token_urlsafe(32), now, now)
        session.token_id = token_id
        with self._lock:
            while len(self._by_id) >= MAX_SESSIONS:
                del self._by_id[next(iter(self._by_id))]  # dicts keep insertion order
            self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of this cookie value (its idle time starts again), or None."""
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._by_id.get(session_id)
            if session is None:
                return None
            if session.expired(now):
                del self._by_id[session_id]
                return None
            session.seen = now
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)
