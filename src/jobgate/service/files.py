"""A job's files, for the doors: its logs and the files of its run directory, read where
the job's destination keeps them (over SSH for a remote one), and uploaded inputs."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path, PurePosixPath

from jobgate.config import Config
from jobgate.engine.backends import Backends
from jobgate.errors import NotFoundError, SpecError
from jobgate.spec import JobRecord
from jobgate.views import FileReader

LOG_STREAMS = ("stdout", "stderr")


class FileService:
    def __init__(self, config: Config, backends: Backends) -> None:
        self._config = config
        self._backends = backends

    async def read_log(
        self, job: JobRecord, stream: str, offset: int = 0, limit: int = -1
    ) -> bytes:
        if stream not in LOG_STREAMS:
            raise SpecError("stream", f"must be one of {', '.join(LOG_STREAMS)}")
        backend = self._backends.get(job.destination)
        if job.run_dir is None and backend.run_dir_of(job.id) is None:
            return b""  # not admitted yet: its run directory is still to be named
        path = getattr(backend.files(job), stream)
        try:
            return await backend.read(job, path, offset, limit)
        except FileNotFoundError:
            return b""  # not written yet
        except (OSError, ValueError) as exc:  # a link, a FIFO, a device: never followed
            raise NotFoundError(f"job {job.id}: its {stream} is not a regular file") from exc

    async def list(self, job: JobRecord) -> list[str]:
        """The files of the job's run directory (relative paths), where /logs reads too."""
        if job.run_dir is None:
            return []
        return await self._backends.get(job.destination).list_files(job)

    async def open(self, job: JobRecord, path: str) -> FileReader:
        """A regular file of the job's run directory, open for reading: no link followed
        at any component, no FIFO or device; NotFoundError for anything else."""
        rel = PurePosixPath(path)
        if job.run_dir is None or not path or rel.is_absolute() or ".." in rel.parts:
            raise NotFoundError(f"no file {path!r} in job {job.id}")
        try:
            return await self._backends.get(job.destination).open_file(job, str(rel))
        except (OSError, ValueError):  # missing, a link, not a regular file, a bad name
            raise NotFoundError(f"no file {path!r} in job {job.id}") from None

    @property
    def max_download_bytes(self) -> int:
        return self._config.limits.max_download_mb << 20

    @property
    def max_stream_bytes(self) -> int:
        return self._config.limits.max_stream_mb << 20

    async def store_upload(self, data: bytes) -> str:
        """Keep an uploaded input file on the gateway's host; its path, named by content
        (a retry with the same Idempotency-Key and files is then the same spec)."""
        return await asyncio.to_thread(self.keep, data)

    def keep(self, data: bytes) -> str:
        """store_upload, blocking: for a job type's built files (already off the loop)."""
        path = self._config.home / "uploads" / hashlib.sha256(data).hexdigest()
        _write_once(path, data)
        return str(path)


def _write_once(path: Path, data: bytes) -> None:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
