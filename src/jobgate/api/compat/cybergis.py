"""CyberGIS job-supervisor (v1) on jobgate: its routes, bodies and event names.

    POST /guard/secretToken    {destination, user?, password?} -> {"secretToken": ...}
    POST /supervisor           {aT, dest, env, payload: {scripts: [...]}} -> the manifest
                               with its `id` (and `uid`, the user)
    GET  /supervisor           {"events": {id: [...]}, "logs": {id: [...]}}
    GET  /supervisor/destination
    GET  /supervisor/{id}      {"events": [...], "logs": [...]}

Credentials are jobgate tokens, never job-supervisor's: it derived an hourly access token
(`aT`, an md5 over a secret token and the hour) that only a server keeping every secret
in plain text can check, and jobgate keeps hashes. So a request carries the token as
`Authorization: Bearer <token>`, or in the `aT` member its body already has;
`/guard/secretToken` checks a token (header, or `password`) and hands it back as the
secret token. Errors are problem+json, with job-supervisor's `error` and `messages` too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from jobgate.api.bodies import check_text
from jobgate.api.compat import COMPAT_LABEL, js_time
from jobgate.api.deps import Ctx, _owned_job
from jobgate.api.problems import PROBLEM
from jobgate.errors import SpecError
from jobgate.service import Area
from jobgate.spec import JobEvent, JobRecord
from jobgate.states import FINAL_STATES, JobState
from jobgate.users import User

NAME = "cybergis"
LOG_LIMIT = 1024 * 1024  # bytes of a job's stdout shown as its `logs`
LIST_LOG_LIMIT = 64 * 1024  # ... per job in GET /supervisor, which shows many jobs
_bearer = HTTPBearer(auto_error=False, description="A token from `jobgate token create`")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class _SupervisorRoute(APIRoute):
    """Errors stay problem+json, plus the `error` and `messages` members job-supervisor
    clients read (`if 'error' in data`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as exc:
                return await _problem(request, exc)

        return route


async def _problem(request: Request, exc: Exception) -> Response:
    """The app's own error response for `exc`, with the two members added."""
    handlers = request.app.exception_handlers
    handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
    if handler is None:
        raise exc
    response: Response = await handler(request, exc)
    body = json.loads(bytes(response.body))
    body["error"] = body.get("detail") or body.get("title")
    body["messages"] = [f"{e['field']}: {e['message']}" for e in body.get("errors", [])] or [
        body["error"]
    ]
    headers = {k: v for k, v in response.headers.items() if k in ("www-authenticate",)}
    return JSONResponse(body, response.status_code, headers=headers, media_type=PROBLEM)


router = APIRouter(tags=["compat: cybergis"], route_class=_SupervisorRoute)


# -- who is asking ---------------------------------------------------------------------------


async def _body(request: Request, ctx: Ctx) -> dict[str, Any]:
    """The JSON body, also of a GET (job-supervisor sends `aT` in GET bodies)."""
    raw = await request.body()  # at most bodies.TOKEN_IN_BODY_LIMIT bytes
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        raise SpecError("body", "not valid JSON") from None
    return data if isinstance(data, dict) else {}


async def _authenticate(ctx: Ctx, token: object, member: str = "aT") -> User:
    if not isinstance(token, str) or not token:
        raise HTTPException(401, f"missing token: send Authorization: Bearer, or {member}")
    user = await ctx.service.accounts.authenticate(token)
    if user is None:
        if token.count(".") == 2:  # a job-supervisor access token, derived from its secret
            raise HTTPException(
                401,
                "job-supervisor access tokens are not accepted: send the "
                "jobgate token itself (Authorization: Bearer, or as aT)",
            )
        raise HTTPException(401, "invalid token")
    return user


async def _user(request: Request, ctx: Ctx, cred: Bearer) -> User:
    if cred is not None:
        return await _authenticate(ctx, cred.credentials)
    return await _authenticate(ctx, (await _body(request, ctx)).get("aT"))


SupervisorUser = Annotated[User, Depends(_user)]


async def _owned(job_id: str, user: SupervisorUser, ctx: Ctx) -> JobRecord:
    return await _owned_job(job_id, user, ctx)  # the API's one ownership rule


OwnedJob = Annotated[JobRecord, Depends(_owned)]


# -- bodies ----------------------------------------------------------------------------------


class Credentials(BaseModel):
    destination: str
    user: str | None = None
    password: str | None = Field(default=None, description="A jobgate token, if no header")

    @model_validator(mode="before")
    @classmethod
    def _text(cls, data: Any) -> Any:
        check_text(data)  # NUL or a lone surrogate: 422 naming the member, nothing run
        return data


_NO_UPLOAD = {"type": "null", "description": "Uploads are not supported: use payload.scripts"}
_PAYLOAD = {
    "type": "object",
    "required": ["scripts"],
    "properties": {
        "scripts": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string"},
            "description": "Shell commands, run in order",
        }
    },
}


class Manifest(BaseModel):
    """What a job-supervisor client submits; other members are echoed back, as there."""

    model_config = ConfigDict(extra="allow")

    aT: str | None = Field(default=None, description="A jobgate token, if no header")
    dest: str = Field(description="A jobgate destination")
    env: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # Checked in the route, for an error that says what to do instead
    file: Annotated[str | None, WithJsonSchema(_NO_UPLOAD)] = None
    payload: Annotated[dict[str, Any], WithJsonSchema(_PAYLOAD)]

    @model_validator(mode="before")
    @classmethod
    def _text(cls, data: Any) -> Any:
        check_text(data)  # NUL or a lone surrogate: 422 naming the member, nothing run
        return data


class Event(BaseModel):
    type: str
    message: str
    at: str


class Log(BaseModel):
    message: str
    at: str | None = Field(description="Lines of stdout carry no time of their own")


class JobStatus(BaseModel):
    events: list[Event]
    logs: list[Log]


class Status(BaseModel):
    events: dict[str, list[Event]]
    logs: dict[str, list[Log]]


# -- routes ----------------------------------------------------------------------------------


@router.post("/guard/secretToken")
async def secret_token(
    body: Credentials, response: Response, ctx: Ctx, cred: Bearer
) -> dict[str, str]:
    token = cred.credentials if cred is not None else body.password or ""
    user = await _authenticate(ctx, token, "password")
    if body.user is not None and body.user != user.name:
        raise HTTPException(401, f"the token is not {body.user!r}'s")
    ctx.service.config.destination(body.destination)  # unknown: 422 naming `destination`
    response.headers["Cache-Control"] = "no-store"  # a credential: no proxy keeps it
    return {"secretToken": token}


@router.post("/supervisor", status_code=201)
async def submit(
    body: Manifest, request: Request, response: Response, user: SupervisorUser, ctx: Ctx
) -> dict[str, Any]:
    if body.file is not None:
        raise SpecError("file", "uploads are not supported here: put commands in payload.scripts")
    scripts = body.payload.get("scripts")
    if not scripts or not isinstance(scripts, list) or not all(isinstance(s, str) for s in scripts):
        raise SpecError("payload.scripts", "give a list of shell commands to run, in order")
    for i, script in enumerate(scripts):
        if "\x00" in script:
            raise SpecError(f"payload.scripts.{i}", "must not contain a NUL byte")
    spec = {
        "script": "set -e\n" + "\n".join(scripts),
        "destination": body.dest,
        "environment": {k: _env_value(v) for k, v in body.env.items()},
        "labels": {COMPAT_LABEL: NAME},
    }
    try:
        record = await ctx.service.submit(spec, user.name, Area())
    except SpecError as exc:
        head, _, rest = exc.field.partition(".")
        names = {"destination": "dest", "environment": "env"}
        if head in names:
            raise SpecError(names[head] + (f".{rest}" if rest else ""), exc.message) from None
        raise
    response.headers["Location"] = str(request.url_for("cybergis_job", job_id=record.id))
    echo = body.model_dump(exclude={"aT"}, exclude_none=True)
    return {**echo, "uid": user.name, "id": record.id}


@router.get("/supervisor", response_model=Status)
async def status(
    user: SupervisorUser,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000, description="Newest jobs shown")] = 100,
) -> Status:
    records = await ctx.service.list(
        label={COMPAT_LABEL: NAME}, owner=None if user.admin else user.name, limit=limit
    )
    out = Status(events={}, logs={})
    for job in reversed(records):  # oldest first, as they were submitted
        view = await _job_status(ctx, job, LIST_LOG_LIMIT)
        out.events[job.id], out.logs[job.id] = view.events, view.logs
    return out


@router.get("/supervisor/destination")
async def destinations(ctx: Ctx, _: SupervisorUser) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "destinations": {
            d["name"]: {
                "ip": None,  # jobgate does not tell its hosts
                "port": None,
                "maintainer": d["scheduler"],
                "jobPoolCapacity": d["capacity"],
                "isCommunityAccount": True,  # every job runs as the gateway's account
                "useUploadedFile": False,
            }
            for d in await ctx.service.system.destinations()
        }
    }


@router.get("/supervisor/{job_id}", name="cybergis_job", response_model=JobStatus)
async def job_status(job: OwnedJob, ctx: Ctx) -> JobStatus:
    return await _job_status(ctx, job, LOG_LIMIT)


# -- translation -----------------------------------------------------------------------------


def _env_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _job_status(ctx: Ctx, job: JobRecord, log_limit: int) -> JobStatus:
    events = await ctx.service.events(job.id)
    stdout = await ctx.service.read_log(job.id, "stdout", 0, log_limit)
    return JobStatus(events=events_of(job, events), logs=logs_of(stdout))


def events_of(job: JobRecord, events: list[JobEvent]) -> list[Event]:
    """Our event log in job-supervisor's words: JOB_QUEUED, JOB_REGISTERED (admitted),
    JOB_INITIALIZED (running), then JOB_ENDED or JOB_FAILED, which its clients wait for
    as the last event. Any other event (one the job emitted, a warning) passes as is."""
    out: list[Event] = []
    registered, ending = False, None
    for e in events:
        at, tag = js_time(e.time), f"job [{job.id}]"
        if e.type == JobState.QUEUED:
            message = f"{tag} is queued, waiting for registration"
            out.append(Event(type="JOB_QUEUED", message=message, at=at))
        elif e.type in (JobState.STAGING_IN, JobState.SUBMITTED) and not registered:
            registered = True
            message = f"{tag} is registered with the supervisor, waiting for initialization"
            out.append(Event(type="JOB_REGISTERED", message=message, at=at))
        elif e.type == JobState.RUNNING:
            message = f"{tag} is initialized, waiting for job completion"
            out.append(Event(type="JOB_INITIALIZED", message=message, at=at))
        elif e.type == JobState.COMPLETED:
            ending = Event(type="JOB_ENDED", message=f"{tag} finished", at=at)
        elif e.type in FINAL_STATES:
            why = job.reason or e.message or e.type.lower()
            ending = Event(type="JOB_FAILED", message=f"{tag} {e.type.lower()}: {why}", at=at)
        elif e.type not in JobState.__members__:
            out.append(Event(type=e.type, message=e.message, at=at))
    return [*out, ending] if ending else out


def logs_of(stdout: bytes) -> list[Log]:
    return [Log(message=line, at=None) for line in stdout.decode(errors="replace").splitlines()]
