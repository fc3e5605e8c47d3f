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
            return b""

    async def list(self, job: JobRecord) -> list[str]:
        """The files of the job's run directory (relative paths), where /logs reads too."""
        if job.run_dir is None:
            return []
        return await self._backends.get(job.destination).list_files(job)

    async def check(self, job: JobRecord, path: str) -> str:
        """`path` as a file of the job's run directory (relative), if it is a regular file
        that stays inside it; else NotFoundError."""
        rel = PurePosixPath(path)
        ok = job.run_dir is not None and path and not rel.is_absolute() and "\0" not in path
        backend = self._backends.get(job.destination)
        if not ok or ".." in rel.parts or not await backend.is_file_inside(job, str(rel)):
            raise NotFoundError(f"no file {path!r} in job {job.id}")
        return str(rel)

    async def read(self, job: JobRecord, rel: str, offset: int = 0, limit: int = -1) -> bytes:
        """Bytes of a file of the job's run directory that `check` accepted."""
        try:
            return await self._backends.get(job.destination).read(job, rel, offset, limit)
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"no file {rel!r} in job {job.id}") from None

    async def store_upload(self, data: bytes) -> str:
        """Keep an uploaded input file on the gateway's host; its path, named by content
        (a retry with the same Idempotency-Key and files is then the same spec)."""
        folder = self._config.home / "uploads"
        path = folder / hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(_write_once, path, data)
        return str(path)


def _write_once(path: Path, data: bytes) -> None:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
