"""Signing in with a token (checked by the service, kept on the gateway) and out."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from jobgate.service.accounts import LINK_SESSION, SIGN_IN_LINK
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


def _form(request: Request, status: int, next_: str, error: str = "", code: str = "") -> Response:
    csrf = secrets.token_urlsafe(32)
    values = {"csrf": csrf, "next": next_, "error": error, "code": code}
    response = render(request, "signin.html", None, status, **values)
    _cookie(request, response, SIGNIN_COOKIE, csrf, 3600)
    return response


async def _signin_form(request: Request, fields: tuple[str, ...]) -> list[str]:
    """The sign-in form's fields, once its own CSRF token matched its cookie."""
    form = await request.form(max_files=0, max_fields=10)
    sent = form.get("csrf")
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not (isinstance(sent, str) and expected and hmac.compare_digest(sent, expected)):
        raise PageError(
            403,
            "This form cannot be accepted",
            "It did not come from this gateway's sign-in page. Open the sign-in page again.",
        )
    return [v.strip() if isinstance(v := form.get(f), str) else "" for f in fields]


def _signed_in(request: Request, next_: str, token: str, token_id: str | None = None) -> Response:
    session = dashboard(request).sessions.start(token, token_id)
    response = RedirectResponse(_next(next_), status_code=303, headers=HEADERS)
    _cookie(request, response, COOKIE, session.id, MAX_AGE_S)
    response.delete_cookie(SIGNIN_COOKIE, path=BASE, httponly=True, samesite="strict")
    return response


@router.get("/signin")
async def signin_page(request: Request, next: str = "", why: str = "") -> Response:
    board = dashboard(request)
    if board.sessions.get(request.cookies.get(COOKIE)) is not None:
        return RedirectResponse(_next(next), status_code=303, headers=HEADERS)
    return _form(request, 200, _next(next), WHY.get(why, ""))


@router.post("/signin")
async def signin(request: Request) -> Response:
    token, target = await _signin_form(request, ("token", "next"))
    user = await dashboard(request).service.accounts.authenticate(token) if token else None
    if user is None:
        return _form(
            request, 401, _next(target), "That token is not valid (unknown, expired or revoked)."
        )
    return _signed_in(request, target, token)


@router.get("/signin/link")
async def link_page(request: Request, code: str = "") -> Response:
    """A link from `jobgate ui`: a button to use it (opening a link changes nothing, so
    a preview or a prefetch does not use it up)."""
    return _form(request, 200, f"{BASE}/jobs", code=code)


@router.post("/signin/link")
async def link(request: Request) -> Response:
    code, target = await _signin_form(request, ("code", "next"))
    accounts = dashboard(request).service.accounts
    user = await accounts.redeem(code, SIGN_IN_LINK) if code else None
    if user is None:
        message = "That link was used already, has expired, or is not a sign-in link."
        return _form(request, 401, _next(target), f"{message} Run jobgate ui again.")
    expires = datetime.now(UTC) + timedelta(seconds=MAX_AGE_S)
    made = await accounts.create_token(user.name, user.admin, LINK_SESSION, expires)
    return _signed_in(request, target, made.token, made.info.id)


@router.post("/signout")
async def signout(request: Request, posted: PostedForm) -> Response:
    board, session = dashboard(request), posted.viewer.session
    board.sessions.end(session.id)
    if session.token_id:  # made for this session: of no use to anyone now
        await board.service.accounts.revoke(session.token_id, posted.viewer.user.name)
    response = RedirectResponse(f"{BASE}/signin", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path=BASE, httponly=True, samesite="strict")
    return response
