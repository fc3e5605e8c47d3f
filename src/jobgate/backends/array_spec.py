"""Array specs as sbatch writes them ("0-9:2%4", "1,3,5"): their indices, checked at
submit for every destination (a scheduler's or the gateway's own driver)."""

from __future__ import annotations

import re

from jobgate.errors import SpecError
from jobgate.spec import Resources

MAX_ARRAY_TASKS = 100_000


def array_indices(spec: str) -> list[int]:
    """Indices of an array spec: "0-9:2%4" -> 0,2,4,6,8; "1,3,5" -> 1,3,5."""
    ranges = []
    for part in spec.split("%", maxsplit=1)[0].split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if not m:
            raise ValueError(f"{spec!r} is not an array spec (e.g. '0-99%10' or '1,3,5')")
        first, step = int(m.group(1)), int(m.group(3) or 1)
        last = int(m.group(2) or first)
        if last < first or step < 1:
            raise ValueError(f"{spec!r}: {part!r} is an empty range")
        ranges.append(range(first, last + 1, step))
    if sum(len(r) for r in ranges) > MAX_ARRAY_TASKS:  # counted before building the list
        raise ValueError(f"{spec!r}: more than {MAX_ARRAY_TASKS} tasks")
    return sorted({i for r in ranges for i in r})


def check_array(res: Resources) -> list[int] | None:
    if res.array is None:
        return None
    try:
        return array_indices(res.array)
    except ValueError as exc:
        raise SpecError("resources.array", str(exc)) from None
