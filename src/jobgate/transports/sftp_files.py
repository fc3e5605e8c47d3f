"""SFTP file work for the SSH transport: directories, clean-up of half-written files, and
walks that never follow a symbolic link."""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import asyncssh


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


async def is_file_inside(sftp: asyncssh.SFTPClient, root: str, rel: str) -> bool:
    """Is root/rel a regular file, every link on the way resolved, inside root?"""
    try:
        base = await sftp.realpath(root)
        full = await sftp.realpath(posixpath.join(root, rel))
        return full.startswith(base.rstrip("/") + "/") and bool(await sftp.isfile(full))
    except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
        return False


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
