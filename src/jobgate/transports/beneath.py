"""Files opened beneath a directory, as the gateway must open anything a job could have
touched: each component below the directory is opened without following a symbolic link
(a dirfd walk with O_NOFOLLOW), the file itself non-blocking and only if it is a regular
file, and what is read comes from the very descriptor that was checked - no name is
looked up twice, so no swap of a name for a link can win a race. Synchronous: callers run
these in worker threads, never on the event loop.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import PurePosixPath

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
COPY_CHUNK = 1024 * 1024


def parts_of(rel: str) -> tuple[str, ...]:
    """The components of a relative path that stays below its root (else ValueError)."""
    path = PurePosixPath(rel)
    if not rel or "\0" in rel or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{rel!r} is not a relative path below its directory")
    parts = tuple(p for p in path.parts if p != ".")
    if not parts:
        raise ValueError(f"{rel!r} names the directory itself")
    return parts


@contextmanager
def _folder(root: str, parts: tuple[str, ...], create: bool = False) -> Iterator[int]:
    """A descriptor of root/parts (root itself is trusted: the gateway chose it)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            child = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_beneath(root: str, rel: str) -> int:
    """A read-only descriptor of the regular file root/rel; OSError if any component is a
    link (ELOOP, ENOTDIR) or the file is not regular (a FIFO, a device, a directory)."""
    parts = parts_of(rel)
    with _folder(root, parts[:-1]) as folder:
        fd = os.open(parts[-1], _FILE, dir_fd=folder)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file: {rel}", rel)
        os.set_blocking(fd, True)  # a regular file: reads never block on a writer
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_beneath(root: str, rel: str, offset: int = 0, limit: int = -1) -> bytes:
    fd = open_beneath(root, rel)
    try:
        return read_fd(fd, offset, limit)
    finally:
        os.close(fd)


def read_fd(fd: int, offset: int, limit: int) -> bytes:
    if limit < 0:
        limit = max(0, os.fstat(fd).st_size - offset)
    chunks, got = [], 0
    while got < limit:
        data = os.pread(fd, min(COPY_CHUNK, limit - got), offset + got)
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def copy_beneath(src_root: str, src_rel: str, dst_root: str, dst_rel: str) -> None:
    """Copy a regular file from below one directory to below another: the source opened
    as `open_beneath` does, the target as `write_beneath` writes it."""
    source = open_beneath(src_root, src_rel)
    try:

        def chunks() -> Iterator[bytes]:
            offset = 0
            while data := os.pread(source, COPY_CHUNK, offset):
                offset += len(data)
                yield data

        write_beneath(dst_root, dst_rel, chunks())
    finally:
        os.close(source)


def write_beneath(root: str, rel: str, data: bytes | Iterable[bytes]) -> None:
    """Create root/rel anew (never through a link a job may have put in its place), its
    directories made without following links either; atomic (a temporary name, then a
    rename)."""
    parts = parts_of(rel)
    with _folder(root, parts[:-1], create=True) as folder:
        tmp = f".{parts[-1]}.jobgate-tmp"
        with _unlinked(tmp, folder):
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            target = os.open(tmp, flags, 0o644, dir_fd=folder)
            try:
                for chunk in [data] if isinstance(data, bytes) else data:
                    os.write(target, chunk)
            finally:
                os.close(target)
            os.rename(tmp, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)


@contextmanager
def _unlinked(name: str, folder: int) -> Iterator[None]:
    """`name` in `folder` does not exist before the block, nor after it failed."""
    with suppress(FileNotFoundError):
        os.unlink(name, dir_fd=folder)
    try:
        yield
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder)
        raise


def is_file_beneath(root: str, rel: str) -> bool:
    try:
        os.close(open_beneath(root, rel))
    except (OSError, ValueError):
        return False
    return True
