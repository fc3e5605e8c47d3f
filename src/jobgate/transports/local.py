"""Commands and files on the gateway's own host. File operations run in worker threads:
a slow or stuck file system (NFS) holds up one call, never the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import stat
from pathlib import Path

from jobgate.errors import CommandNotFound, TransientError
from jobgate.transports import beneath
from jobgate.transports.base import MAX_LISTED, CommandResult, Transport
from jobgate.views import FileReader

_HOST = socket.gethostname()


class LocalTransport(Transport):
    async def run(
        self,
        argv: list[str],
        *,
        input: str | None = None,
        timeout: float = 60.0,
        cwd: str | None = None,
    ) -> CommandResult:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            if cwd is not None and not os.path.isdir(cwd):
                raise FileNotFoundError(cwd) from None
            # Not installed here: retrying would fail the same way, for ever.
            raise CommandNotFound(f"{argv[0]}: command not found on {_HOST}") from None
        try:
            # Not wait_for: on 3.11 it can swallow the cancel that close() sends, when the
            # command ends at that moment (the poller then never stopped: seen at 100,000
            # jobs, where rounds of 500 run back to back).
            async with asyncio.timeout(timeout):
                out, err = await proc.communicate(input.encode() if input is not None else None)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise TransientError(f"{argv[0]} did not answer within {timeout:.0f} s") from None
        except asyncio.CancelledError:  # the gateway is stopping: no child outlives its loop
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            raise
        return CommandResult(
            proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
        )

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        await asyncio.to_thread(write_file, path, data, mode)

    async def read_file(self, path: str, offset: int = 0, limit: int = -1) -> bytes:
        return await asyncio.to_thread(_read, path, offset, limit)

    async def put(self, local_path: str, remote_path: str) -> None:
        await asyncio.to_thread(copy_file, local_path, remote_path)

    async def get(self, remote_path: str, local_path: str) -> None:
        await asyncio.to_thread(copy_file, remote_path, local_path)

    async def exists(self, path: str) -> bool:
        return await asyncio.to_thread(os.path.exists, path)

    async def make_dirs(self, path: str) -> None:
        await asyncio.to_thread(os.makedirs, path, exist_ok=True)

    async def open_beneath(self, root: str, rel: str) -> FileReader:
        return _Reader(await asyncio.to_thread(beneath.open_beneath, root, rel))

    async def read_beneath(self, root: str, rel: str, offset: int = 0, limit: int = -1) -> bytes:
        return await asyncio.to_thread(beneath.read_beneath, root, rel, offset, limit)

    async def copy_beneath(self, root: str, rel: str, local_root: str, local_rel: str) -> None:
        await asyncio.to_thread(beneath.copy_beneath, root, rel, local_root, local_rel)

    async def list_files(self, path: str) -> list[str]:
        return await asyncio.to_thread(list_files, path)


class _Reader:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def read(self, offset: int, size: int) -> bytes:
        return await asyncio.to_thread(beneath.read_fd, self._fd, offset, size)

    async def close(self) -> None:
        os.close(self._fd)


def write_file(path: str, data: bytes, mode: int = 0o644) -> None:
    """Create or replace a file atomically (a temporary name, then a rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    tmp.replace(p)


def copy_file(source: str, target: str) -> None:
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _read(path: str, offset: int, limit: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(limit)


def list_files(root: str) -> list[str]:
    if not os.path.isdir(root):
        raise FileNotFoundError(root)
    found: list[str] = []
    for top, dirs, names in os.walk(root):  # followlinks=False: a link to a dir is a name
        for name in names:
            full = os.path.join(top, name)
            try:
                if stat.S_ISREG(os.lstat(full).st_mode):
                    found.append(os.path.relpath(full, root))
            except OSError:
                continue
        if len(found) >= MAX_LISTED:
            break
        dirs.sort()
    return sorted(found)[:MAX_LISTED]
