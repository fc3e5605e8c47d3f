"""Errors as RFC 9457 `application/problem+json`, mapped once from the exception tree."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from jobgate.errors import (
    ConfigError,
    ConflictError,
    InvalidTransition,
    JobgateError,
    NotFoundError,
    SpecError,
    StoreUnavailable,
    TransientError,
)

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
BAD_REQUEST_DOORS = ("/ga4gh/",)


_UNPARSABLE = "There was an error parsing the body"
RETRY_AFTER_S = 2  # what a 503 asks clients to wait
_SCHEMA_REF = {"$ref": "#/components/schemas/Problem"}
_WHEN = {
    401: "No token, or not a valid one (unknown, expired or revoked)",
    403: "Not allowed",
    404: "No such thing, or someone else's",
    409: "Conflicts with what is stored (an idempotency key used for another job)",
    413: "The request body is larger than the gateway takes (`limits.max_body_mb`)",
    400: "Invalid input: `field` names it",
    422: "Invalid input: `field` names it",
    503: "The store or a scheduler is unavailable now: retry after `Retry-After` seconds",
}


class Problem(BaseModel):
    """An error, as RFC 9457 `application/problem+json`."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    field: str | None = Field(default=None, description="What is wrong (4xx of bad input)")


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=` for the errors it answers: problem+json bodies (registered
    by `add_schema`, as FastAPI would put a `model` under application/json)."""
    return {
        status: {"description": _WHEN[status], "content": {PROBLEM: {"schema": _SCHEMA_REF}}}
        for status in statuses
    }


def add_schema(components: dict[str, Any]) -> None:
    components["Problem"] = Problem.model_json_schema()


class TooLarge(Exception):
    """A request body went past the limit while it was read (api/bodies.py)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"bodies are at most {limit} bytes")


def problem(
    status: int,
    title: str,
    detail: str = "",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _status(exc: JobgateError) -> tuple[int, str]:
    if isinstance(exc, SpecError):
        return 422, "Invalid request"
    if isinstance(exc, NotFoundError):
        return 404, "Not found"
    if isinstance(exc, ConflictError | InvalidTransition):
        return 409, "Conflict"
    if isinstance(exc, StoreUnavailable):
        return 503, "Store unavailable"
    if isinstance(exc, TransientError):
        return 503, "Temporarily unavailable"
    if isinstance(exc, ConfigError):  # caught at start-up; here only if config changed under us
        return 503, "Gateway misconfigured"
    return 400, "Bad request"


def install(app: FastAPI) -> None:
    @app.exception_handler(JobgateError)
    async def _jobgate(request: Request, exc: JobgateError) -> JSONResponse:
        status, title = _status(exc)
        if status == 422:
            status = _invalid(request)
        extra: dict[str, Any] = {"field": exc.field} if isinstance(exc, SpecError) else {}
        return problem(status, title, str(exc), **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return problem(
            _invalid(request),
            "Invalid request",
            f"{first['field']}: {first['message']}",
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNPARSABLE:  # FastAPI's, for bad JSON
            detail = "body: not valid for its Content-Type (JSON, form)"
            return problem(_invalid(request), "Invalid request", detail, field="body")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # RFC 9110: Allow lists them all, not the first route's
            headers["Allow"] = ", ".join(_allowed(request))
        return problem(exc.status_code, str(exc.detail), str(exc.detail), headers)

    @app.exception_handler(TooLarge)
    async def _too_large(_: Request, exc: TooLarge) -> JSONResponse:
        return problem(413, "Request body too large", str(exc))

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client left while sending its body: nobody reads this, and it is no error.
        return problem(400, "Client disconnected", "the request body did not arrive")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "Internal error", type(exc).__name__)


def _invalid(request: Request) -> int:
    """Invalid input: 422 (what it is), but 400 on doors whose standard says so (TES)."""
    return 400 if request.url.path.startswith(BAD_REQUEST_DOORS) else 422


def _allowed(request: Request) -> list[str]:
    """The methods some route takes at this path: Starlette's 405 names only the first
    route that matches the path, and each of ours takes one method."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)
