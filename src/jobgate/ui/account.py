"""Signing in with a token (checked by the service, kept on the gateway) and out."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from jobgate.ui.pages import BASE, HEADERS, WHY, PageError, PageRoute, PostedForm, dashboard, render
from jobgate.ui.sessions import COOKIE, MAX_AGE_S

router = APIRouter(route_class=PageRoute)
# The sign-in form's own CSRF token (no session yet): the same value in a cookie and the form.
SIGNIN_COOKIE = "jobgate_signin"


def _cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path=BASE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _next(target: str) -> str:
    """Where to go after signing in: a dashboard page, never another site."""
    ok = target.startswith(f"{BASE}/") and not target.startswith("//") and "\\" not in target
    return target if ok and not any(c in target for c in "\r\n") else f"{BASE}/jobs"


def _form(request: Request, status: int, next_: str, error: str = "") -> Response:
    csrf = secrets.token_urlsafe(32)
    response = render(request, "signin.html", None, status, csrf=csrf, next=next_, error=error)
    _cookie(request, response, SIGNIN_COOKIE, csrf, 3600)
    return response


@router.get("/signin")
async def signin_page(request: Request, next: str = "", why: str = "") -> Response:
    board = dashboard(request)
    if board.sessions.get(request.cookies.get(COOKIE)) is not None:
        return RedirectResponse(_next(next), status_code=303, headers=HEADERS)
    return _form(request, 200, _next(next), WHY.get(why, ""))


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    sent, token, target = (form.get(k) for k in ("csrf", "token", "next"))
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not (isinstance(sent, str) and expected and hmac.compare_digest(sent, expected)):
        raise PageError(
            403,
            "This form cannot be accepted",
            "It did not come from this gateway's sign-in page. Open the sign-in page again.",
        )
    next_ = _next(target if isinstance(target, str) else "")
    token = token.strip() if isinstance(token, str) else ""
    board = dashboard(request)
    user = await board.service.accounts.authenticate(token) if token else None
    if user is None:
        return _form(request, 401, next_, "That token is not valid (unknown, expired or revoked).")
    session = board.sessions.start(token)
    response = RedirectResponse(next_, status_code=303, headers=HEADERS)
    _cookie(request, response, COOKIE, session.id, MAX_AGE_S)
    response.delete_cookie(SIGNIN_COOKIE, path=BASE, httponly=True, samesite="strict")
    return response


@router.post("/signout")
async def signout(request: Request, posted: PostedForm) -> Response:
    dashboard(request).sessions.end(posted.viewer.session.id)
    response = RedirectResponse(f"{BASE}/signin", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path=BASE, httponly=True, samesite="strict")
    return response
