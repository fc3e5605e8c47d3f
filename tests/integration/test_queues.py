"""Drop-box queues through a real `jobgate serve`: a job file put with `jobgate queue put`
runs with the role and cluster as its arguments and leaves `completed/<id>/logs` and
`status`; Alces' layout finds `share/process-job` (a key=value interpreter noting
started_at/completed_at) and `share/validate-job` (refusing files without `package=`);
bad job files end REJECTED with their reason, and nothing is run twice."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import JOBGATE, ServeProcess, need, serve_env, service_env, start_serve

HOOKS = Path(__file__).parents[1] / "data" / "queues"
WAIT = 60


@dataclass
class Queues:
    env: dict[str, str]
    fs: Any  # the queues' file system (fsspec): a folder, or the S3 server
    plain: str  # a queue of job files run as they are
    alces: str  # <bucket>/customizer/default/job-queue.d/mycluster, with share/ hooks
    norunner: str = ""  # a queue whose runner is missing

    def put(self, queue: str, *files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [JOBGATE, "queue", "put", queue, *map(str, files)],
            env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    def completed(self, root: str, n: int) -> dict[str, str]:
        """Until `n` jobs have their whole completed/<id>/ (status is written last): a
        bounded look, as a queue's user has no other signal."""
        deadline = time.monotonic() + WAIT
        while True:
            self.fs.invalidate_cache()
            done = {
                p.split("/")[-2]: p.rsplit("/", 1)[0]
                for p in self.fs.glob(f"{root}/completed/*/status")
            }
            if len(done) >= n:
                return done
            assert time.monotonic() < deadline, f"{len(done)} of {n} completed in {root}"
            time.sleep(0.1)

    def text(self, path: str) -> str:
        return bytes(self.fs.cat_file(path)).decode()


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, Any]:
    """(URL prefix, its TOML storage options, its fsspec file system) of a fresh place."""
    if request.param == "file":
        import fsspec

        return f"file://{tmp_path}/q", "{}", fsspec.filesystem("file")
    endpoint = service_env().get("JOBGATE_TEST_S3_ENDPOINT")
    need(bool(endpoint), "no S3 test server (run scripts/s3-up.sh as root)")
    import s3fs

    options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
    fs = s3fs.S3FileSystem(**options)
    bucket = f"jg-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    toml = f'{{ endpoint_url = "{endpoint}", key = "testing", secret = "testing" }}'
    return f"s3://{bucket}", toml, fs


@pytest.fixture
def queues(
    home: Path, database_url: str, tmp_path: Path, store_url: tuple[str, str, Any]
) -> Iterator[Queues]:
    base, options, fs = store_url
    plain = f"{base}/plain"
    alces = f"{base}/customizer/default/job-queue.d/mycluster"
    fs.makedirs(_path(f"{base}/customizer/default/share"), exist_ok=True)
    for hook in ("process-job", "validate-job"):
        fs.pipe_file(_path(f"{base}/customizer/default/share/{hook}"), (HOOKS / hook).read_bytes())
    # Beside the good queues, one that cannot be listed: a folder under a plain file, or
    # a bucket that does not exist (never made by the gateway).
    (tmp_path / "a-file").write_text("not a folder\n")
    broken = f"file://{tmp_path}/a-file/q" if base.startswith("file:") else "s3://no-such-bucket-jg"
    toml = (
        f'[queues.plain]\nurl = "{plain}"\nrole = "master"\ncluster = "c1"\n'
        f"poll_interval_s = 0.2\nmax_job_bytes = 1000\nstorage_options = {options}\n"
        f'[queues.alces]\nurl = "{alces}"\nrole = "slave"\npoll_interval_s = 0.2\n'
        f"storage_options = {options}\n"
        f'[queues.norunner]\nurl = "{base}/norunner"\nrunner = "{tmp_path}/no-runner"\n'
        f"poll_interval_s = 0.2\nstorage_options = {options}\n"
        f'[queues.broken]\nurl = "{broken}"\npoll_interval_s = 0.2\nstorage_options = {options}\n'
    )
    env = serve_env(home, database_url, tmp_path / "jobgate.toml", toml)
    proc: ServeProcess = start_serve(env, "--no-api")
    try:
        yield Queues(env, fs, _path(plain), _path(alces), _path(f"{base}/norunner"))
    finally:
        proc.stop()
    assert not proc.problems(), "".join(proc.log)
    said = [line for line in proc.log if "queue broken" in line]
    assert len(said) == 1 and ("no-such-bucket-jg" in said[0] or "a-file" in said[0]), said


def _path(url: str) -> str:
    return url.split("://", 1)[1]


def test_a_job_file_runs_with_role_and_cluster(queues: Queues, tmp_path: Path) -> None:
    job = tmp_path / "hello.sh"
    job.write_text('#!/bin/sh\necho "args: $1 $2"\necho oops >&2\nexit 3\n')
    res = queues.put("plain", job)
    assert res.returncode == 0 and res.stdout.strip() == "plain: hello.sh", res.stderr
    ((job_id, done),) = queues.completed(queues.plain, 1).items()
    assert queues.text(f"{done}/logs") == "args: master c1\noops\n"
    assert queues.text(f"{done}/status") == "3\n"
    assert queues.fs.cat_file(f"{done}/job") == job.read_bytes()
    assert queues.fs.glob(f"{queues.plain}/pending/*") == []  # moved out of pending/
    listed = json.loads(
        subprocess.run(
            [JOBGATE, "queue", "ls", "plain", "--json"],
            env=queues.env, capture_output=True, text=True, timeout=60, check=True,
        ).stdout
    )  # fmt: skip
    assert listed == [{"key": "hello.sh", "state": "completed", "job_id": job_id}]
    shown = json.loads(
        subprocess.run(
            [JOBGATE, "show", "--json", job_id],
            env=queues.env, capture_output=True, text=True, timeout=60, check=True,
        ).stdout
    )  # fmt: skip
    assert shown["labels"] == {"queue": "plain", "queue_key": "hello.sh"}
    assert (shown["state"], shown["exit_code"]) == ("FAILED", 3)


def test_alces_runner_and_validator_found_by_themselves(queues: Queues, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.job", tmp_path / "bad.job"
    good.write_text("message=hello\npackage=gromacs\n")
    bad.write_text("message=no package here\n")
    assert queues.put("alces", good, bad).returncode == 0
    done = queues.completed(queues.alces, 2)
    by_file = {queues.text(f"{d}/job"): d for d in done.values()}
    ok, refused = by_file[good.read_text()], by_file[bad.read_text()]
    said = "message: hello\nwould install gromacs on slave of mycluster\n"
    assert (queues.text(f"{ok}/logs"), queues.text(f"{ok}/status")) == (said, "0\n")
    outputs = {p.rsplit("/", 1)[1] for p in queues.fs.ls(f"{ok}/output")}
    assert outputs == {"started_at", "completed_at"}
    assert queues.text(f"{refused}/status").startswith("REJECTED: refused by the validator")
    assert "no package= line in job" in queues.text(f"{refused}/validation")
    assert queues.text(f"{refused}/logs") == ""


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "the job file is empty"),
        (b"#!/bin/sh\n" + b"#" * 1000, "the job file has 1,010 bytes, over max_job_bytes 1,000"),
        (b"\x00\x01\x02binary", "the job file is not executable: neither a script"),
    ],
    ids=["empty", "too-large", "not-executable"],
)
def test_bad_job_files_are_rejected_with_why(
    queues: Queues, tmp_path: Path, content: bytes, why: str
) -> None:
    job = tmp_path / "bad.sh"
    job.write_bytes(content)
    assert queues.put("plain", job).returncode == 0
    ((_, done),) = queues.completed(queues.plain, 1).items()
    assert queues.text(f"{done}/status").startswith(f"REJECTED: {why}")
    assert queues.text(f"{done}/job").encode() == content  # kept as received
    assert queues.text(f"{done}/logs") == ""  # never ran


def test_a_missing_runner_rejects_its_jobs_and_other_queues_keep_going(
    queues: Queues, tmp_path: Path
) -> None:
    job = tmp_path / "j.sh"
    job.write_text("#!/bin/sh\necho ran\n")
    assert queues.put("norunner", job).returncode == 0
    assert queues.put("plain", job).returncode == 0
    ((_, refused),) = queues.completed(queues.norunner, 1).items()
    status = queues.text(f"{refused}/status")
    assert (
        status
        == f"REJECTED: queue norunner: the hook {tmp_path}/no-runner is missing or not executable\n"
    )
    ((_, ran),) = queues.completed(queues.plain, 1).items()
    assert queues.text(f"{ran}/logs") == "ran\n"  # the broken queue beside it changed nothing


def test_each_file_runs_once_however_often_it_is_listed(queues: Queues, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    files = []
    for i in range(20):
        files.append(tmp_path / f"j{i}.sh")
        files[-1].write_text(f"#!/bin/sh\necho {i} >> {marks}/{i}\n")
    assert queues.put("plain", *files).returncode == 0
    queues.completed(queues.plain, 20)
    assert sorted(int(p.name) for p in marks.iterdir()) == list(range(20))
    assert all(p.read_text() == f"{p.name}\n" for p in marks.iterdir())  # once each


@pytest.mark.postgres
@pytest.mark.s3
def test_two_gateways_one_killed_each_job_once(tmp_path: Path, home: Path) -> None:
    """Two `jobgate serve` on one PostgreSQL share an S3 queue of 200 job files; one is
    killed (-9) half way: every job ran exactly once and every completed/<id>/ is whole."""
    from conftest import fresh_pg_database, pg_url

    endpoint = service_env().get("JOBGATE_TEST_S3_ENDPOINT")
    need(bool(endpoint), "no S3 test server (run scripts/s3-up.sh as root)")
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="testing", secret="testing")
    bucket = f"jg-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    marks = tmp_path / "marks"
    marks.mkdir()
    options = f'{{ endpoint_url = "{endpoint}", key = "testing", secret = "testing" }}'
    toml = (
        "[destinations.local]\ncapacity = 20\n"
        f'[queues.shared]\nurl = "s3://{bucket}/q"\npoll_interval_s = 0.2\n'
        f"claim_timeout_s = 2\nstorage_options = {options}\n"
    )
    env = serve_env(home, fresh_pg_database(pg_url()), tmp_path / "jobgate.toml", toml)
    first, second = start_serve(env, "--no-api"), start_serve(env, "--no-api")
    queues = Queues(env, fs, f"{bucket}/q", "")
    files = []
    for i in range(200):
        files.append(tmp_path / "jobs" / f"j{i:03}.sh")
        files[-1].parent.mkdir(exist_ok=True)
        files[-1].write_text(f"#!/bin/sh\necho run >> {marks}/{i}\nsleep 0.2\n")
    try:
        assert queues.put("shared", *files).returncode == 0
        queues.completed(queues.plain, 60)
        first.kill()  # SIGKILL: no goodbye, claims and jobs in flight
        first.wait()
        done = queues.completed(queues.plain, 200)
    finally:
        second.stop()
        if first.poll() is None:
            first.kill()
    assert sorted(int(p.name) for p in marks.iterdir()) == list(range(200))
    assert {p.read_text() for p in marks.iterdir()} == {"run\n"}  # each exactly once
    for path in done.values():
        names = {p.rsplit("/", 1)[1] for p in fs.ls(path)}
        assert {"logs", "status", "job"} <= names, (path, names)
        assert queues.text(f"{path}/status") == "0\n"
