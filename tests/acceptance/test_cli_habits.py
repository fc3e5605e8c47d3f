"""What an sbatch/squeue user reaches for, and the errors that tell them how to fix it:
embedded and through a real `jobgate serve` (the `cli` fixture)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from acceptance.conftest import Cli, submitted_id
from conftest import JOBGATE
from jobgate.ids import new_id


def one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jobgate: error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--array", "3-1"], ["resources.array", "is an empty range"]),
        (["--dependency", "afterok:1"], ["dependency:", "'1' is not a job id"]),
        (["--dependency", "before:01M8Y1ECY17PHVSQGEVM8YCXER"], ["dependency:", "afterok"]),
        (["--time", "1h30x"], ["resources.walltime"]),
    ],
)
def test_reserved_and_bad_flags_are_one_line_and_store_nothing(
    cli: Cli, tmp_path: Path, args: list[str], needles: list[str]
) -> None:
    label = f"t={new_id()}"
    (tmp_path / "job.sh").write_text("true\n")
    one_line_error(cli("submit", "-l", label, *args, str(tmp_path / "job.sh")), *needles)
    assert json.loads(cli("ls", "--json", "-l", label).stdout) == []


def test_errors_point_at_the_users_mistake(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    one_line_error(cli("submit", str(tmp_path / "dir")), "script:", "is a directory")
    typo = tmp_path / "typo.sh"
    typo.write_text("#!/bin/bsh\necho hi\n")
    for command in ("submit", "run"):
        one_line_error(cli(command, str(typo)), "script: line 1: #!/bin/bsh", "no such interpreter")
    one_line_error(cli("ls", "--state", "DONE"), "state:", "known: NEW, QUEUED", "COMPLETED")


def test_times_as_people_write_them_and_sbatch_names(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text("true\n")
    for written, seconds in [("1h30m", 5400), ("1d2h", 93600), ("90", 5400), ("1:30:00", 5400)]:
        res = cli(
            "submit", "--wait", "--json", "-J", "timed", "--time", written, "job.sh", cwd=tmp_path
        )
        assert res.returncode == 0, res.stderr
        job = json.loads(res.stdout)
        assert (job["name"], job["resources"]["walltime_s"]) == ("timed", seconds), written


def test_a_warning_for_what_the_destination_ignores(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text("true\n")
    res = cli("submit", "--gpus", "2", "-p", "gpu", "-A", "x", str(tmp_path / "job.sh"))
    assert res.returncode == 0
    assert res.stderr.startswith("jobgate: warning: destination 'local' ")
    assert all(f"resources.{r}" in res.stderr for r in ("gpus", "partition", "account"))
    res = cli("submit", "--time", "1m", str(tmp_path / "job.sh"))  # local honours time limits
    assert res.returncode == 0 and res.stderr == ""


def test_show_tells_where_what_and_how_long(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text("echo made > out.txt\n")
    res = cli("submit", "--wait", "--time", "10m", "-o", "out.txt", str(tmp_path / "job.sh"))
    job_id = submitted_id(res)
    shown = cli.job(job_id)
    assert shown["run_dir"] and Path(str(shown["run_dir"]), "out.txt").read_text() == "made\n"
    rows = dict(
        (ln[:12].strip(), ln[12:].strip()) for ln in cli("show", job_id).stdout.splitlines()
    )
    assert rows["run dir"] == shown["run_dir"]
    assert (rows["state"], rows["exit code"], rows["destination"]) == ("COMPLETED", "0", "local")
    assert (rows["asked"], rows["time limit"], rows["outputs"]) == (
        "walltime_s=600",
        "10:00",
        "out.txt",
    )
    assert rows["native id"] == shown["native_id"] and rows["elapsed"].startswith("00:0")
    assert all(rows[k].startswith("20") for k in ("created", "started", "finished"))


def test_cancel_by_filter_asks_above_ten(cli: Cli, tmp_path: Path) -> None:
    label = f"grp={new_id()}"
    (tmp_path / "hold.sh").write_text("exec sleep 300\n")
    ids = [cli("submit", "-l", label, str(tmp_path / "hold.sh")).stdout.strip() for _ in range(11)]
    res = subprocess.run(
        [JOBGATE, "cancel", "-l", label],
        env=cli.env,
        input="n\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode != 0 and "11 jobs" in res.stdout + res.stderr, res
    listed = json.loads(cli("ls", "--json", "-l", label).stdout)
    assert not [j for j in listed if j["state"] == "CANCELLED"]  # nothing done on "n"
    res = cli("cancel", "-l", label, "--yes")
    assert res.returncode == 0 and sorted(
        ln.split()[0] for ln in res.stdout.splitlines()
    ) == sorted(ids)
    assert cli("wait", *ids).returncode == 130
    states = {j["state"] for j in json.loads(cli("ls", "--json", "-l", label).stdout)}
    assert states == {"CANCELLED"}


@pytest.mark.parametrize("command", [["run"], ["submit", "--wait"]])
def test_ctrl_c_is_quiet_and_says_what_became_of_the_job(
    cli: Cli, tmp_path: Path, command: list[str]
) -> None:
    started = tmp_path / "started"
    os.mkfifo(started)
    (tmp_path / "hold.sh").write_text(f"echo up > {started}\nexec sleep 300\n")
    proc = subprocess.Popen(
        [JOBGATE, *command, str(tmp_path / "hold.sh")],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = threading.Thread(target=started.read_text, daemon=True)  # the job is running
    reader.start()
    reader.join(120)
    assert not reader.is_alive(), "the job never started"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Task was destroyed" not in err and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jobgate: interrupted"), err
    job_id = lines[0].split()[3]
    if command == ["run"]:  # run's job is the terminal's: it goes with Ctrl-C
        assert cli("wait", job_id).returncode == 130
    else:  # a batch job outlives the wait for it
        assert cli.job(job_id)["state"] == "RUNNING"
        assert cli("cancel", job_id).returncode == 0


def test_dependency_as_sbatch_writes_it_and_resubmit(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "a.sh").write_text("echo a\n")
    (tmp_path / "b.sh").write_text("echo b\n")
    a = cli("submit", str(tmp_path / "a.sh"))
    assert a.returncode == 0, a.stderr
    first = a.stdout.strip()
    b = cli("submit", "--dependency", f"afterok:{first}", str(tmp_path / "b.sh"))
    assert b.returncode == 0, b.stderr
    second = b.stdout.strip()
    assert cli("wait", second).returncode == 0
    shown = cli.job(second)
    spec = shown["spec"]
    assert isinstance(spec, dict) and spec["depends_on"]["afterok"] == [first]
    again = cli("resubmit", second)
    assert again.returncode == 0, again.stderr
    third = again.stdout.strip()
    assert third != second and cli("wait", third).returncode == 0
    assert cli("logs", third).stdout == "b\n"
    assert cli.job(third)["labels"] == {"resubmitted_from": second}
    one_line_error(cli("resubmit", "--failed-tasks", second), "failed-tasks:", "no failed")


def test_an_array_from_the_command_line_and_its_failed_tasks_again(
    cli: Cli, tmp_path: Path
) -> None:
    mark = tmp_path / "second-time"
    (tmp_path / "arr.sh").write_text(
        f'if [ "$JOBGATE_ARRAY_TASK_ID" = 2 ] && [ ! -e {mark} ]; then\n'
        f"  touch {mark}; exit 3\nfi\n"
    )
    first = cli("submit", "--array", "0-4%2", str(tmp_path / "arr.sh"))
    assert first.returncode == 0, first.stderr
    job = first.stdout.strip()
    assert cli("wait", job).returncode == 3
    tasks = json.loads(cli("ls", "--array", job, "--json").stdout)
    assert [(t["index"], t["state"], t["exit_code"]) for t in tasks] == [
        (0, "COMPLETED", 0), (1, "COMPLETED", 0), (2, "FAILED", 3),
        (3, "COMPLETED", 0), (4, "COMPLETED", 0),
    ]  # fmt: skip
    again = cli("resubmit", "--failed-tasks", job)
    assert again.returncode == 0, again.stderr
    rerun = again.stdout.strip()
    assert cli("wait", rerun).returncode == 0
    assert cli.job(rerun)["resources"]["array"] == "2%2"  # type: ignore[index]
    shown = cli("show", "--tasks", rerun).stdout.split("\n")
    assert len([line for line in shown[1:] if line.strip()]) == 1 and "COMPLETED" in shown[1]
