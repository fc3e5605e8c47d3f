"""The FastAPI application: routers under /api/v1, errors as problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from jobgate import ui
from jobgate.api import docs, problems, tes
from jobgate.api.bodies import BodyGuard
from jobgate.api.compat import cybergis, joblauncher
from jobgate.api.deps import ApiContext
from jobgate.api.routes import jobs, results, system, tokens
from jobgate.service import JobService
from jobgate.spec import JobSpec
from jobgate.version import __version__

PREFIX = "/api/v1"


def create_app(service: JobService) -> FastAPI:
    app = FastAPI(
        title="jobgate",
        version=__version__,
        description="One gateway for batch jobs: local, SSH, Slurm and PBS.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,  # ours, from vendored assets (api/docs.py)
        redoc_url=None,
        # Off unless asked for: its per-request checks cost more than our whole GET handler.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    limit = service.config.limits.body_bytes
    app.state.ctx = ApiContext(service, limit)
    # Outermost: a body is authenticated and sized before any route reads it.
    app.add_middleware(BodyGuard, limit=limit, authenticate=service.accounts.authenticate)
    # Jobs submitted through the joblauncher door are called back in its format.
    service.system.register_callback_format(joblauncher.NAME, joblauncher.callback_format)
    problems.install(app)
    # Every error is problem+json (problems.py); each router declares the ones it gives.
    errors = problems.responses(401, 404, 409, 413, 422, 503)
    app.include_router(jobs.router, prefix=PREFIX, responses=errors)
    app.include_router(results.router, prefix=PREFIX, responses=errors)
    app.include_router(system.router, prefix=PREFIX, responses=problems.responses(401, 503))
    app.include_router(tokens.router, prefix=PREFIX, responses=problems.responses(413, 503))
    compat = problems.responses(401, 404, 413, 422, 503)
    app.include_router(joblauncher.router, prefix="/compat/joblauncher", responses=compat)
    app.include_router(cybergis.router, prefix="/compat/cybergis", responses=compat)
    tes.install(app, service)
    ui.install(app, service)  # the dashboard at /ui/ (jobgate.ui), where / leads
    docs.install(app, f"{PREFIX}/openapi.json", home=ui.HOME)
    _add_spec_schema(app)
    return app


def _add_spec_schema(app: FastAPI) -> None:
    """POST /jobs reads its body itself (JSON or multipart): publish JobSpec's schema, and
    JobRequest, what it takes (a JobSpec whose input files come as multipart parts); and
    Problem's, which routes name for their problem+json errors."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        defs = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs.pop("$defs", {}))
        components["JobSpec"] = defs
        components["JobRequest"] = _without_input_files(defs)
        problems.add_schema(components)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _without_input_files(spec: dict[str, Any]) -> dict[str, Any]:
    # Paths on the gateway's disk are not a caller's to name (routes/jobs.py)
    properties = {k: v for k, v in spec["properties"].items() if k != "input_files"}
    return {
        **spec,
        "title": "JobRequest",
        "description": "A JobSpec as POST /jobs takes it: input files come as multipart parts",
        "properties": properties,
    }
