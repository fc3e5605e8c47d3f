"""TES pieces that are pure: each container runtime's rendered command, the host
runtime's path mapping (a task's paths land beneath the run directory, never the
host's own folders), outputs' matching (file, folder, 1.1 wildcards with path_prefix)
and the state mapping."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import a_record
from jobgate.api.tes.models import Output, Task
from jobgate.api.tes.script import mounts, render
from jobgate.api.tes.staging import output_matches
from jobgate.api.tes.views import tes_state
from jobgate.spec import JobRecord
from jobgate.states import JobState, StopReason

RUN = '"$JOBGATE_RUN_DIR"/root'  # a task's / in the run directory, as the script names it
TASK = Task.model_validate(
    {
        "inputs": [
            {"path": "/data/in.txt", "content": "x"},
            {"path": "/usr/local/ref", "type": "DIRECTORY", "url": "s3://b/r"},
        ],
        "outputs": [{"path": "/out/result.txt", "url": "s3://b/o"}],
        "executors": [
            {
                "image": "ubuntu:22.04",
                "command": ["sh", "-c", "cat /data/in.txt > /out/result.txt"],
                "env": {"REF": "/usr/local/ref/x"},
                "workdir": "/data",
            },
            {
                "image": "docker://quay.io/x/y",
                "command": ["wc", "-l", "/out/result.txt"],
                "stdout": "/out/count",
                "ignore_error": True,
            },
        ],
    }
)


def test_mounts_are_the_tasks_folders_never_the_systems() -> None:
    assert mounts(TASK) == ["/usr/local/ref", "/data", "/out"]
    etc = Task.model_validate(
        {
            "inputs": [{"path": "/etc/x", "content": "y"}],
            "executors": [{"image": "i", "command": ["true"]}],
        }
    )
    assert mounts(etc) == []  # /etc is never bound over or rewritten


def test_host_runtime_runs_beneath_the_run_directory(tmp_path: Path) -> None:
    script = render(TASK, "host")
    assert f"( cd {RUN}/data && exec env -- REF={RUN}/usr/local/ref/x sh -c" in script
    assert (
        "'cat '\"$JOBGATE_RUN_DIR\"/root/data'/in.txt > '\"$JOBGATE_RUN_DIR\"/root/out/result.txt"
        in script
    )
    # It runs: the first executor writes where the second reads, all under the run dir.
    (tmp_path / "root" / "data").mkdir(parents=True)
    (tmp_path / "root" / "data" / "in.txt").write_text("a\nb\n")
    ran = subprocess.run(
        ["sh", "-c", script],
        env={"JOBGATE_RUN_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert ran.returncode == 0
    assert (tmp_path / "root" / "out" / "result.txt").read_text() == "a\nb\n"
    assert (tmp_path / "root" / "out" / "count").read_text().split()[0] == "2"
    log = (tmp_path / ".tes" / "log").read_text().split("\n")
    assert [line.split()[:3] for line in log if line.startswith("end")] == [
        ["end", "0", "0"],
        ["end", "1", "0"],
    ]


def test_a_failing_executor_stops_the_rest_unless_ignore_error() -> None:
    script = render(TASK, "host")
    first, second = script.split('printf "start 1')
    assert '[ "$c" -eq 0 ] || exit "$c"' in first and "|| exit" not in second


FOLDERS = ["/usr/local/ref", "/data", "/out"]


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [
        (
            "apptainer",
            "apptainer exec --containall "
            + " ".join(f"--bind {RUN}{m}:{m}" for m in FOLDERS)
            + " --env REF=/usr/local/ref/x --pwd /data docker://ubuntu:22.04 sh -c",
        ),
        (
            "podman",
            "podman run --rm -i "
            + " ".join(f"-v {RUN}{m}:{m}" for m in FOLDERS)
            + " -e REF=/usr/local/ref/x -w /data ubuntu:22.04 sh -c",
        ),
        (
            "docker",
            "docker run --rm -i "
            + " ".join(f"-v {RUN}{m}:{m}" for m in FOLDERS)
            + " -e REF=/usr/local/ref/x -w /data ubuntu:22.04 sh -c",
        ),
    ],
)
def test_container_runtimes_bind_the_tasks_folders(runtime: str, expected: str) -> None:
    script = render(TASK, runtime)
    assert expected in script
    assert "> root/out/count" in script  # redirects stay on the host side, in the run dir
    if runtime == "apptainer":
        assert "docker://quay.io/x/y wc -l /out/result.txt" in script  # a URL image as given


def test_outputs_match_files_folders_and_wildcards() -> None:
    files = ["root/out/a.txt", "root/out/b.log", "root/out/sub/c.txt", "stdout"]
    one = Output(path="/out/a.txt", url="s3://b/a")
    assert output_matches(one, files) == [("root/out/a.txt", "s3://b/a")]
    folder = Output(path="/out", url="s3://b/all/", type="DIRECTORY")
    assert [u for _, u in output_matches(folder, files)] == [
        "s3://b/all/a.txt",
        "s3://b/all/b.log",
        "s3://b/all/sub/c.txt",
    ]
    wild = Output(path="/out/*.txt", path_prefix="/out", url="file:///r")
    assert output_matches(wild, files) == [
        ("root/out/a.txt", "file:///r/a.txt"),
        ("root/out/sub/c.txt", "file:///r/sub/c.txt"),
    ]
    assert output_matches(Output(path="/out/none", url="s3://b/n"), files) == []


def _job(state: JobState, **fields: Any) -> JobRecord:
    return a_record(state, **fields)


def test_states_map_as_documented() -> None:
    assert tes_state(_job(JobState.SUBMITTED)) == "QUEUED"
    assert tes_state(_job(JobState.STAGING_IN)) == "INITIALIZING"
    assert tes_state(_job(JobState.RUNNING, stop_reason=StopReason.CANCEL)) == "CANCELING"
    assert tes_state(_job(JobState.FAILED, exit_code=3)) == "EXECUTOR_ERROR"
    assert (
        tes_state(_job(JobState.FAILED, exit_code=None, reason="submit: refused")) == "SYSTEM_ERROR"
    )
    assert (
        tes_state(_job(JobState.COMPLETED), {"tes_errors": ["outputs[0]: denied"]})
        == "SYSTEM_ERROR"
    )
    assert tes_state(_job(JobState.COMPLETED), {"tes_errors": []}) == "COMPLETE"
    assert tes_state(_job(JobState.LOST)) == "SYSTEM_ERROR"
    assert (
        tes_state(_job(JobState.FAILED, exit_code=None, reason="PREEMPTED by the scheduler"))
        == "PREEMPTED"
    )
    assert tes_state(_job(JobState.CANCELLED)) == "CANCELED"


def test_a_sites_container_command() -> None:
    script = render(TASK, "apptainer", "apptainer exec --nv {binds} {image}")
    assert f"apptainer exec --nv --bind {RUN}/usr/local/ref:/usr/local/ref" in script
    assert "/out:/out docker://ubuntu:22.04 sh -c" in script and "--env" not in script
