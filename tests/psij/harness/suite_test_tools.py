"""`_test_tools.py` for PSI/J's suite: the helpers its tests import."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from executor_test_params import ExecutorTestParams
from psij import Job, JobExecutor, JobState, JobStatus

# Executors whose jobs start at once get a bounded wait; a batch queue may hold a job for
# long, so those tests wait without a limit (the per-test timeout still applies).
_QUICK_EXECUTORS = {"local", "batch-test"}


def _test_dir() -> Path:
    return Path.home() / ".psij" / "test"


def _make_test_dir() -> None:
    _test_dir().mkdir(parents=True, exist_ok=True)


def _get_timeout(execparams: ExecutorTestParams) -> timedelta | None:
    return timedelta(minutes=10) if execparams.executor in _QUICK_EXECUTORS else None


def _read(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return Path(path).read_text()
    except OSError as exc:
        return f"<{exc}>"


def assert_completed(job: Job, status: JobStatus | None, attached: bool = False) -> None:
    assert status is not None, "the wait timed out"
    if status.state != JobState.COMPLETED:
        detail = f"exit code: {status.exit_code}, message: {status.message}"
        if not attached and job.spec is not None:  # an attached job has no spec to read
            detail += (
                f", stdout: {_read(job.spec.stdout_path)}, stderr: {_read(job.spec.stderr_path)}"
            )
        raise AssertionError(f"job not completed ({status.state}): {detail}")


def _get_executor_instance(ep: ExecutorTestParams, job: Job | None = None) -> JobExecutor:
    if job is not None:
        assert job.spec is not None
        job.spec.launcher = ep.launcher
    return JobExecutor.get_instance(ep.executor, url=ep.url)


@contextmanager
def _deploy(path: Path | str) -> Iterator[Path]:
    """A copy of `path` under ~/.psij/test (where a cluster's nodes can read it)."""
    _make_test_dir()
    fd, name = tempfile.mkstemp(dir=_test_dir())
    os.close(fd)
    try:
        shutil.copyfile(path, name)
        yield Path(name)
    finally:
        os.unlink(name)
