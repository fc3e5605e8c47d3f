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


def jobs_table(records: list[JobRecord]) -> None:
    table = Table(box=None, pad_edge=False)
    for col in ("ID", "NAME", "DEST", "STATE", "EXIT", "NATIVE", "CREATED"):
        table.add_column(col, no_wrap=True)
    for r in records:
        table.add_row(
            r.id,
            r.name or "-",
            r.destination,
            state_text(r.state),
            "-" if r.exit_code is None else str(r.exit_code),
            r.native_id or "-",
            age(r.created_at),
        )
    console.print(table)


def job_detail(r: JobRecord) -> None:
    rows = [
        ("id", r.id),
        ("name", r.name or "-"),
        ("state", state_text(r.state)),
        ("exit code", "-" if r.exit_code is None else str(r.exit_code)),
        ("reason", r.reason or "-"),
        ("destination", r.destination),
        ("owner", r.owner),
        ("native id", r.native_id or "-"),
        ("host", r.host or "-"),
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
