"""Housekeeping: uploaded input files (`<home>/uploads/`, kept by content) that no
unfinished job refers to are removed once older than `limits.upload_max_age_h`; with
`limits.keep_finished_days`, finished jobs older than that are deleted from the store,
and their folders with them: on this host, and their run directories on a destination's
SSH host (never through a link)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path

from jobgate.config import Config
from jobgate.engine.backends import Backends
from jobgate.errors import JobgateError
from jobgate.ids import is_id
from jobgate.store import AsyncStore
from jobgate.store.retention import delete_finished

log = logging.getLogger(__name__)

SWEEP_S = 3600.0  # how often a supervisor looks


async def sweep(config: Config, db: AsyncStore, backends: Backends) -> None:
    """sweep_uploads and sweep_finished, logged; a failure waits for the next sweep."""
    try:
        gone = await sweep_uploads(config, db)
        old = await sweep_finished(config, db, backends)
    except (OSError, JobgateError) as exc:
        log.warning("sweeping failed: %s", exc)
        return
    if gone:
        log.info("removed %d uploaded input files no unfinished job needs", gone)
    if old:
        log.info("deleted %d jobs finished over %s days ago", old, config.limits.keep_finished_days)


async def sweep_finished(
    config: Config, db: AsyncStore, backends: Backends | None = None, batch: int = 1000
) -> int:
    """Delete the finished jobs past the retention age, their folders on this host, and
    (with `backends`) their run directories on SSH hosts."""
    days = config.limits.keep_finished_days
    if days is None:
        return 0
    before, total = time.time() - days * 86400, 0
    runs = (config.home / "runs").resolve()
    while True:
        gone = await db.write(delete_finished, db.sync, before, batch)
        names = [name for job_id, _, run_dir in gone for name in attempt_names(job_id, run_dir)]
        await asyncio.to_thread(_remove_trees, runs, names)
        if backends is not None:
            await _remove_remote(config, backends, gone)
        total += len(gone)
        if len(gone) < batch:
            return total


async def _remove_remote(
    config: Config, backends: Backends, gone: list[tuple[str, str, str | None]]
) -> None:
    """Run directories on the SSH hosts of destinations still configured. A host that
    cannot be reached keeps them: logged, with the destination, for its administrator."""
    by_dest: dict[str, list[str]] = {}
    for job_id, dest, run_dir in gone:
        known = config.destinations.get(dest)
        if known is not None and known.transport == "ssh" and run_dir:
            by_dest.setdefault(dest, []).extend(attempt_names(job_id, run_dir))
    for dest, names in by_dest.items():
        try:
            await backends.get(dest).remove_run_dirs(names)
        except (OSError, JobgateError) as exc:
            log.warning("%d run directories of deleted jobs stay on %s: %s", len(names), dest, exc)


def attempt_names(job_id: str, run_dir: str | None) -> list[str]:
    """The names of a job's run directories in its base: `<id>`, then `<id>~2` up to its
    last attempt's (attempts.py); none for an id that is not one of ours (a name in a
    path, or in a shell: never anything else)."""
    if not is_id(job_id):
        return []
    _, sep, last = (run_dir or "").rpartition(f"{job_id}~")
    attempts = int(last) if sep and last.isdigit() and len(last) < 4 else 1
    return [job_id, *(f"{job_id}~{n}" for n in range(2, attempts + 1))]


def _remove_trees(runs: Path, names: list[str]) -> None:
    """These folders of jobs here (attempt_names: no glob over a folder of many jobs)."""
    for path in (runs / name for name in names):
        if path.is_symlink() or path.is_file():  # a link is not followed: it goes itself
            path.unlink(missing_ok=True)
        else:  # rmtree never follows a link inside (fd-based on Linux)
            shutil.rmtree(path, ignore_errors=True)


async def sweep_uploads(config: Config, db: AsyncStore) -> int:
    """Remove the uploads nothing waits for; returns how many went."""
    folder = config.home / "uploads"
    max_age = config.limits.upload_max_age_h * 3600
    old = await asyncio.to_thread(_older_than, folder, time.time() - max_age)
    if not old:
        return 0
    wanted = await db.read(db.sync.input_sources)  # of jobs not final yet
    doomed = [p for p in old if str(p) not in wanted]
    return await asyncio.to_thread(_remove, doomed)


def _older_than(folder: Path, cutoff: float) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    return [
        Path(e.path)
        for e in entries
        if e.is_file(follow_symlinks=False) and e.stat(follow_symlinks=False).st_mtime < cutoff
    ]


def _remove(paths: list[Path]) -> int:
    gone = 0
    for path in paths:
        try:
            path.unlink()
            gone += 1
        except FileNotFoundError:
            pass  # another gateway on this home took it
    return gone
