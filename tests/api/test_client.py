"""The remote doors against a real `jobgate serve`: `jobgate.Client(url, token)` with the
embedded Gateway's interface and Job handles, and the `jobgate` command with --server /
JOBGATE_SERVER + JOBGATE_TOKEN (waiting and `logs -f` over Server-Sent Events)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from api.conftest import JOBGATE, Gate, Server
from jobgate import Gateway, JobSpec, JobState
from jobgate.client import Client
from jobgate.errors import FatalError, NotFoundError, SpecError, TransientError
from jobgate.ids import new_id
from jobgate.sdk import Job, JobSource


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.base_url, server.tokens["alice"]) as c:
        yield c


def _params(f: Callable[..., object]) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]


def test_the_client_has_the_gateways_interface() -> None:
    for name in ("submit", "get", "list", "cancel", "destinations", "close"):
        assert _params(getattr(Client, name)) == _params(getattr(Gateway, name)), name
    for name, member in vars(JobSource).items():  # what a Job handle calls on its source
        if callable(member) and name.startswith("_") and not name.startswith("__"):
            assert _params(getattr(Client, name)) == _params(member), name
    assert callable(Client.__enter__) and callable(Client.__exit__)


def test_submit_wait_and_the_job_handle(server: Server, client: Client) -> None:
    t = uuid.uuid4().hex
    job = client.submit(script="echo out\necho err >&2\nexit 2", name="remote", labels={"t": t})
    assert isinstance(job, Job) and job.record.owner == "alice"
    assert job.wait(60) == JobState.FAILED
    assert (job.state, job.exit_code) == (JobState.FAILED, 2)
    assert (job.stdout(), job.stderr()) == ("out\n", "err\n")
    assert job.read_log("stdout", 2) == b"t\n"
    types = [e.type for e in job.events()]
    assert types[0] == "QUEUED" and types[-1] == "FAILED"
    assert job.native_id is not None

    other = client.submit(JobSpec(executable="/bin/echo", arguments=["hi"], labels={"t": t}))
    assert other.wait(60) == JobState.COMPLETED and other.stdout() == "hi\n"
    assert client.get(other.id).record.spec.arguments == ["hi"]
    assert [j.id for j in client.list(label={"t": t})] == [other.id, job.id]
    assert [j.id for j in client.list(label={"t": t}, state="FAILED")] == [job.id]
    assert [j.id for j in client.list(label={"t": t}, limit=1)] == [other.id]
    assert {d["name"] for d in client.destinations()} == {"local", "tiny", "counted"}


def test_input_files_travel_as_multipart_parts(
    server: Server, client: Client, tmp_path: Path
) -> None:
    (tmp_path / "data.txt").write_text("from the client\n")
    (tmp_path / "more.bin").write_bytes(b"\x00\x01\x02")
    job = client.submit(
        script="cat in.txt\nwc -c < more.bin\n",
        input_files=[
            {"source": str(tmp_path / "data.txt"), "target": "in.txt"},
            {"source": str(tmp_path / "more.bin")},
        ],
    )
    assert job.wait(60) == JobState.COMPLETED
    assert job.stdout() == "from the client\n3\n"


def test_wait_honours_timeout_and_until_and_follow_log_streams(
    client: Client, gates: Callable[[], Gate]
) -> None:
    gate = gates()
    job = client.submit(script=f"echo first\n{gate.wait}\necho second\n")
    assert job.wait(until=lambda s: s == JobState.RUNNING) == JobState.RUNNING
    assert not job.wait(timeout=0.5).final  # returns although the stream stays alive

    chunks = []
    for chunk in job.follow_log():
        chunks.append(chunk)
        if b"".join(chunks) == b"first\n":
            gate.open()  # seen while the job still ran
    assert b"".join(chunks) == b"first\nsecond\n"
    assert job.wait(60) == JobState.COMPLETED


def test_wait_follows_the_event_stream_instead_of_polling(
    client: Client, gates: Callable[[], Gate]
) -> None:
    gate = gates()
    job = client.submit(script=gate.wait)
    assert job.wait(until=lambda s: s == JobState.RUNNING) == JobState.RUNNING
    requests: list[str] = []
    opener = threading.Thread(target=gate.open)

    def sent(request: httpx.Request) -> None:
        requests.append(request.url.path)
        if request.url.path.endswith("/events"):
            opener.start()  # the job ends while wait() follows its stream

    client._http.event_hooks["request"].append(sent)
    assert job.wait(60) == JobState.COMPLETED
    opener.join()
    record, stream = f"/api/v1/jobs/{job.id}", f"/api/v1/jobs/{job.id}/events"
    assert requests == [record, stream, record]  # one stream until the job ended


def test_cancel(client: Client, gates: Callable[[], Gate]) -> None:
    job = client.submit(script=gates().wait)
    job.wait(until=lambda s: s == JobState.RUNNING)
    assert client.cancel(job.id).id == job.id
    assert job.wait(60) == JobState.CANCELLED
    assert job.cancel() == JobState.CANCELLED  # a final job stays as it is


def test_errors_are_the_gateways_exceptions(server: Server, client: Client) -> None:
    with pytest.raises(NotFoundError):
        client.get(new_id())
    with pytest.raises(SpecError) as err:
        client.submit(script="true", resources={"cpus_per_task": -1})
    assert err.value.field == "resources.cpus_per_task"
    with pytest.raises(SpecError) as err:
        client.submit(script="true", destination="mars")
    assert err.value.field == "destination"
    with Client(server.base_url, server.tokens["bob"]) as bob:
        bobs = bob.submit(script="true")
        with pytest.raises(NotFoundError):  # bob's job does not exist for alice
            client.get(bobs.id)
        assert bobs.wait(60) == JobState.COMPLETED
    with Client(server.base_url, "jg_wrong") as stranger, pytest.raises(FatalError) as denied:
        stranger.list()
    assert "401" in str(denied.value)
    with Client("http://127.0.0.1:9", "x") as nobody, pytest.raises(TransientError):
        nobody.list()


# -- the CLI against the server -------------------------------------------------------------


@pytest.fixture
def cli_env(server: Server, tmp_path: Path) -> dict[str, str]:
    """A shell with JOBGATE_SERVER and JOBGATE_TOKEN, and an empty home of its own (a
    local store there would mean the CLI did not go to the server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBGATE_")}
    return env | {
        "JOBGATE_SERVER": server.base_url,
        "JOBGATE_TOKEN": server.tokens["alice"],
        "JOBGATE_HOME": str(tmp_path / "client-home"),
        "COLUMNS": "200",
    }


def jg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBGATE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_submit_wait_ls_logs_cancel(
    server: Server, cli_env: dict[str, str], tmp_path: Path
) -> None:
    t = uuid.uuid4().hex
    script = tmp_path / "job.sh"
    script.write_text("cat data.txt\necho oops >&2\nexit 3\n")
    data = tmp_path / "data.txt"
    data.write_text("uploaded\n")

    res = jg(cli_env, "submit", "--wait", "--json", "-i", str(data), "-l", f"t={t}", str(script))
    assert res.returncode == 3, res.stderr
    job = json.loads(res.stdout)
    assert (job["state"], job["exit_code"], job["owner"]) == ("FAILED", 3, "alice")
    assert jg(cli_env, "logs", "--stderr", job["id"]).stdout == "oops\n"

    res = jg(cli_env, "submit", "-l", f"t={t}", "--exec", "/bin/echo", "two")
    assert res.returncode == 0, res.stderr
    second = res.stdout.strip()
    assert jg(cli_env, "wait", second).returncode == 0
    listed = json.loads(jg(cli_env, "ls", "--json", "-l", f"t={t}").stdout)
    assert [j["id"] for j in listed] == [second, job["id"]]
    table = jg(cli_env, "ls", "-l", f"t={t}", "-s", "FAILED").stdout
    assert job["id"] in table and second not in table
    assert server.client("alice").get(f"/jobs/{job['id']}/logs/stdout").text == "uploaded\n"
    assert not (tmp_path / "client-home").exists()  # everything went to the server


def test_cli_logs_follow_streams_and_cancel(
    server: Server, cli_env: dict[str, str], tmp_path: Path, gates: Callable[[], Gate]
) -> None:
    gate = gates()
    script = tmp_path / "job.sh"
    script.write_text(f"echo first\n{gate.wait}\necho second\n")
    job_id = jg(cli_env, "submit", str(script)).stdout.strip()

    follow = subprocess.Popen(
        [JOBGATE, "logs", "-f", job_id], env=cli_env, stdout=subprocess.PIPE, text=True
    )
    assert follow.stdout is not None
    assert follow.stdout.readline() == "first\n"  # printed while the job still runs
    gate.open()
    assert follow.stdout.read() == "second\n"
    assert follow.wait(60) == 0

    script.write_text(gates().wait)
    held = jg(cli_env, "submit", str(script)).stdout.strip()
    server.wait_state("alice", held, "RUNNING")
    assert jg(cli_env, "wait", "--timeout", "0.5", held).returncode == 124
    res = jg(cli_env, "cancel", held)
    assert res.returncode == 0 and res.stdout.split()[0] == held
    assert jg(cli_env, "wait", held).returncode == 130  # CANCELLED, whatever TERM left
    assert server.job("alice", held)["state"] == "CANCELLED"


def test_cli_server_and_token_flags_and_errors(server: Server, cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if k not in ("JOBGATE_SERVER", "JOBGATE_TOKEN")}
    flags = ["--server", server.base_url, "--token", server.tokens["bob"]]
    res = jg(env, *flags, "submit", "--wait", "--exec", "/bin/true")
    assert res.returncode == 0, res.stderr
    assert all(j["owner"] == "bob" for j in json.loads(jg(env, *flags, "ls", "--json").stdout))

    denied = jg(cli_env | {"JOBGATE_TOKEN": "jg_wrong"}, "ls")
    assert denied.returncode == 1 and "not authorized (401)" in denied.stderr
    missing = jg(cli_env, "show", new_id())
    assert missing.returncode == 1 and "no job" in missing.stderr
    bad = jg(cli_env, "submit", "-c", "0", "--exec", "/bin/true")
    assert bad.returncode == 2 and "resources.cpus_per_task" in bad.stderr
    token = jg(cli_env, "token", "create", "--user", "x")
    assert token.returncode == 2 and "POST /api/v1/tokens" in token.stderr
