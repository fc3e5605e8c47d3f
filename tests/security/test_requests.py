"""Requests that try to exhaust or crash the gateway: huge bodies without a token, numbers
and text no store can hold. Each is a 4xx (problem+json) and leaves the server as it was."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from api.conftest import Server, is_problem

MB = 1 << 20


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _send_body(server: Server, headers: dict[str, str], size: int, chunked: bool) -> bytes:
    """POST /api/v1/jobs with `size` bytes of body, sent for as long as the server reads;
    returns the start of its answer."""
    host, port = server.base_url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    framing = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n"
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(
            f"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n{head}{framing}"
            "Content-Type: application/json\r\n\r\n".encode()
        )
        block = b"x" * MB
        sent = 0
        try:
            while sent < size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: what it should do
        try:
            return sock.recv(4096)
        except ConnectionResetError:
            return b""


@pytest.mark.parametrize("chunked", [False, True])
def test_300_mb_without_a_token_is_refused_without_being_read(
    server: Server, chunked: bool
) -> None:
    before = _rss_mb(server.pid)
    answer = _send_body(server, {}, 300 * MB, chunked)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"application/problem+json" in answer
    assert _rss_mb(server.pid) - before < 50
    assert server.client("alice").get("/healthz").status_code == 200


def test_300_mb_with_a_token_is_refused_at_the_limit(server: Server) -> None:
    before = _rss_mb(server.pid)
    answer = _send_body(server, server.auth("alice"), 300 * MB, chunked=False)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert _rss_mb(server.pid) - before < 50


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"script": "true", "resources": {"walltime": 1e400}}', "resources.walltime"),
        (b'{"script": "true", "resources": {"memory": 1e400}}', "resources.memory"),
        (b'{"script": "true", "resources": {"walltime_s": 1e400}}', "resources.walltime_s"),
        (b'{"script": "true", "resources": {"nodes": 1' + b"0" * 400 + b"}}", "resources.nodes"),
        (b'{"script": "true", "resources": {"walltime": "' + b"9" * 400 + b'"}}', None),
        (b'{"script": "true", "resources": {"mem": "' + b"9" * 400 + b'G"}}', None),
        (b'{"script": "echo \\ud800"}', "script"),
        (b'{"script": "true", "name": "a\\u0000b"}', "name"),
    ],
)
def test_numbers_and_text_no_store_holds_are_422(
    server: Server, body: bytes, field: str | None
) -> None:
    before = server.client("alice").get("/jobs").json()["items"]
    res = server.client("alice").post(
        "/jobs", content=body, headers={"Content-Type": "application/json"}
    )
    is_problem(res, 422, field)
    assert server.client("alice").get("/jobs").json()["items"] == before


def test_joblauncher_bad_text_is_422_and_runs_nothing(server: Server) -> None:
    jobdir = server.home / "jobdirs" / "alice"
    jobdir.mkdir(parents=True, exist_ok=True)
    import httpx

    url = f"{server.base_url}/compat/joblauncher/job"
    headers = {**server.auth("alice"), "Content-Type": "application/json"}
    for member in (b'"executable": "/bin/echo\\ud800"', b'"arguments": ["\\udfff"]'):
        body = b'{"jobdir": "%s", %s}' % (str(jobdir).encode(), member)
        is_problem(httpx.post(url, content=body, headers=headers), 422)
    listed = httpx.get(url, headers=server.auth("alice"))
    assert listed.status_code == 200 and listed.json() == []


def test_the_refusals_are_documented_as_problems_in_openapi(server: Server) -> None:
    spec = httpx.get(f"{server.api}/openapi.json").json()
    for path, method, codes in [
        ("/api/v1/jobs", "post", ("401", "413", "422", "503")),
        ("/api/v1/jobs/{job_id}/logs/{stream}", "get", ("401", "404", "503")),
        ("/compat/joblauncher/job", "post", ("401", "413", "422")),
    ]:
        answers = spec["paths"][path][method]["responses"]
        for code in codes:
            assert "application/problem+json" in answers[code]["content"], (path, code)
    assert "Problem" in spec["components"]["schemas"]
