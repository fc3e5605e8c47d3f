"""What a running job says of itself: lines `@event=[TYPE:message]`, `@log=[message]` and
`@var=[name:value]` in its stdout (CyberGIS job-supervisor's convention), and JSON lines
`{"type": ..., "message": ..., "data": {...}}` appended to the file `$JOBGATE_EVENTS`.
Each becomes an event of the job, its type namespaced (`job.TYPE`, `job.log`, `job.var`)
so that no job can pass for a state change; read from where the job left off, a bounded
amount per look, with at most MAX_EVENTS per job (then one `job.truncated` note)."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

from jobgate.backends.environment import EVENTS_FILE

PREFIX = "job."
MAX_EVENTS = 1000  # per job: a job cannot flood the store
MAX_READ = 1 << 20  # bytes per file per look: a job printing fast is read over several
MAX_TEXT = 2000  # characters of a message or value kept
_LINE = re.compile(r"^@(event|log|var)=\[(.*)\]\s*$")
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")

Note = tuple[str, str, str, dict[str, Any]]  # (job id, type, message, data), as events


@dataclass(slots=True)
class Heard:
    """Where reading a job's two files got to, and how much it said (one per running
    job: slots, and no dict until a line is left unfinished)."""

    stdout: int = 0
    events: int = 0
    count: int = 0
    partial: dict[str, bytes] | None = None  # a line not ended yet, per file


def parse_stdout_line(line: str) -> tuple[str, str, dict[str, Any]] | None:
    """(type, message, data) of a talking line of stdout, or None for any other line."""
    m = _LINE.match(line)
    if m is None:
        return None
    kind, body = m.groups()
    if kind == "log":
        return "log", body[:MAX_TEXT], {}
    name, sep, rest = body.partition(":")
    if not sep or not _TYPE.match(name):
        return None
    if kind == "var":
        return "var", f"{name}={rest[:MAX_TEXT]}", {"name": name, "value": _value(rest)}
    return name, rest[:MAX_TEXT], {}


def parse_events_line(line: str) -> tuple[str, str, dict[str, Any]] | None:
    try:
        item = json.loads(line)
    except ValueError:
        return None
    if not isinstance(item, dict) or not _TYPE.match(str(item.get("type", ""))):
        return None
    data = item.get("data")
    return (
        str(item["type"]),
        str(item.get("message", ""))[:MAX_TEXT],
        (data if isinstance(data, dict) else {}),
    )


def _value(text: str) -> Any:
    """A @var's value: JSON where it parses (42, 0.5, true, [1]), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text[:MAX_TEXT]


class Listener:
    """Offsets per job; `hear` turns new bytes of a job's files into notes."""

    def __init__(self) -> None:
        # None: known, nothing heard yet (most jobs): no Heard until a job writes
        self._jobs: dict[str, Heard | None] = {}

    def known(self, job_id: str) -> bool:
        return job_id in self._jobs

    def resume(self, job_id: str, data: dict[str, Any] | None) -> None:
        """Start from where the last note said (after a restart: nothing said twice)."""
        data = data or {}
        at = Heard(int(data.get("stdout_at", 0)), int(data.get("events_at", 0)))
        # the id string the poller's keys share
        self._jobs[sys.intern(job_id)] = at if at.stdout or at.events else None

    def offsets(self, job_id: str) -> tuple[int, int]:
        heard = self._jobs.get(job_id)
        return (0, 0) if heard is None else (heard.stdout, heard.events)

    def hear(self, job_id: str, stdout: bytes, events: bytes) -> list[Note]:
        heard = self._jobs.get(job_id)
        if heard is None:
            heard = self._jobs[sys.intern(job_id)] = Heard()
        said = [*self._lines(heard, "stdout", stdout, parse_stdout_line)]
        said += self._lines(heard, "events", events, parse_events_line)
        notes: list[Note] = []
        for kind, message, data in said:
            heard.count += 1
            if heard.count > MAX_EVENTS:
                if heard.count == MAX_EVENTS + 1:
                    notes.append((job_id, "job.truncated", f"over {MAX_EVENTS} events", {}))
                continue
            where = {"stdout_at": heard.stdout, "events_at": heard.events}
            notes.append((job_id, PREFIX + kind, message, {**data, **where}))
        return notes

    def forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def _lines(self, heard: Heard, which: str, chunk: bytes, parse: Any) -> list[Any]:
        setattr(heard, which, getattr(heard, which) + len(chunk))
        text = (heard.partial.pop(which, b"") if heard.partial else b"") + chunk
        *lines, rest = text.split(b"\n")
        if rest:
            heard.partial = heard.partial or {}
            heard.partial[which] = rest[:MAX_READ]
        found = []
        for raw in lines:
            item = parse(raw.decode("utf-8", "replace").rstrip("\r"))
            if item is not None:
                found.append(item)
        return found


FILES = ("stdout", EVENTS_FILE)
