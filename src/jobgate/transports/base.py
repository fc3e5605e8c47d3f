"""The transport interface: run a command, write a file, read a file.

"Slurm over SSH" is a Slurm scheduler on an SSH transport: composition, not a backend.
Implementations translate their driver's errors into TransientError (could not reach
the host: retry) or FatalError (the host answered no).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from jobgate.views import FileReader

MAX_LISTED = 10_000  # files a listing returns: a run directory is not a file system


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


class Transport(ABC):
    @abstractmethod
    async def run(
        self,
        argv: list[str],
        *,
        input: str | None = None,
        timeout: float = 60.0,
        cwd: str | None = None,
    ) -> CommandResult:
        """Run a command to completion; a timeout or a lost connection is TransientError."""

    @abstractmethod
    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Create or replace a file, making parent directories as needed."""

    @abstractmethod
    async def read_file(self, path: str, offset: int = 0, limit: int = -1) -> bytes:
        """Bytes of a file from `offset`; FileNotFoundError if it does not exist."""

    @abstractmethod
    async def put(self, local_path: str, remote_path: str) -> None:
        """Copy a file from the gateway's host to the transport's host."""

    @abstractmethod
    async def get(self, remote_path: str, local_path: str) -> None:
        """Copy a file from the transport's host to the gateway's host."""

    @abstractmethod
    async def exists(self, path: str) -> bool: ...

    @abstractmethod
    async def make_dirs(self, path: str) -> None:
        """mkdir -p."""

    @abstractmethod
    async def open_beneath(self, root: str, rel: str) -> FileReader:
        """The regular file root/rel, opened without following a link below root, without
        blocking (a FIFO is refused, never waited on): OSError (FileNotFoundError if
        missing) or ValueError for a path that leaves root."""

    async def read_beneath(self, root: str, rel: str, offset: int = 0, limit: int = -1) -> bytes:
        """Bytes of root/rel from `offset`, opened as `open_beneath` does."""
        reader = await self.open_beneath(root, rel)
        try:
            return await reader.read(offset, limit)
        finally:
            await reader.close()

    async def is_file_beneath(self, root: str, rel: str) -> bool:
        try:
            await (await self.open_beneath(root, rel)).close()
        except (OSError, ValueError):
            return False
        return True

    @abstractmethod
    async def copy_beneath(self, root: str, rel: str, local_root: str, local_rel: str) -> None:
        """Copy the job's regular file root/rel (opened as `open_beneath` does) to
        local_root/local_rel on the gateway's host, never writing through a link."""

    @abstractmethod
    async def list_files(self, path: str) -> list[str]:
        """Regular files under the directory `path`, relative to it, sorted (at most
        MAX_LISTED); symbolic links are neither followed nor listed."""

    async def close(self) -> None:
        """Release connections."""
