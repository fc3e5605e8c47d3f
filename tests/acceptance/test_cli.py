"""The `jobgate` command as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

JOBGATE = str(Path(sys.executable).with_name("jobgate"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("JOBGATE_")}
    return {**base, "JOBGATE_HOME": str(tmp_path / "home"), "JOBGATE_CONFIG": "", "COLUMNS": "200"}


def jg(
    env: dict[str, str], *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBGATE, *args],
        env=env,
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
        check=False,
    )


def script(tmp_path: Path, text: str) -> str:
    path = tmp_path / "job.sh"
    path.write_text(text)
    return str(path)


def test_run_streams_output_and_exits_with_the_job_code(
    env: dict[str, str], tmp_path: Path
) -> None:
    res = jg(env, "run", script(tmp_path, "echo hello\necho oops >&2\nexit 3\n"))
    assert res.returncode == 3
    assert res.stdout == "hello\n"
    assert "oops" in res.stderr


def test_submit_wait_json_show_events_logs(env: dict[str, str], tmp_path: Path) -> None:
    res = jg(
        env,
        "submit",
        "--wait",
        "--json",
        "-J",
        "greet",
        "-e",
        "WHO=world",
        "-l",
        "k=v",
        script(tmp_path, 'echo "hi $WHO"'),
    )
    assert res.returncode == 0, res.stderr
    job = json.loads(res.stdout)
    assert (job["state"], job["exit_code"], job["name"], job["labels"]) == (
        "COMPLETED",
        0,
        "greet",
        {"k": "v"},
    )
    assert jg(env, "logs", job["id"]).stdout == "hi world\n"
    shown = json.loads(jg(env, "show", "--json", job["id"]).stdout)
    assert shown["id"] == job["id"] and "backend_data" not in shown
    assert shown["run_dir"] == f"{env['JOBGATE_HOME']}/runs/{job['id']}"  # stored at submit
    events = json.loads(jg(env, "events", "--json", job["id"]).stdout)
    assert [e["type"] for e in events][-1] == "COMPLETED"
    listed = json.loads(jg(env, "ls", "--json", "-l", "k=v").stdout)
    assert [j["id"] for j in listed] == [job["id"]]
    table = jg(env, "ls").stdout
    assert job["id"] in table and "COMPLETED" in table


def test_exec_and_stdin_script(env: dict[str, str]) -> None:
    res = jg(env, "submit", "--wait", "--exec", "/bin/echo", "a b", "c")
    assert res.returncode == 0
    first = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("id"))
    job_id = first.split()[-1]
    assert jg(env, "logs", job_id).stdout == "a b c\n"
    res = jg(env, "run", "-", input="echo from-stdin\n")
    assert (res.returncode, res.stdout) == (0, "from-stdin\n")


def test_cancel_and_wait(env: dict[str, str], tmp_path: Path) -> None:
    job_id = jg(env, "submit", script(tmp_path, "exec sleep 300")).stdout.strip()
    res = jg(env, "cancel", job_id)
    assert res.stdout.strip() == f"{job_id} CANCELLED"
    res = jg(env, "wait", "--json", job_id)
    assert res.returncode == 130 and json.loads(res.stdout)[0]["state"] == "CANCELLED"


def test_wait_many_reports_all(env: dict[str, str], tmp_path: Path) -> None:
    ids = [jg(env, "submit", script(tmp_path, f"exit {i % 2}")).stdout.strip() for i in range(4)]
    res = jg(env, "wait", "--json", *ids)
    states = [j["state"] for j in json.loads(res.stdout)]
    assert states == ["COMPLETED", "FAILED", "COMPLETED", "FAILED"]
    assert res.returncode == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["submit", "--time", "abc", "SCRIPT"], "resources.walltime"),
        (["submit", "--cpus", "-2", "SCRIPT"], "resources.cpus_per_task"),
        (["submit", "--dest", "nowhere", "SCRIPT"], "destination"),
        (["submit", "/no/such/script.sh"], "script: no such file"),
        (["submit", "-e", "NOEQUALS", "SCRIPT"], "environment"),
        (["show", "01NOSUCHJOB000000000000000"], "no job"),
        (["submit", "--mem", "lots", "SCRIPT"], "resources.memory"),
    ],
)
def test_bad_input_is_one_line_no_traceback(
    env: dict[str, str], tmp_path: Path, args: list[str], needle: str
) -> None:
    path = script(tmp_path, "true")
    res = jg(env, *[path if a == "SCRIPT" else a for a in args])
    assert res.returncode != 0
    assert needle in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert json.loads(jg(env, "ls", "--json").stdout) == []  # nothing stored


def test_flags_come_from_environment(env: dict[str, str], tmp_path: Path) -> None:
    res = jg({**env, "JOBGATE_DEST": "nowhere"}, "submit", script(tmp_path, "true"))
    assert "unknown destination 'nowhere'" in res.stderr
    res = jg(
        {**env, "JOBGATE_SUBMIT_NAME": "from-env", "JOBGATE_JSON": "1"},
        "submit",
        "--wait",
        script(tmp_path, "true"),
    )
    assert json.loads(res.stdout)["name"] == "from-env"


def test_destinations(env: dict[str, str]) -> None:
    rows = json.loads(jg(env, "destinations", "--json").stdout)
    assert rows == [
        {
            "name": "local",
            "scheduler": "local",
            "transport": "local",
            "capacity": os.cpu_count(),
            "active": 0,
            "queued": 0,
        }
    ]


def test_bad_config_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[destinations.x]\ncapacity = -1\n")
    res = jg({**env, "JOBGATE_CONFIG": str(cfg)}, "ls")
    assert res.returncode == 2
    assert res.stderr.strip().startswith("jobgate: error: destinations.x.capacity")
