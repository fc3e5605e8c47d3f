"""Callback URLs that delivery would refuse are refused at submit by a real `jobgate
serve` (SQLite and PostgreSQL): 422 naming `callback_url`, and no job is made. Among them
every IPv6 form that carries a loopback IPv4. The server allows 127.0.0.2 only, so that an
allowed host is seen to pass beside them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from api.conftest import Server, is_problem, running_server

CONFIG = """\
[destinations.local]
capacity = 4

[callbacks]
allowed_hosts = ["127.0.0.2", "*.hooks.test"]
"""
LOOP = "embeds 127.0.0.1, a loopback address"
REFUSED = [  # (url, what the 422's detail must say)
    ("http://127.0.0.1:9/hook", "127.0.0.1 (loopback address)"),
    ("http://[::1]:9/hook", "::1 (loopback address)"),
    ("http://[::7f00:1]:9/hook", LOOP),  # IPv4-compatible
    ("http://[::ffff:127.0.0.1]:9/hook", "127.0.0.1 (loopback address)"),  # IPv4-mapped
    ("http://[::ffff:0:7f00:1]:9/hook", LOOP),  # IPv4-translated
    ("http://[64:ff9b::7f00:1]:9/hook", LOOP),  # NAT64
    ("http://[64:ff9b:1::7f00:1]:9/hook", LOOP),  # NAT64, local-use prefix
    ("http://[2002:7f00:1::]:9/hook", LOOP),  # 6to4
    ("http://[2001:0:7f00:1::]:9/hook", LOOP),  # Teredo server
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:9/hook", LOOP),  # Teredo client
    ("http://[fec0::1]:9/hook", "fec0::1 (site-local address)"),
    ("http://[64:ff9b::a9fe:a9fe]/latest/meta-data", "embeds 169.254.169.254, a link-local"),
    ("http://localhost:9/hook", "localhost -> "),  # a name: judged by what it resolves to
]


@pytest.fixture(scope="module")
def cb_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("cb"), database_url, CONFIG) as srv:
        yield srv


def _listed(server: Server, tag: str) -> list[str]:
    res = server.client("alice").get("/jobs", params={"label": f"t={tag}"})
    assert res.status_code == 200, res.text
    return [j["id"] for j in res.json()["items"]]


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_a_callback_url_delivery_would_refuse_is_422_and_makes_no_job(
    cb_server: Server, url: str, why: str
) -> None:
    tag = uuid.uuid4().hex[:12]
    res = cb_server.client("alice").post(
        "/jobs", json={"script": "true", "callback_url": url, "labels": {"t": tag}}
    )
    body = is_problem(res, 422, "callback_url")
    assert why in body["detail"] and "not in callbacks.allowed_hosts" in body["detail"], body
    assert _listed(cb_server, tag) == []


def test_allowed_hosts_and_names_that_do_not_resolve_now_are_accepted(cb_server: Server) -> None:
    tag = uuid.uuid4().hex[:12]
    accepted = [
        "http://127.0.0.2:9/hook",  # listed by address
        "https://a.hooks.test/hook",  # listed by name (never resolved)
        "http://nowhere.invalid/hook",  # no address now: delivery resolves it again
    ]
    ids = []
    for url in accepted:
        spec = {"script": "true", "callback_url": url, "labels": {"t": tag}}
        job = cb_server.submit("alice", **spec)
        assert job["spec"]["callback_url"] == url
        ids.append(job["id"])
    assert sorted(_listed(cb_server, tag)) == sorted(ids)
