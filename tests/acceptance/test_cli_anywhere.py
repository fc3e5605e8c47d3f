"""The `jobgate` command as a user runs it, twice over: on its embedded gateway (SQLite) and
through a real `jobgate serve` (PostgreSQL). Each test is one of issue 11's cases, with the
same expectations both ways: the CLI must not behave differently behind a server."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from acceptance.conftest import Cli, submitted_id
from conftest import JOBGATE
from jobgate.ids import new_id
from jobgate.spec import JobRecord, JobSpec
from jobgate.states import JobState
from jobgate.store import Store


def test_relative_input_is_the_users_file_not_the_gateways(cli: Cli, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "numbers.txt").write_text("".join(f"{i}\n" for i in range(1, 101)))
    (cli.gateway_dir / "numbers.txt").write_text("999999\n")  # the decoy
    (work / "sum.sh").write_text("awk '{s += $1} END {print s}' numbers.txt > result.txt\n")
    res = cli("submit", "sum.sh", "-i", "numbers.txt", "-o", "result.txt", "--wait", cwd=work)
    assert res.returncode == 0, res.stdout + res.stderr
    job_id = submitted_id(res)
    assert "result.txt" in cli("files", job_id).stdout
    res = cli("get", job_id, "result.txt", "-o", str(tmp_path / "got"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "got" / "result.txt").read_text() == "5050\n"
    res = cli("get", job_id, "../../etc/passwd", "-o", str(tmp_path / "bad"))
    assert res.returncode != 0 and "paths" in res.stderr and not (tmp_path / "bad").exists()


def test_a_50_mb_log_is_read_whole(cli: Cli, tmp_path: Path) -> None:
    job = tmp_path / "big.sh"
    job.write_text("head -c 37500000 /dev/urandom | base64 -w 76\n")  # ~50.7 MB of text
    job_id = submitted_id(cli("submit", "--wait", str(job)))
    run_dir = Path(str(cli.job(job_id)["run_dir"]))
    written = hashlib.sha256((run_dir / "stdout").read_bytes()).hexdigest()
    for follow in ([], ["-f"]):  # served, -f streams past the server's 16 MiB per stream
        read = subprocess.run(
            [JOBGATE, "logs", *follow, job_id],
            env=cli.env,
            capture_output=True,
            timeout=300,
            check=True,
        ).stdout
        assert len(read) > 50_000_000
        assert hashlib.sha256(read).hexdigest() == written, follow


@pytest.mark.parametrize(
    ("case", "script", "flags", "status", "state"),
    [
        ("completed", "true", [], 0, "COMPLETED"),
        ("own-code", "exit 3", [], 3, "FAILED"),
        ("no-code", "true", ["-o", "never-made.txt"], 1, "FAILED"),
        ("timeout", "exec sleep 300", ["--time", "1s"], 142, "TIMEOUT"),
    ],
)
def test_exit_status_of_run_submit_wait_and_wait(
    cli: Cli, tmp_path: Path, case: str, script: str, flags: list[str], status: int, state: str
) -> None:
    path = tmp_path / f"{case}.sh"
    path.write_text(script + "\n")
    ran = cli("run", *flags, str(path))
    waited = cli("submit", "--wait", *flags, str(path))
    assert (ran.returncode, waited.returncode) == (status, status), ran.stderr + waited.stderr
    job_id = submitted_id(waited)
    assert cli.job(job_id)["state"] == state
    assert cli("wait", job_id).returncode == status


def test_exit_status_of_a_cancelled_job(cli: Cli, tmp_path: Path) -> None:
    started = tmp_path / "started"
    os.mkfifo(started)
    job = tmp_path / "hold.sh"
    job.write_text(f"echo up > {started}\nexec sleep 300\n")
    label = f"case={new_id()}"
    waiting = [
        subprocess.Popen(
            [JOBGATE, *cmd, "-l", label, str(job)],
            env=cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cmd in (["run"], ["submit", "--wait"])
    ]
    # Each job says it is running through the FIFO: no polling. Both may write while one
    # read is open (it then sees both lines): count lines, not opens.
    reader = threading.Thread(target=_read_lines, args=(started, len(waiting)), daemon=True)
    reader.start()
    reader.join(120)
    assert not reader.is_alive(), "a job never started"
    res = cli("cancel", "--label", label, "--yes")
    # Embedded, the `run` process supervising the jobs stops them: "cancel requested".
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 2, res.stdout
    for p in waiting:
        p.communicate(timeout=120)
    assert [p.returncode for p in waiting] == [130, 130]
    ids = [j["id"] for j in json.loads(cli("ls", "--json", "-l", label).stdout)]
    assert [cli("wait", i).returncode for i in ids] == [130, 130]


def test_exec_gives_every_later_argument_to_the_program(cli: Cli) -> None:
    res = cli("run", "--exec", "/bin/echo", "-n", "hi")
    assert (res.returncode, res.stdout) == (0, "hi")
    res = cli("run", "-J", "named", "--exec", "/bin/echo", "-J", "--", "x")
    assert (res.returncode, res.stdout) == (0, "-J -- x\n")


def test_ls_footer_and_paging_over_2500_jobs(cli: Cli) -> None:
    label = f"page={new_id()}"
    first = cli("submit", "--wait", "--json", "-l", label, "--exec", "/bin/true")
    owner = json.loads(first.stdout)["owner"]
    fill_store(cli.database_url, owner, label, 2_499)

    res = cli("ls", "-l", label)
    assert res.returncode == 0, res.stderr
    rows, footer = res.stdout.splitlines()[1:-1], res.stdout.splitlines()[-1]
    assert len(rows) == 50
    assert footer.startswith("50 of 2,500 (next page: --cursor ") and footer.endswith("--all)")

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        extra = ["--cursor", cursor] if cursor else []
        page = cli("ls", "-l", label, "--limit", "1000", *extra).stdout.splitlines()
        pages += 1
        seen += [row.split()[0] for row in page[1:-1]]
        after = page[-1].partition("--cursor ")[2].partition(";")[0]
        if not after:
            assert page[-1].startswith("500 of 2,500")
            break
        cursor = after
    assert pages == 3 and len(seen) == len(set(seen)) == 2_500
    for everything in (["--all"], ["--limit", "0"]):
        listed = json.loads(cli("ls", "--json", "-l", label, *everything).stdout)
        assert sorted(j["id"] for j in listed) == sorted(seen)


def fill_store(url: str, owner: str, label: str, n: int) -> None:
    """`n` finished jobs written straight into the store (submitting 2,500 jobs through
    the CLI would take minutes and test nothing more)."""
    key, _, value = label.partition("=")
    spec = JobSpec(script="true", labels={key: value})
    now = datetime.now(UTC)
    store = Store(url)
    try:
        store.insert_jobs(
            [
                (
                    JobRecord(
                        id=new_id(),
                        name="filler",
                        owner=owner,
                        destination="local",
                        state=JobState.COMPLETED,
                        labels=spec.labels,
                        spec=spec,
                        created_at=now,
                    ),
                    "",
                )
                for _ in range(n)
            ]
        )
    finally:
        store.engine.dispose()


def _read_lines(fifo: Path, count: int) -> None:
    seen = 0
    while seen < count:  # each read lasts until no writer has the FIFO open
        seen += len(fifo.read_text().splitlines())
