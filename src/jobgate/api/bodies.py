"""Request bodies, before any route sees them: a request that carries one is authenticated
first (its bearer token, from the headers), and its body is refused once it is larger than
`limits.max_body_mb` - at once from Content-Length, or while it streams - so an
unauthenticated or oversized upload is answered 401 or 413 without being buffered.

The CyberGIS drop-in API is the one door whose clients may send their token inside the
JSON body (`aT`): its bodies are let through without a bearer, but capped far lower.
Also here: the text check every JSON body gets (no NUL, no lone surrogate).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from pydantic import StringConstraints
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobgate.api.problems import TooLarge, problem
from jobgate.errors import SpecError
from jobgate.users import User

# Their clients may authenticate inside the body; the dashboard's forms carry a session
# cookie and a CSRF token instead, checked by its routes (jobgate.ui).
TOKEN_IN_BODY = ("/compat/cybergis/", "/ui/")
TOKEN_IN_BODY_LIMIT = 1 << 20
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
# A query string's text, as the OpenAPI document states it: no NUL (check_text also
# refuses lone surrogates, which no JSON Schema pattern can name).
QueryText = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]


class BodyGuard:
    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        authenticate: Callable[[str], Awaitable[User | None]],
    ) -> None:
        self.app, self.limit, self.authenticate = app, limit, authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length in (None, "0") and "chunked" not in headers.get("transfer-encoding", ""):
            return await self.app(scope, receive, send)  # no body
        token_inside = scope["path"].startswith(TOKEN_IN_BODY)
        limit = TOKEN_IN_BODY_LIMIT if token_inside else self.limit
        if not token_inside and not await self._authenticated(headers):
            refusal = problem(401, "missing or invalid bearer token")
        elif length is not None and (not length.isdigit() or int(length) > limit):
            refusal = _too_large(limit)
        else:
            return await self._guarded(scope, receive, send, limit)
        await refusal(scope, receive, send)

    async def _authenticated(self, headers: Headers) -> bool:
        token = token_of(headers.get("authorization", ""))
        return bool(token) and bool(await self.authenticate(token))

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge(limit)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except TooLarge:  # the app answered 413 already (problems.py), unless it could not
            if not started:
                await _too_large(limit)(scope, receive, send)


def token_of(authorization: str) -> str:
    """The token of an Authorization header: Bearer, or Basic with the token as password
    (what TES clients can send); "" for anything else."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


def _too_large(limit: int) -> JSONResponse:
    return problem(413, "Request body too large", f"bodies are at most {limit} bytes")


def check_text(value: Any, where: str = "") -> None:
    """No NUL (no C string or PostgreSQL text holds one) and no lone surrogate (not Unicode;
    JSON's \\ud800 escapes decode to them) in any key or value: SpecError naming it."""
    if isinstance(value, str):
        if _NOT_TEXT.search(value):
            raise SpecError(where or "body", "contains a NUL byte or a lone UTF-16 surrogate")
    elif isinstance(value, dict | list):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            path = f"{where}.{key}" if where else str(key)
            check_text(key, path)
            check_text(item, path)
