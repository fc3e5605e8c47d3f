"""The GA4GH TES door through a real `jobgate serve`, driven by the two independent TES
clients on PyPI (py-tes and pydantic-tes), on `local` and on Slurm, on both stores:
create, get in each view, list with each filter and paging, cancel, executors in order
(the second reads the first's output), inputs by content, file:// and s3://, outputs
to file:// and s3://, EXECUTOR_ERROR with its code, ignore_error, strict backend
parameters. A task's end is awaited on the job's event stream, not by polling."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydantictes.api
import pydantictes.models as pm
import pytest
import tes

from api.conftest import CONFIG, Server, is_problem, running_server
from conftest import need, service_env, slurm_answers
from integration.test_callbacks import Receiver

DESTINATIONS = ["local", pytest.param("slurm", marks=pytest.mark.slurm)]


@pytest.fixture(scope="module")
def s3() -> dict[str, Any]:
    endpoint = service_env().get("JOBGATE_TEST_S3_ENDPOINT")
    need(bool(endpoint), "no S3 test server (run scripts/s3-up.sh as root)")
    return {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}


@pytest.fixture(scope="module")
def tes_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, s3: dict[str, Any]
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("tes")
    partition = service_env().get("JOBGATE_TEST_SLURM_PARTITION", "")
    slurm = f'defaults = {{ partition = "{partition}" }}\n' if partition else ""
    options = ", ".join(f'{k} = "{v}"' for k, v in s3.items())
    config = CONFIG + (
        f'\n[destinations.areas]\ncapacity = 4\nwork_roots = ["{tmp}/areas/{{user}}"]\n'
        f'\n[destinations.slurm]\nscheduler = "slurm"\ncapacity = 20\npoll_interval_s = 0.5\n'
        f"{slurm}"
        f'work_roots = ["{tmp}/areas/{{user}}"]\n'
        f"\n[tes]\ns3 = {{ {options} }}\n"
        '\n[callbacks]\nallowed_hosts = ["127.0.0.1"]\n'
    )
    with running_server(tmp, database_url, config) as srv:
        yield srv


@pytest.fixture(params=DESTINATIONS)
def destination(request: pytest.FixtureRequest) -> str:
    if request.param == "slurm":
        need(slurm_answers(), "no Slurm test cluster (run scripts/slurm-up.sh as root)")
        return "slurm"
    return "areas"


def py_tes(srv: Server, user: str) -> tes.HTTPClient:
    return tes.HTTPClient(srv.base_url, token=srv.tokens[user], timeout=60)


def pydantic_tes(srv: Server, user: str) -> pydantictes.api.TesClient:
    url = f"{srv.base_url}/ga4gh/tes/"  # it appends v1/
    return pydantictes.api.TesClient(url, headers={"Authorization": f"Bearer {srv.tokens[user]}"})


def on(destination: str, **tags: str) -> dict[str, str]:
    return {"jobgate_destination": destination, **tags}


def test_service_info_through_both_clients(tes_server: Server) -> None:
    info = py_tes(tes_server, "alice").get_service_info()
    assert info.type == {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}
    assert "s3://" in info.storage and "file://" in info.storage
    other = pydantic_tes(tes_server, "bob").service_info()
    assert other.name == "jobgate" and "partition" in (other.tesResources_backend_parameters or [])


def test_two_executors_inputs_and_outputs(
    tes_server: Server, destination: str, s3: dict[str, Any], tmp_path: Path
) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(**s3)
    bucket = f"tes-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    fs.pipe_file(f"{bucket}/in/from-s3.txt", b"from s3\n")
    area = tes_server.home.parent / "areas" / "alice"
    area.mkdir(parents=True, exist_ok=True)
    (area / "local.txt").write_text("from file\n")
    big = "x" * (128 * 1024)
    task = tes.Task(
        name="two-steps",
        tags=on(destination, run="t1"),
        inputs=[
            tes.Input(path="/data/a.txt", content="from content\n"),
            tes.Input(path="/data/big.txt", content=big),
            tes.Input(path="/data/b.txt", url=f"file://{area}/local.txt"),
            tes.Input(path="/data/c.txt", url=f"s3://{bucket}/in/from-s3.txt"),
        ],
        outputs=[
            tes.Output(path="/out/joined.txt", url=f"s3://{bucket}/out/joined.txt"),
            tes.Output(path="/out/*.txt", path_prefix="/out", url=f"file://{area}/results"),
        ],
        executors=[
            tes.Executor(
                image="alpine",
                command=["sh", "-c", "cat /data/a.txt /data/b.txt /data/c.txt > /out/joined.txt"],
            ),
            tes.Executor(
                image="alpine", command=["wc", "-l", "/out/joined.txt"], stdout="/out/count.txt"
            ),
        ],
    )
    client = py_tes(tes_server, "alice")
    task_id = client.create_task(task)
    tes_server.wait("alice", task_id)
    full = client.get_task(task_id, view="FULL")
    assert full.state == "COMPLETE", full.logs
    assert [e.exit_code for e in full.logs[0].logs] == [0, 0], full.logs[0].system_logs
    joined = "from content\nfrom file\nfrom s3\n"
    assert len(full.logs[0].outputs) == 3, full.logs[0].system_logs
    assert fs.cat_file(f"{bucket}/out/joined.txt").decode() == joined
    assert (area / "results" / "joined.txt").read_text() == joined
    assert (area / "results" / "count.txt").read_text().split()[0] == "3"
    sizes = {o.url: int(o.size_bytes) for o in full.logs[0].outputs}
    assert sizes[f"s3://{bucket}/out/joined.txt"] == len(joined)
    assert full.inputs[1].content == big  # 128 KiB of content, back in the FULL view
    basic = client.get_task(task_id, view="BASIC")
    assert all(i.content is None for i in basic.inputs)
    assert basic.logs[0].system_logs is None and basic.logs[0].logs[0].stdout is None
    minimal = httpx.get(
        f"{tes_server.base_url}/ga4gh/tes/v1/tasks/{task_id}", headers=tes_server.auth("alice")
    ).json()
    assert minimal == {"id": task_id, "state": "COMPLETE"}  # the default view, and only that
    seen = client.get_task(task_id, view="MINIMAL")
    assert (seen.id, seen.state, seen.executors, seen.logs) == (task_id, "COMPLETE", None, None)
    typed = pydantic_tes(tes_server, "alice").get_task(task_id, view="FULL")
    assert typed.state == pm.TesState.COMPLETE and typed.logs[0].logs[1].exit_code == 0


def test_executor_error_and_ignore_error(tes_server: Server, destination: str) -> None:
    client = py_tes(tes_server, "alice")
    failing = client.create_task(
        tes.Task(
            tags=on(destination),
            executors=[
                tes.Executor(image="alpine", command=["sh", "-c", "echo oops >&2; exit 3"]),
                tes.Executor(image="alpine", command=["sh", "-c", "echo never"]),
            ],
        )
    )
    ignoring = client.create_task(
        tes.Task(
            tags=on(destination),
            executors=[
                tes.Executor(image="alpine", command=["sh", "-c", "exit 4"], ignore_error=True),
                tes.Executor(image="alpine", command=["sh", "-c", "echo after"]),
            ],
        )
    )
    tes_server.wait("alice", failing)
    tes_server.wait("alice", ignoring)
    failed = client.get_task(failing, view="FULL")
    assert failed.state == "EXECUTOR_ERROR"
    assert [(e.exit_code, e.stderr) for e in failed.logs[0].logs] == [(3, "oops\n")]  # stopped
    passed = client.get_task(ignoring, view="FULL")
    assert passed.state == "COMPLETE"
    assert [(e.exit_code, e.stdout) for e in passed.logs[0].logs] == [(4, ""), (0, "after\n")]


def test_list_filters_and_pages(tes_server: Server) -> None:
    client = py_tes(tes_server, "bob")
    run = uuid.uuid4().hex[:8]
    ids = [
        client.create_task(
            tes.Task(
                name=f"{run}-{i}",
                tags={"run": run, "parity": str(i % 2)},
                executors=[tes.Executor(image="x", command=["true"])],
            )
        )
        for i in range(5)
    ]
    for task_id in ids:
        tes_server.wait("bob", task_id)
    api = f"{tes_server.base_url}/ga4gh/tes/v1/tasks"
    auth = tes_server.auth("bob")

    def listed(**params: Any) -> list[str]:
        body = httpx.get(api, params=params, headers=auth).json()
        return [t["id"] for t in body["tasks"]]

    assert listed(name_prefix=run) == ids[::-1]
    assert listed(name_prefix=f"{run}-3") == [ids[3]]
    assert listed(tag_key=["run", "parity"], tag_value=[run, "1"]) == [ids[3], ids[1]]
    assert set(listed(tag_key="parity")) >= set(ids)  # any value
    assert listed(name_prefix=run, state="COMPLETE") == ids[::-1]
    assert listed(name_prefix=run, state="RUNNING") == []
    first = client.list_tasks(view="BASIC", page_size=2)
    assert len(first.tasks) == 2 and first.tasks[0].name is not None and first.next_page_token
    second = client.list_tasks(view="MINIMAL", page_size=2, page_token=first.next_page_token)
    assert {t.id for t in second.tasks}.isdisjoint(t.id for t in first.tasks)
    assert pydantic_tes(tes_server, "alice").list_tasks().tasks == [] or all(
        t.id not in ids for t in pydantic_tes(tes_server, "alice").list_tasks().tasks
    )  # bob's tasks are not alice's
    other = httpx.get(f"{api}/{ids[0]}", headers=tes_server.auth("alice"))
    assert other.status_code == 404


def test_cancel(tes_server: Server, destination: str) -> None:
    client = pydantic_tes(tes_server, "alice")
    task = pm.TesTask(
        tags=on(destination), executors=[pm.TesExecutor(image="x", command=["sleep", "300"])]
    )
    created = client.create_task(task)
    tes_server.wait_state("alice", created.id, "RUNNING")
    client.cancel_task(created)
    tes_server.wait("alice", created.id)
    # pydantic-tes reads MINIMAL as a whole task (it requires executors): BASIC
    assert client.get_task(created, view="BASIC").state == pm.TesState.CANCELED


def test_bad_tasks_are_400_naming_the_field(tes_server: Server, tmp_path: Path) -> None:
    api = f"{tes_server.base_url}/ga4gh/tes/v1/tasks"
    auth = tes_server.auth("alice")
    run = {"image": "x", "command": ["true"]}
    strict = {"backend_parameters": {"colour": "blue"}, "backend_parameters_strict": True}
    canary = tmp_path / "canary.txt"
    canary.write_text("not alice's\n")
    cases = {
        "executors": {"executors": []},
        "executors.0.stdin": {"executors": [{**run, "stdin": "relative"}]},
        "resources.backend_parameters.colour": {"executors": [run], "resources": strict},
        "inputs[0].url": {
            "executors": [run],
            "inputs": [{"path": "/d/x", "url": f"file://{canary}"}],
        },
    }
    for field, body in cases.items():
        res = httpx.post(api, json=body, headers=auth)
        assert is_problem(res, 400, field), (field, res.text)
    ftp = {"executors": [run], "inputs": [{"path": "/d/x", "url": "ftp://example.org/x"}]}
    assert (
        "this gateway takes" in is_problem(httpx.post(api, json=ftp, headers=auth), 400)["detail"]
    )
    loose = httpx.post(
        api,
        json={"executors": [run], "resources": {"backend_parameters": {"colour": "b"}}},
        headers=auth,
    )
    assert loose.status_code == 200  # not strict: noted in system_logs, not refused
    tes_server.wait("alice", loose.json()["id"])
    full = httpx.get(f"{api}/{loose.json()['id']}", params={"view": "FULL"}, headers=auth).json()
    assert any("'colour' ignored" in line for line in full["logs"][0]["system_logs"])
    assert httpx.get(api, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_callback_tag_saves_polling(tes_server: Server) -> None:
    """Beyond the spec: a task tagged jobgate_callback_url is called back as it changes."""
    receiver = Receiver()
    try:
        url = f"http://127.0.0.1:{receiver.port}/done"
        task = tes.Task(
            tags={"jobgate_callback_url": url},
            executors=[tes.Executor(image="x", command=["true"])],
        )
        task_id = py_tes(tes_server, "alice").create_task(task)

        def ended(got: list[Any]) -> bool:
            return any(b'"COMPLETED"' in r.body for r in got)

        got = receiver.wait_for(ended, timeout=60)
        assert ended(got) and all(task_id.encode() in r.body for r in got)
    finally:
        receiver.close()
