"""What every page shares: the templates, the signed-in viewer, the CSRF check of forms,
and errors as readable pages (a 4xx page, never a stack trace or problem+json)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from jobgate.errors import JobgateError, NotFoundError, SpecError, TransientError
from jobgate.service import JobService
from jobgate.ui import format as fmt
from jobgate.ui.sessions import COOKIE, Session, Sessions, csrf_ok
from jobgate.users import User

log = logging.getLogger(__name__)
BASE = "/ui"
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters.update(duration=fmt.duration, memory=fmt.memory, when=fmt.when)
# Scripts and styles only from the gateway; htmx runs with eval off (base.html).
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Dashboard:
    service: JobService
    sessions: Sessions


@dataclass
class Viewer:
    session: Session
    user: User


class PageError(Exception):
    """A page that says what went wrong, with its status; nothing was changed."""

    def __init__(self, status: int, title: str, message: str = "") -> None:
        self.status, self.title, self.message = status, title, message
        super().__init__(title)


# Why a sign-in page was shown: a code in its link, never text from the link itself.
WHY = {
    "expired": "Your session has expired: sign in again.",
    "revoked": "Your token is no longer valid: sign in with another.",
}


class SignIn(Exception):
    """No live session: to the sign-in page (with a code from WHY, if there is a reason)."""

    def __init__(self, why: str = "") -> None:
        self.why = why
        super().__init__(why)


def dashboard(request: Request) -> Dashboard:
    board: Dashboard = request.app.state.dashboard
    return board


async def _viewer(request: Request) -> Viewer:
    board = dashboard(request)
    session = board.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise SignIn("expired" if COOKIE in request.cookies else "")
    user = await board.service.accounts.authenticate(session.token)
    if user is None:  # the token was revoked or expired since
        board.sessions.end(session.id)
        raise SignIn("revoked")
    return Viewer(session, user)


CurrentViewer = Annotated[Viewer, Depends(_viewer)]


async def still_signed_in(request: Request, viewer: Viewer) -> bool:
    """Whether a live stream may go on: its session not ended, its token still valid
    (a revoked token ends its streams too, within the accounts cache's quarter second)."""
    board = dashboard(request)
    if board.sessions.get(viewer.session.id) is None or await request.is_disconnected():
        return False
    return await board.service.accounts.authenticate(viewer.session.token) is not None


@dataclass
class Posted:
    viewer: Viewer
    form: FormData


async def _posted(request: Request, viewer: CurrentViewer) -> Posted:
    """A form of the viewer's session: refused, changing nothing, without its CSRF token."""
    form = await request.form(max_files=0, max_fields=1000)
    sent = form.get("csrf")
    if not csrf_ok(viewer.session, sent if isinstance(sent, str) else None):
        raise PageError(
            403,
            "This form cannot be accepted",
            "It did not carry this session's security token (it may be from an old page or "
            "another site). Nothing was changed: reload the page and try again.",
        )
    return Posted(viewer, form)


PostedForm = Annotated[Posted, Depends(_posted)]


def render(
    request: Request, template: str, viewer: Viewer | None, status: int = 200, **values: Any
) -> HTMLResponse:
    flash = viewer.session.flash[:] if viewer else []
    if viewer:
        viewer.session.flash.clear()
    html = TEMPLATES.get_template(template).render(
        base=BASE, viewer=viewer, path=request.url.path, flash=flash, **values
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def fragment(template: str, **values: Any) -> str:
    """A part of a page (rows, a summary), as live streams send it."""
    return TEMPLATES.get_template(template).render(base=BASE, **values)


def error_page(request: Request, exc: Exception) -> Response:
    status, title, message = _explain(exc)
    html = TEMPLATES.get_template("error.html").render(
        base=BASE,
        viewer=None,
        path=request.url.path,
        flash=[],
        status=status,
        title=title,
        message=message,
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _explain(exc: Exception) -> tuple[int, str, str]:
    if isinstance(exc, PageError):
        return exc.status, exc.title, exc.message
    if isinstance(exc, NotFoundError):
        return 404, "Not found", "There is no such job or file, or it is not yours to see."
    if isinstance(exc, SpecError):
        return 422, "Invalid input", f"{exc.field}: {exc.message}"
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"] if p not in ("query", "path", "body"))
        return 422, "Invalid input", f"{where}: {first['msg']}"
    if isinstance(exc, TransientError):
        return 503, "Temporarily unavailable", f"{exc}. Try again in a few seconds."
    if isinstance(exc, JobgateError):
        return 400, "Cannot do that", str(exc)
    return 500, "Internal error", "Something went wrong on the gateway; it has been logged."


class PageRoute(APIRoute):
    """Errors of dashboard routes become pages; a missing session leads to sign-in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignIn as exc:
                return _to_sign_in(request, exc.why)
            except (JobgateError, PageError, RequestValidationError) as exc:
                return error_page(request, exc)
            except Exception as exc:
                log.exception("dashboard: unhandled error")
                return error_page(request, exc)

        return handle


def _to_sign_in(request: Request, why: str) -> Response:
    if request.method != "GET":
        message = f"{WHY.get(why, 'Sign in first.')} Nothing was changed."
        exc = PageError(401, "Signed out", message)
        return error_page(request, exc)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"{BASE}/signin?next={quote(target, safe='')}"
    if why:
        url += f"&why={why}"
    return RedirectResponse(url, status_code=303, headers=HEADERS)
