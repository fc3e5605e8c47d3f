"""The API explains itself, also offline: Swagger UI at /docs and ReDoc at /redoc from
the assets vendored under static/ (no CDN), the OpenAPI document at /openapi.json as well
as /api/v1/openapi.json, and / and /api/v1 leading to them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")
ASSETS = "/static"


def install(app: FastAPI, openapi_url: str, home: str = "/docs") -> None:
    """`home`: where / leads (the dashboard); /api and /api/v1 lead to /docs."""
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no call to swagger.io
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{ASSETS}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    app.add_api_route("/", _to(home), include_in_schema=False, methods=["GET"])
    for path in ("/api", "/api/", "/api/v1", "/api/v1/"):
        app.add_api_route(path, _to("/docs"), include_in_schema=False, methods=["GET"])


def _to(target: str) -> Callable[[], Awaitable[RedirectResponse]]:
    async def redirect() -> RedirectResponse:
        return RedirectResponse(target, status_code=307)

    return redirect
