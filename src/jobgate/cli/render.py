"""How the CLI shows jobs: rich tables for people, --json for programs."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from jobgate.spec import JobEvent, JobRecord
from jobgate.states import JobState
from jobgate.tasks import TaskOut
from jobgate.users import TokenInfo

console = Console(highlight=False, soft_wrap=True)
_STYLE = {
    JobState.COMPLETED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "yellow",
    JobState.TIMEOUT: "red",
    JobState.LOST: "magenta",
    JobState.REJECTED: "red",
    JobState.RUNNING: "cyan",
}


def public(record: JobRecord) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude={"backend_data"})


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def state_text(state: JobState) -> str:
    style = _STYLE.get(state)
    return f"[{style}]{state.value}[/]" if style else state.value


def age(when: datetime | None) -> str:
    if when is None:
        return "-"
    secs = int((datetime.now(UTC) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit} ago"
    return f"{secs}s ago"


def duration(seconds: float | None) -> str:
    """squeue's TIME: [D-]HH:MM:SS, or MM:SS under an hour."""
    if seconds is None:
        return "-"
    secs = int(seconds)
    days, rest = divmod(secs, 86400)
    clock = f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
    if days:
        return f"{days}-{clock}"
    return clock if secs >= 3600 else clock[3:]


def elapsed(r: JobRecord) -> float | None:
    if r.started_at is None:
        return None
    end = r.finished_at or datetime.now(UTC)
    return (end - r.started_at).total_seconds()


def time_limit(r: JobRecord) -> int | None:
    return (r.resources or r.spec.resources).walltime_s


def jobs_table(records: list[JobRecord]) -> None:
    """As squeue lays them out: what, where, how far, and why it ended (or waits)."""
    table = Table(box=None, pad_edge=False)
    for col in ("ID", "NAME", "DEST", "STATE", "EXIT", "ELAPSED", "LIMIT", "NATIVE"):
        table.add_column(col, no_wrap=True)
    table.add_column("REASON", overflow="fold")
    for r in records:
        table.add_row(
            r.id,
            r.name or "-",
            r.destination,
            state_text(r.state),
            "-" if r.exit_code is None else str(r.exit_code),
            duration(elapsed(r)),
            duration(time_limit(r)),
            r.native_id or "-",
            r.reason or "-",
        )
    console.print(table)


def footer(shown: int, total: int, cursor: str | None) -> None:
    """`50 of 2,074`, and how to see the rest."""
    more = f" (next page: --cursor {cursor}; all: --all)" if cursor else ""
    console.print(f"{shown:,} of {total:,}{more}")


def _resources(res: Any) -> str:
    given = res.model_dump(exclude_defaults=True) if res is not None else {}
    return ", ".join(f"{k}={v}" for k, v in given.items()) or "-"


def job_detail(r: JobRecord, waiting: str | None = None) -> None:
    rows = [
        ("id", r.id),
        ("name", r.name or "-"),
        ("state", state_text(r.state)),
        ("exit code", "-" if r.exit_code is None else str(r.exit_code)),
        ("reason", r.reason or "-"),
        ("reason code", r.reason_code or "-"),
        ("waiting", waiting or "-"),
        ("destination", r.destination),
        ("owner", r.owner),
        ("native id", r.native_id or "-"),
        ("host", r.host or "-"),
        ("run dir", r.run_dir or "- (named when it is admitted)"),
        ("asked", _resources(r.spec.resources)),
        ("resources", _resources(r.resources)),
        ("time limit", duration(time_limit(r))),
        ("elapsed", duration(elapsed(r))),
        ("outputs", ", ".join(r.spec.output_files) or "-"),
        ("labels", ", ".join(f"{k}={v}" for k, v in r.labels.items()) or "-"),
    ]
    rows += [
        (f"{what}", v.isoformat(timespec="milliseconds") if v else "-")
        for what, v in (
            ("created", r.created_at),
            ("submitted", r.submitted_at),
            ("started", r.started_at),
            ("finished", r.finished_at),
        )
    ]
    for key, value in rows:
        console.print(f"[bold]{key:>12}[/]  {value}")


def rows_table(rows: list[dict[str, Any]]) -> None:
    table = Table(box=None, pad_edge=False)
    for col in rows[0] if rows else []:
        table.add_column(col.upper())
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


def events_table(events: list[JobEvent]) -> None:
    table = Table(box=None, pad_edge=False)
    for col in ("SEQ", "TIME", "TYPE"):
        table.add_column(col, no_wrap=True)
    table.add_column("MESSAGE", overflow="fold")
    for e in events:
        table.add_row(str(e.seq), e.time.strftime("%H:%M:%S.%f")[:-3], e.type, e.message)
    console.print(table)


def token_json(info: TokenInfo) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(info).items()}


def tokens_table(infos: list[TokenInfo]) -> None:
    def when(t: datetime | None, none: str) -> str:
        return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if t else none

    table = Table(box=None, pad_edge=False)
    for col in ("ID", "USER", "LABEL", "CREATED", "EXPIRES (UTC)", "REVOKED (UTC)"):
        table.add_column(col, no_wrap=col != "LABEL", min_width=16 if col == "ID" else None)
    for t in infos:
        expires = when(t.expires_at, "never")
        table.add_row(
            t.id, t.user, t.label or "-", age(t.created_at), expires, when(t.revoked_at, "-")
        )
    console.print(table)


def tasks_of(tasks: list[TaskOut], as_json: bool) -> None:
    """An array's tasks: index, state, exit code, reason code, start, end."""
    if as_json:
        print_json([t.model_dump(mode="json") for t in tasks])
        return
    rows = [
        {
            "task": t.index,
            "state": t.state.value,
            "exit": "-" if t.exit_code is None else t.exit_code,
            "code": t.reason_code or "-",
            "started": t.started_at.strftime("%H:%M:%S") if t.started_at else "-",
            "ended": t.finished_at.strftime("%H:%M:%S") if t.finished_at else "-",
        }
        for t in tasks
    ]
    if rows:
        rows_table(rows)
    else:
        console.print("no tasks (not an array, or none has started)")
