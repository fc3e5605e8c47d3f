"""SFTP file work for the SSH transport: directories, clean-up of half-written files, and
walks that never follow a symbolic link."""

from __future__ import annotations

import asyncio
import errno
import posixpath
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from jobgate.transports.asyncssh_quiet import asyncssh


async def mkdirs(sftp: asyncssh.SFTPClient, path: str) -> None:
    """mkdir -p, trying the common case first (only the last component is missing: one
    round trip) before asyncssh's makedirs (two per existing component)."""
    try:
        await sftp.mkdir(path)
    except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
        await sftp.makedirs(path, exist_ok=True)


@asynccontextmanager
async def removed_on_error(sftp: asyncssh.SFTPClient, path: str) -> AsyncIterator[None]:
    """No half-written temporary file is left behind when an upload fails."""
    try:
        yield
    except BaseException:
        # Best effort, briefly: the connection may be the very thing that failed.
        with suppress(asyncssh.Error, OSError, TimeoutError):
            async with asyncio.timeout(5):
                await sftp.remove(path)
        raise


async def resolved_file(sftp: asyncssh.SFTPClient, root: str, rel: str) -> str:
    """root/rel with every link resolved, if that is a regular file inside root; else
    FileNotFoundError (missing) or OSError (elsewhere, or not a regular file)."""
    base = await sftp.realpath(root)
    full = await sftp.realpath(posixpath.join(root, rel))
    if not full.startswith(base.rstrip("/") + "/"):
        raise OSError(errno.EACCES, f"{rel} leads out of {root}", rel)
    attrs = await sftp.stat(full)  # realpath of a missing file is SFTPNoSuchFile above
    if attrs.type != asyncssh.FILEXFER_TYPE_REGULAR:
        raise OSError(errno.EINVAL, f"not a regular file: {rel}", rel)
    return str(full)


class Reader:
    """An open SFTP file; each read within the transport's deadline and error mapping."""

    def __init__(self, handle: asyncssh.SFTPClientFile, op: Callable[..., Any]) -> None:
        self._handle, self._op = handle, op

    async def read(self, offset: int, size: int) -> bytes:
        async with self._op("reading", 120.0):
            data: bytes = await self._handle.read(size, offset)
        return data

    async def close(self) -> None:
        with suppress(asyncssh.Error, OSError):
            await self._handle.close()


async def walk(sftp: asyncssh.SFTPClient, path: str, limit: int) -> list[str]:
    """Regular files under `path`, relative to it, sorted, at most `limit`."""
    found: list[str] = []
    folders = [""]
    while folders and len(found) < limit:
        folder = folders.pop()
        # readdir's attributes are lstat's: a symbolic link is neither file nor folder
        async for entry in sftp.scandir(posixpath.join(path, folder) if folder else path):
            filename = str(entry.filename)  # str for a str path
            name = posixpath.join(folder, filename) if folder else filename
            if entry.attrs.type == asyncssh.FILEXFER_TYPE_REGULAR:
                found.append(name)
            elif entry.attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY and filename not in (
                ".",
                "..",
            ):
                folders.append(name)
    return sorted(found)[:limit]
