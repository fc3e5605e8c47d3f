"""Tokens against a real `jobgate serve` (SQLite and PostgreSQL), through the API and
through `jobgate token ...` run beside it as other processes: expiry, listing (a user
sees their own, the admin anyone's), and revocation, which the server applies to the
next request (made in it) or within REVOCATION_CHECK_S (made by another process), even
for a token it had just checked and remembered."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from api.conftest import TIMEOUT, Server, is_problem
from conftest import JOBGATE
from jobgate.service.tokens import REVOCATION_CHECK_S


def jg(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """`jobgate` on the server's host: the same home and store as the server."""
    return subprocess.run(
        [JOBGATE, *args], env=server.env, capture_output=True, text=True, timeout=120, check=False
    )


def create(server: Server, user: str, **fields: Any) -> dict[str, Any]:
    res = server.client("admin").post("/tokens", json={"user": user, **fields})
    assert res.status_code == 201, res.text
    body: dict[str, Any] = res.json()
    return body


def me(server: Server, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.api}/me", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )


def user_name() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


def refused_once_expired(server: Server, token: str, expires_at: str) -> None:
    """The token works until `expires_at` and a request sent after it is 401 (the
    server's clock is this one: it runs on this host)."""
    deadline = datetime.fromisoformat(expires_at).timestamp()
    first = me(server, token)
    if time.time() < deadline:  # answered in time: it must have worked
        assert first.status_code == 200, first.text
    while time.time() <= deadline:  # a bounded wait: the token lives one second
        time.sleep(0.05)
    res = me(server, token)
    is_problem(res, 401)
    assert res.headers["www-authenticate"] == "Bearer"


def test_a_token_expires_through_the_api(server: Server) -> None:
    user = user_name()
    lasting = create(server, user, expires_in_s=3600)
    assert me(server, lasting["token"]).status_code == 200
    short = create(server, user, expires_in_s=1)
    assert short["expires_at"] is not None and short["revoked_at"] is None
    refused_once_expired(server, short["token"], short["expires_at"])
    assert me(server, lasting["token"]).json()["user"] == user


def test_a_token_expires_through_the_cli(server: Server) -> None:
    made = jg(server, "token", "create", "--user", user_name(), "--expires", "1s", "--json")
    assert made.returncode == 0, made.stderr
    body = json.loads(made.stdout)
    refused_once_expired(server, body["token"], body["expires_at"])
    listed = json.loads(jg(server, "token", "list", "--user", body["user"], "--json").stdout)
    assert [(t["id"], t["expires_at"]) for t in listed] == [(body["id"], body["expires_at"])]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"expires_in_s": 0}, "expires_in_s"),
        ({"expires_in_s": 10**12}, "expires_in_s"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": "9999-12-31T23:59:00-14:00"}, "expires_at"),  # past year 9999 in UTC
        ({"expires_in_s": 60, "expires_at": "2099-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_bad_expiries_are_422_naming_the_field(
    server: Server, fields: dict[str, Any], field: str
) -> None:
    res = server.client("admin").post("/tokens", json={"user": user_name(), **fields})
    is_problem(res, 422, field)


def test_bad_expiries_on_the_cli_are_one_line(server: Server) -> None:
    for value in ("soon", "2001-01-01", "99999999999w", "999999999w", "9000w"):
        res = jg(server, "token", "create", "--user", user_name(), "--expires", value)
        assert res.returncode == 2 and res.stdout == "", res
        assert res.stderr.startswith("jobgate: error: expires: ") and res.stderr.count("\n") == 1


def test_a_user_lists_their_own_tokens_and_the_admin_anyones(server: Server) -> None:
    gina, hal = user_name(), user_name()
    ginas = [create(server, gina, label=f"g{i}") for i in range(2)]
    hals = create(server, hal, expires_at="2099-01-01T00:00:00Z")
    seen = httpx.get(
        f"{server.api}/tokens", headers={"Authorization": f"Bearer {ginas[0]['token']}"}
    ).json()
    assert [(t["id"], t["user"], t["label"]) for t in seen] == [
        (t["id"], gina, t["label"]) for t in ginas
    ]
    assert all(
        set(t) == {"id", "user", "label", "created_at", "expires_at", "revoked_at"} for t in seen
    )
    assert not any(g["token"] in json.dumps(seen) for g in ginas)  # never the token itself
    admin = server.client("admin")
    assert [t["id"] for t in admin.get("/tokens", params={"user": gina}).json()] == [
        t["id"] for t in ginas
    ]
    everyone = {t["id"]: t for t in admin.get("/tokens").json()}
    assert {t["id"] for t in ginas} | {hals["id"]} <= set(everyone)
    assert everyone[hals["id"]]["expires_at"].startswith("2099-01-01T00:00:00")
    listed = json.loads(jg(server, "token", "list", "--json").stdout)
    assert {t["id"] for t in listed} == set(everyone)  # the CLI lists what the API does
    table = jg(server, "token", "list", "--user", gina)
    assert table.returncode == 0 and all(t["id"] in table.stdout for t in ginas)
    assert hals["id"] not in table.stdout


def test_a_revocation_through_the_api_refuses_the_next_request(server: Server) -> None:
    user = user_name()
    kept, revoked = create(server, user), create(server, user)
    assert me(server, revoked["token"]).status_code == 200  # checked, and remembered
    kept_auth = {"Authorization": f"Bearer {kept['token']}"}
    res = httpx.delete(f"{server.api}/tokens/{revoked['id']}", headers=kept_auth)
    assert res.status_code == 200, res.text
    assert res.json()["id"] == revoked["id"] and res.json()["revoked_at"] is not None
    is_problem(me(server, revoked["token"]), 401)
    assert me(server, kept["token"]).status_code == 200
    again = httpx.delete(f"{server.api}/tokens/{revoked['id']}", headers=kept_auth)
    assert again.json()["revoked_at"] == res.json()["revoked_at"]  # revoked once
    listed = {t["id"]: t for t in httpx.get(f"{server.api}/tokens", headers=kept_auth).json()}
    assert listed[revoked["id"]]["revoked_at"] is not None
    assert listed[kept["id"]]["revoked_at"] is None


def test_a_revocation_by_the_cli_reaches_the_running_server_at_once(server: Server) -> None:
    user = user_name()
    doomed, kept = create(server, user), create(server, user)
    for token in (doomed["token"], kept["token"]):
        assert me(server, token).status_code == 200  # checked, and remembered
    res = jg(server, "token", "revoke", doomed["id"])
    revoked_at = time.monotonic()  # the revocation is committed: the command has ended
    assert res.returncode == 0 and res.stdout == f"{doomed['id']} revoked ({user})\n", res
    while True:  # bounded: after REVOCATION_CHECK_S every request must be refused
        sent = time.monotonic()
        status = me(server, doomed["token"]).status_code
        if sent >= revoked_at + REVOCATION_CHECK_S or status == 401:
            assert status == 401, f"still accepted {sent - revoked_at:.3f} s after revoke"
            break
        assert status == 200
    assert me(server, kept["token"]).status_code == 200
    unknown = jg(server, "token", "revoke", "0123456789abcdef")
    assert (
        unknown.returncode == 1
        and unknown.stderr == "jobgate: error: no token '0123456789abcdef'\n"
    )


def test_the_token_routes_document_their_models_and_problems(server: Server) -> None:
    doc = httpx.get(f"{server.api}/openapi.json").json()
    problem = {"$ref": "#/components/schemas/Problem"}
    ops = {
        ("post", "/api/v1/tokens"): ("201", "TokenOut", ["401", "403", "422"]),
        ("get", "/api/v1/tokens"): ("200", None, ["401", "403", "422"]),
        ("delete", "/api/v1/tokens/{token_id}"): ("200", "TokenInfoOut", ["401", "404"]),
    }
    for (method, path), (ok, model, errors) in ops.items():
        responses = doc["paths"][path][method]["responses"]
        schema = responses[ok]["content"]["application/json"]["schema"]
        if model:
            assert schema == {"$ref": f"#/components/schemas/{model}"}, schema
        else:
            assert schema["items"] == {"$ref": "#/components/schemas/TokenInfoOut"}, schema
        for status in errors:
            assert responses[status]["content"] == {"application/problem+json": {"schema": problem}}
    assert {"status", "title", "detail", "field"} <= set(
        doc["components"]["schemas"]["Problem"]["properties"]
    )
