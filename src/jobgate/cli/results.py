"""`jobgate results`: what job types' parsers read, for one job or a whole sweep, as a
table, JSON or CSV (one column per value)."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

import click

from jobgate.cli import render
from jobgate.cli.context import gateway
from jobgate.cli.options import json_option
from jobgate.errors import SpecError


@click.command()
@click.argument("job_id", required=False)
@click.option("-T", "--job-type", help="Results of this job type's jobs.")
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many.")
@click.option("--cursor", help="Where the page before ended.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV: job_id, job_type, error, then values.")
@json_option
@click.pass_context
def results(
    ctx: click.Context,
    job_id: str | None,
    job_type: str | None,
    limit: int,
    cursor: str | None,
    as_csv: bool,
    as_json: bool,
) -> None:
    """Results of one job (JOB_ID), or of many (newest first)."""
    if limit < 1:
        raise SpecError("limit", "must be 1 or more")
    gw = gateway(ctx, supervise=False)
    if job_id:
        one = gw.get(job_id).results()
        rows = [one] if one else []
    else:
        rows = gw.results(job_type=job_type, limit=limit, cursor=cursor)
    if as_json:
        render.print_json(rows[0] if job_id and rows else rows)
    elif as_csv:
        _csv(rows)
    else:
        _table(rows)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row["data"]))
    return list(names)


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _csv(rows: list[dict[str, Any]]) -> None:
    columns = _columns(rows)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["job_id", "job_type", "error", *columns])
    for row in rows:
        values = [_cell(row["data"][c]) if c in row["data"] else "" for c in columns]
        out.writerow([row["job_id"], row["job_type"], row["error"] or "", *values])


def _table(rows: list[dict[str, Any]]) -> None:
    columns = _columns(rows)
    render.rows_table(
        [
            {
                "job_id": r["job_id"],
                "type": r["job_type"],
                **{c: _cell(r["data"].get(c, "")) for c in columns},
                "error": r["error"] or "",
            }
            for r in rows
        ]
    )
