"""A TES task's files. Inputs are fetched by the gateway at create time (blocking: in a
worker thread) and become the job's inputs beneath `root/`, so they reach any
destination the way uploads do: `content`, `file://` (a regular file or folder of the
user's area on the gateway's host: no link followed, no FIFO opened), `http(s)://`
(public hosts or `[tes] allowed_hosts`, as callbacks) and `s3://` (fsspec). Outputs are
written when the job ends, before its final state (the supervisor's `finishing`), from
the job's files as the service reads them (never through a link)."""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from collections.abc import Callable, Sequence
from typing import Any

from jobgate.api.tes.models import Input, Output, Task
from jobgate.api.tes.script import inside
from jobgate.config import TesSettings
from jobgate.errors import SpecError
from jobgate.service.paths import check_path

Keep = Callable[[bytes], str]


class Storage:
    """The URL schemes the configuration allows, and how to reach them."""

    def __init__(self, settings: TesSettings, check_host: Callable[[str], None]) -> None:
        self.settings = settings
        self._check_host = check_host  # SpecError for a host the gateway may not call

    def check_host(self, url: str, field: str) -> None:
        """SpecError naming `field` for a URL whose host the gateway may not call."""
        try:
            self._check_host(url)
        except SpecError as exc:
            raise SpecError(f"{field}.url", exc.message) from None

    def scheme(self, field: str, url: str) -> str:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in self.settings.storage:
            allowed = ", ".join(f"{s}://" for s in self.settings.storage)
            raise SpecError(field, f"{url!r}: this gateway takes {allowed}")
        return scheme

    def fs(self, scheme: str) -> Any:
        import fsspec  # only gateways that stage TES files pay for it

        options = self.settings.s3 if scheme == "s3" else {}
        return fsspec.filesystem(scheme, **options)


def stage_inputs(
    task: Task, storage: Storage, roots: Sequence[str], keep: Keep, limit: int
) -> list[dict[str, str]]:
    """The job's input files (kept bytes, target in the run directory)."""
    staged: list[dict[str, str]] = []
    total = 0
    for i, item in enumerate(task.inputs):
        field = f"inputs[{i}]"
        for target, data in _fetch(item, field, storage, roots):
            total += len(data)
            if total > limit:
                raise SpecError(field, f"the task's inputs pass {limit:,} bytes")
            staged.append({"source": keep(data), "target": target})
    return staged


def _fetch(
    item: Input, field: str, storage: Storage, roots: Sequence[str]
) -> list[tuple[str, bytes]]:
    if item.content is not None:
        return [(inside(item.path), item.content.encode())]
    if not item.url:
        raise SpecError(field, "give an input's url or its content")
    scheme = storage.scheme(f"{field}.url", item.url)
    if scheme == "file":
        path = item.url.split("://", 1)[1]
        check_path(f"{field}.url", path, roots)
        return _local(path, item, field)
    if scheme in ("http", "https"):
        storage.check_host(item.url, field)
        if item.type == "DIRECTORY":
            raise SpecError(field, "a DIRECTORY cannot come from http(s)://")
    fs = storage.fs(scheme)
    try:
        if item.type == "DIRECTORY":
            base = item.url.rstrip("/")
            found = fs.find(base)
            prefix = base.split("://", 1)[-1]
            return [
                (inside(f"{item.path}/{f[len(prefix) :].lstrip('/')}"), fs.cat_file(f))
                for f in found
            ]
        return [(inside(item.path), bytes(fs.cat_file(item.url)))]
    except Exception as exc:  # the storage library's own errors (botocore's are not OSError)
        raise SpecError(f"{field}.url", f"{item.url!r} cannot be read: {exc!r}") from None


def _local(path: str, item: Input, field: str) -> list[tuple[str, bytes]]:
    """A file (or a folder's files) of the gateway's host: no link followed anywhere,
    no FIFO or device opened."""
    files: list[tuple[str, bytes]] = []
    if item.type == "FILE":
        return [(inside(item.path), _read(path, f"{field}.url"))]
    for folder, dirs, names in os.walk(path, followlinks=False):
        rel = posixpath.relpath(folder, path)
        for name in names:
            source = posixpath.join(folder, name)
            target = posixpath.normpath(posixpath.join(item.path, rel, name))
            files.append((inside(target), _read(source, f"{field}.url")))
        dirs[:] = [d for d in dirs if not os.path.islink(posixpath.join(folder, d))]
    return files


def _read(path: str, field: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SpecError(field, f"{path!r} cannot be read: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SpecError(field, f"{path!r} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def output_matches(output: Output, files: Sequence[str]) -> list[tuple[str, str]]:
    """(run-directory file, its URL) for each file an output names: one file, a folder's
    files, or (1.1) a wildcard path, with `path_prefix` removed from each match."""
    base = inside(output.path)
    url = output.url.rstrip("/")
    if any(c in output.path for c in "*?["):
        prefix = inside(output.path_prefix or "/").rstrip("/")
        hits = [f for f in files if fnmatch.fnmatchcase(f, base)]
        return [(f, f"{url}/{f[len(prefix) :].lstrip('/')}") for f in hits]
    if output.type == "DIRECTORY":
        return [(f, f"{url}/{f[len(base) + 1 :]}") for f in files if f.startswith(base + "/")]
    return [(base, output.url)] if base in files else []
