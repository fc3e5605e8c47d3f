"""Pure helpers for the pages: durations as squeue writes them, sizes, times, and the
series the charts draw."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from jobgate.spec import JobRecord

_FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "REJECTED", "LOST"}
_WAITING = {"NEW", "QUEUED", "STAGING_IN", "SUBMITTED"}


def duration(seconds: float | None) -> str:
    """squeue's TIME: M:SS, H:MM:SS, or D-HH:MM:SS; '' for none."""
    if seconds is None:
        return ""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def elapsed(job: JobRecord, now: datetime) -> str:
    """How long the job has run (so far, or in all): '' before it started."""
    if job.started_at is None:
        return ""
    end = job.finished_at or now
    return duration((end - job.started_at).total_seconds())


def memory(mb: int | None) -> str:
    if mb is None:
        return ""
    if mb >= 1024 and mb % 1024 == 0:
        return f"{mb // 1024}G"
    return f"{mb}M"


def when(value: datetime | None) -> str:
    """A time in UTC, to the second ('' for none)."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def series(rows: Iterable[tuple[str, float, Any, Any]], now: float, minutes: int) -> dict[str, Any]:
    """Per minute of the last `minutes` (uPlot's columns: x in epoch seconds): jobs
    submitted and finished in that minute, and at its end how many were waiting, running
    and done, from each job's state and times (difference arrays: one pass over jobs)."""
    start = (int(now) // 60 - minutes + 1) * 60
    submitted, finished = [0] * minutes, [0] * minutes
    steps = {k: [0] * (minutes + 1) for k in ("waiting", "running", "done")}
    for state, created, started, end_at in rows:
        ended = end_at
        if state in _FINAL and ended is None:
            ended = started or created  # final without an end time: ended when last seen
        ci = _minute(created, start, minutes)
        si = _minute(started, start, minutes)
        ei = _minute(ended, start, minutes)
        if created >= start:
            _count(submitted, ci)
        if ended is not None and ended >= start:
            _count(finished, ei)
        si, ei = max(si, ci), max(ei, ci)
        si = min(si, ei)
        for key, lo, hi in (("waiting", ci, si), ("running", si, ei), ("done", ei, minutes)):
            steps[key][lo] += 1
            steps[key][hi] -= 1
    out: dict[str, Any] = {"x": [start + 60 * i for i in range(minutes)]}
    out |= {"submitted": submitted, "finished": finished}
    for key, diff in steps.items():
        total, column = 0, []
        for d in diff[:minutes]:
            total += d
            column.append(total)
        out[key] = column
    return out


def _minute(at: float | None, start: int, minutes: int) -> int:
    """The first minute at whose end `at` is past (0 for earlier, `minutes` for never)."""
    if at is None:
        return minutes
    return min(max(int(at - start) // 60, 0), minutes)


def _count(column: list[int], i: int) -> None:
    if i < len(column):
        column[i] += 1


def when_s(epoch: float) -> str:
    """An epoch time as `when` writes it."""
    return when(datetime.fromtimestamp(epoch, UTC))
