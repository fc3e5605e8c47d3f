"""Housekeeping: uploaded input files (`<home>/uploads/`, kept by content) that no
unfinished job refers to are removed once older than `limits.upload_max_age_h`; with
`limits.keep_finished_days`, finished jobs older than that are deleted from the store,
and their run directories on this host with them (never through a link)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path

from jobgate.config import Config
from jobgate.errors import JobgateError
from jobgate.store import AsyncStore
from jobgate.store.retention import delete_finished

log = logging.getLogger(__name__)

SWEEP_S = 3600.0  # how often a supervisor looks


async def sweep(config: Config, db: AsyncStore) -> None:
    """sweep_uploads and sweep_finished, logged; a failure waits for the next sweep."""
    try:
        gone = await sweep_uploads(config, db)
        old = await sweep_finished(config, db)
    except (OSError, JobgateError) as exc:
        log.warning("sweeping failed: %s", exc)
        return
    if gone:
        log.info("removed %d uploaded input files no unfinished job needs", gone)
    if old:
        log.info("deleted %d jobs finished over %s days ago", old, config.limits.keep_finished_days)


async def sweep_finished(config: Config, db: AsyncStore, batch: int = 1000) -> int:
    """Delete the finished jobs past the retention age, and their local run directories."""
    days = config.limits.keep_finished_days
    if days is None:
        return 0
    before, total = time.time() - days * 86400, 0
    runs = (config.home / "runs").resolve()
    while True:
        gone = await db.write(delete_finished, db.sync, before, batch)
        here = [job_id for job_id, _, d in gone if d and Path(d).parent.resolve() == runs]
        await asyncio.to_thread(_remove_trees, runs, here)
        total += len(gone)
        if len(gone) < batch:
            return total


def _remove_trees(runs: Path, job_ids: list[str]) -> None:
    """Each job's run directory, and its earlier attempts' (`<id>~2`, ...)."""
    paths = [p for job_id in job_ids for p in (runs / job_id, *runs.glob(f"{job_id}~*"))]
    for path in paths:
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
