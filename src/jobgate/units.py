"""Times and sizes as people type them ("1:30:00", "90m", "1h30m", "32G"), with their
unit in the name once parsed (seconds, megabytes), and the bounds no job may pass."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_UNITS_MB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
# Bounds on what a job may ask for: far past any real machine, well within every
# integer column and scheduler option (1e400 or a 400-digit number is bad input).
MAX_WALLTIME_S = 10 * 366 * 86400
MAX_MEMORY_MB = 1 << 40
MAX_COUNT = 10_000_000


def parse_walltime(value: str | int | float) -> int:
    """Seconds from Slurm-style text: "90" (minutes), "MM:SS", "H:MM:SS", "D-HH[:MM[:SS]]",
    or with units: "90s", "30m", "2h", "1d", "1h30m", "1d2h". Numbers given as int are
    seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > MAX_WALLTIME_S:
            raise ValueError(f"must be at most {MAX_WALLTIME_S} seconds")
        seconds = int(value)
    else:
        text = value.strip().lower()
        if len(text) > 40:  # no duration needs more; int() of thousands of digits is slow
            raise ValueError(f"cannot parse {value[:40]!r}... as a duration")
        units = re.fullmatch(r"(?:(\d+(?:\.\d+)?)\s*[smhd]\s*)+", text)
        if units:  # "90s", "30m", "1h30m", "1d2h"
            factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}
            parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text)
            seconds = int(sum(float(n) * factor[u] for n, u in parts))
        else:
            seconds = _parse_clock(text)
    if seconds <= 0:
        raise ValueError("must be positive")
    if seconds > MAX_WALLTIME_S:
        raise ValueError(f"must be at most {MAX_WALLTIME_S // 86400} days")
    return seconds


def _parse_clock(text: str) -> int:
    days = 0
    if "-" in text:
        day_part, text = text.split("-", 1)
        if not day_part.isdigit():
            raise ValueError(f"cannot parse {text!r} as a duration")
        days = int(day_part)
    parts = text.split(":")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(
            f"cannot parse {text!r} as a duration (try '90', '1:30:00', '2-00:00:00' or '1h30m')"
        )
    nums = [int(p) for p in parts]
    if days:  # D-HH, D-HH:MM, D-HH:MM:SS
        nums += [0] * (3 - len(nums))
        h, m, s = nums
    elif len(nums) == 1:  # minutes, as sbatch reads it
        h, m, s = 0, nums[0], 0
    elif len(nums) == 2:  # MM:SS
        h, m, s = 0, nums[0], nums[1]
    else:
        h, m, s = nums
    return days * 86400 + h * 3600 + m * 60 + s


def parse_memory(value: str | int | float) -> int:
    """Megabytes from "512M", "32G", "1.5T", "100mb"; a bare number is megabytes."""
    if isinstance(value, bool):
        raise ValueError("must be a size, not a boolean")
    if isinstance(value, int | float):
        mb = float(value)
    else:
        if len(value) > 40:
            raise ValueError(f"cannot parse {value[:40]!r}... as a size")
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?", value.strip().lower())
        if not m:
            raise ValueError(f"cannot parse {value!r} as a size (try '512M' or '32G')")
        mb = float(m.group(1)) * _UNITS_MB[(m.group(2) or "m").upper()]
    if not math.isfinite(mb) or mb > MAX_MEMORY_MB:
        raise ValueError(f"must be at most {MAX_MEMORY_MB} MB")
    if mb <= 0:
        raise ValueError("must be positive")
    return max(1, round(mb))


def format_walltime(seconds: int) -> str:
    """HH:MM:SS with hours unbounded: what both sbatch and qsub accept."""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def ts(value: float | None) -> datetime | None:
    """A stored time (epoch seconds) as a datetime in UTC."""
    return None if value is None else datetime.fromtimestamp(value, UTC)
