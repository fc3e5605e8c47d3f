"""Housekeeping: uploaded input files (`<home>/uploads/`, kept by content) that no
unfinished job refers to are removed once older than `limits.upload_max_age_h`."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from jobgate.config import Config
from jobgate.errors import JobgateError
from jobgate.store import AsyncStore

log = logging.getLogger(__name__)

SWEEP_S = 3600.0  # how often a supervisor looks


async def sweep(config: Config, db: AsyncStore) -> None:
    """sweep_uploads, logged; a failure waits for the next sweep."""
    try:
        gone = await sweep_uploads(config, db)
    except (OSError, JobgateError) as exc:
        log.warning("sweeping uploads failed: %s", exc)
        return
    if gone:
        log.info("removed %d uploaded input files no unfinished job needs", gone)


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
