"""Who may do what, for every route of a real `jobgate serve`: no token or a bad one is
401; alice on bob's job is 404 (exactly as for a job that does not exist: nothing
leaks); alice on her own job and the admin on anyone's are 2xx; only the admin creates
tokens. The table is checked against the server's OpenAPI document, so a route added
without a row here fails this test."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from api.conftest import Gate, Server, is_problem
from jobgate.ids import new_id


@dataclass(frozen=True)
class Route:
    """`who` may call it: "public" (anyone), "user" (any user), "admin", "job" (the
    job's owner, and the admin) or "token" (the token's user, and the admin); `ok` is the
    status that says it worked."""

    who: str
    ok: int
    body: Callable[[Server, str], dict[str, Any]] | None = field(default=None, compare=False)


def _joblauncher(server: Server, user: str) -> dict[str, Any]:
    jobdir = server.home / "jobdirs" / user  # the default jobdir root for this user
    jobdir.mkdir(parents=True, exist_ok=True)
    return {"jobdir": str(jobdir), "executable": "/bin/true"}


ROUTES: dict[str, Route] = {
    "GET /api/v1/healthz": Route("public", 200),
    "GET /api/v1/metrics": Route("public", 200),
    "GET /api/v1/destinations": Route("user", 200),
    "GET /api/v1/me": Route("user", 200),
    "POST /api/v1/tokens": Route("admin", 201, lambda s, u: {"user": "carol"}),
    "GET /api/v1/tokens": Route("user", 200),
    "DELETE /api/v1/tokens/{token_id}": Route("token", 200),
    "GET /api/v1/jobs": Route("user", 200),
    "POST /api/v1/jobs": Route("user", 201, lambda s, u: {"script": "true"}),
    "POST /api/v1/jobs:batch": Route("user", 201, lambda s, u: {"jobs": [{"script": "true"}]}),
    "GET /api/v1/jobs/{job_id}": Route("job", 200),
    "DELETE /api/v1/jobs/{job_id}": Route("job", 202),
    "GET /api/v1/jobs/{job_id}/events": Route("job", 200),
    "GET /api/v1/jobs/{job_id}/logs/{stream}": Route("job", 200),
    "GET /api/v1/jobs/{job_id}/files": Route("job", 200),
    "GET /api/v1/jobs/{job_id}/files/{path}": Route("job", 200),
    "GET /api/v1/jobs/{job_id}/callbacks": Route("job", 200),
    "GET /api/v1/jobs/{job_id}/results": Route("job", 200),
    "GET /api/v1/jobs/{job_id}/tasks": Route("job", 200),
    "GET /api/v1/results": Route("user", 200),
    # Drop-in APIs: other wire formats, the same tokens and the same ownership rule.
    "POST /compat/joblauncher/job": Route("user", 201, _joblauncher),
    "GET /compat/joblauncher/job": Route("user", 200),
    "GET /compat/joblauncher/job/{job_id}": Route("job", 200),
    "DELETE /compat/joblauncher/job/{job_id}": Route("job", 204),
    "POST /compat/cybergis/guard/secretToken": Route(
        "user", 200, lambda s, u: {"destination": "local"}
    ),
    "POST /compat/cybergis/supervisor": Route(
        "user", 201, lambda s, u: {"dest": "local", "payload": {"scripts": ["true"]}}
    ),
    "GET /compat/cybergis/supervisor": Route("user", 200),
    "GET /compat/cybergis/supervisor/destination": Route("user", 200),
    "GET /compat/cybergis/supervisor/{job_id}": Route("job", 200),
}
NOT_OURS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/api/v1/openapi.json"}


@pytest.fixture(scope="module")
def jobs(server: Server) -> dict[str, str]:
    """A finished job of alice's and one of bob's (with a stdout file to download)."""
    ids = {user: server.submit(user, script=f"echo {user}")["id"] for user in ("alice", "bob")}
    for user, job_id in ids.items():
        assert server.wait(user, job_id)["state"] == "COMPLETED"
    return ids


def call(
    server: Server, route: str, user: str | None, job_id: str | None = None, **kw: Any
) -> httpx.Response:
    method, path = route.split(" ", 1)
    some_id = secrets.token_hex(8)  # a token id nobody has
    url = path.format(job_id=job_id or new_id(), stream="stdout", path="stdout", token_id=some_id)
    spec = ROUTES[route]
    body = spec.body(server, user or "alice") if spec.body else None
    return httpx.request(
        method, server.base_url + url, json=body, timeout=60, **kw, **_auth(server, user)
    )


def _auth(server: Server, user: str | None) -> dict[str, Any]:
    return {"headers": server.auth(user)} if user else {}


def test_every_route_of_the_app_has_a_row(server: Server) -> None:
    doc = httpx.get(f"{server.api}/openapi.json").json()
    served = {
        f"{method.upper()} {path}"
        for path, ops in doc["paths"].items()
        for method in ops
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert served == set(ROUTES), (
        f"routes without a row: {sorted(served - set(ROUTES))}; "
        f"rows without a route: {sorted(set(ROUTES) - served)}"
    )
    assert not NOT_OURS & {p for r in served for p in [r.split(" ", 1)[1]]}


GUARDED = sorted(r for r, spec in ROUTES.items() if spec.who != "public")


@pytest.mark.parametrize("route", GUARDED)
def test_no_token_or_a_bad_one_is_401(server: Server, jobs: dict[str, str], route: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer jg_not-a-token"},
        {"Authorization": f"Bearer {server.tokens['alice']}x"},
        {"Authorization": f"Basic {server.tokens['alice']}"},
        {"Authorization": server.tokens["alice"]},
    ):
        res = call(server, route, None, jobs["alice"], headers=headers)
        is_problem(res, 401)
        assert res.headers["www-authenticate"] == "Bearer"
    res = call(server, route, None, jobs["alice"], params={"token": server.tokens["alice"]})
    is_problem(res, 401)  # nor in the query string


JOB_ROUTES = sorted(r for r, spec in ROUTES.items() if spec.who == "job")


@pytest.mark.parametrize("route", JOB_ROUTES)
def test_a_user_on_another_users_job_is_404_as_if_it_did_not_exist(
    server: Server, jobs: dict[str, str], route: str
) -> None:
    theirs = call(server, route, "alice", jobs["bob"])
    is_problem(theirs, 404)
    missing_id = new_id()
    missing = call(server, route, "alice", missing_id)
    is_problem(missing, 404)
    assert theirs.json()["detail"] == missing.json()["detail"].replace(missing_id, jobs["bob"])


@pytest.mark.parametrize("route", JOB_ROUTES)
def test_the_owner_and_the_admin_may(server: Server, jobs: dict[str, str], route: str) -> None:
    ok = ROUTES[route].ok
    mine = call(server, route, "alice", jobs["alice"])
    assert mine.status_code == ok, mine.text
    anyones = call(server, route, "admin", jobs["bob"])
    assert anyones.status_code == ok, anyones.text


@pytest.mark.parametrize("route", sorted(r for r, s in ROUTES.items() if s.who == "user"))
def test_any_user_may(server: Server, route: str) -> None:
    for user in ("alice", "admin"):
        res = call(server, route, user)
        assert res.status_code == ROUTES[route].ok, res.text


@pytest.mark.parametrize("route", sorted(r for r, s in ROUTES.items() if s.who == "admin"))
def test_only_the_admin_may(server: Server, route: str) -> None:
    is_problem(call(server, route, "alice"), 403)
    res = call(server, route, "admin")
    assert res.status_code == ROUTES[route].ok, res.text


@pytest.mark.parametrize("route", sorted(r for r, s in ROUTES.items() if s.who == "public"))
def test_public_routes_need_no_token(server: Server, route: str) -> None:
    assert call(server, route, None).status_code == ROUTES[route].ok


def test_users_see_only_their_own_jobs_and_the_admin_sees_all(
    server: Server, jobs: dict[str, str]
) -> None:
    def listed(user: str) -> set[str]:
        items = server.client(user).get("/jobs", params={"limit": 1000}).json()["items"]
        return {j["id"] for j in items}

    assert jobs["alice"] in listed("alice") and jobs["bob"] not in listed("alice")
    assert jobs["bob"] in listed("bob") and jobs["alice"] not in listed("bob")
    assert {jobs["alice"], jobs["bob"]} <= listed("admin")
    assert all(j["owner"] == "bob" for j in server.client("bob").get("/jobs").json()["items"])


def test_a_user_cannot_cancel_another_users_job(server: Server, gates: Callable[[], Gate]) -> None:
    gate = gates()
    job_id = server.submit("bob", script=gate.wait)["id"]
    server.wait_state("bob", job_id, "RUNNING")
    is_problem(server.client("alice").delete(f"/jobs/{job_id}"), 404)
    is_problem(server.client("alice").delete(f"/compat/joblauncher/job/{job_id}"), 404)
    gate.open()
    done = server.wait("bob", job_id)
    assert done["state"] == "COMPLETED"
    assert "cancel_requested" not in [
        e["type"] for e in server.client("bob").get(f"/jobs/{job_id}/events").json()
    ]


def test_a_token_made_by_the_admin_works_and_acts_as_its_user(server: Server) -> None:
    res = server.client("admin").post("/tokens", json={"user": "dave", "label": "ci"})
    assert res.status_code == 201
    body = res.json()
    assert (body["user"], body["admin"]) == ("dave", False) and body["token"].startswith("jg_")
    dave = {"Authorization": f"Bearer {body['token']}"}
    job = httpx.post(f"{server.api}/jobs", json={"script": "true"}, headers=dave).json()
    assert job["owner"] == "dave"
    is_problem(httpx.post(f"{server.api}/tokens", json={"user": "eve"}, headers=dave), 403)
    is_problem(server.client("admin").post("/tokens", json={"user": "no spaces"}), 422, "user")
    server.wait("admin", job["id"])


def test_a_user_on_another_users_token_is_404_and_the_owner_and_the_admin_may(
    server: Server,
) -> None:
    def new_token(user: str) -> str:
        res = server.client("admin").post("/tokens", json={"user": user, "label": "authz"})
        assert res.status_code == 201, res.text
        token_id: str = res.json()["id"]
        return token_id

    bobs, missing = new_token("bob"), secrets.token_hex(8)
    theirs = server.client("alice").delete(f"/tokens/{bobs}")
    unknown = server.client("alice").delete(f"/tokens/{missing}")
    is_problem(theirs, 404)
    assert theirs.json()["detail"] == is_problem(unknown, 404)["detail"].replace(missing, bobs)
    assert bobs not in {t["id"] for t in server.client("alice").get("/tokens").json()}
    is_problem(server.client("alice").get("/tokens", params={"user": "bob"}), 403)
    for user, token_id in (("bob", bobs), ("admin", new_token("alice"))):
        res = server.client(user).delete(f"/tokens/{token_id}")
        assert res.status_code == 200, res.text
        assert res.json()["id"] == token_id and res.json()["revoked_at"] is not None
