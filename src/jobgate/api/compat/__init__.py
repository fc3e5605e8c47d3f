"""Drop-in APIs for existing clients, each a thin router over the same JobService:

- `joblauncher`: NLeSC joblauncher / Osmium (`POST /job`, `GET /job/{id}`, ...), mounted
  under `/compat/joblauncher`;
- `cybergis`: CyberGIS job-supervisor v1 (`POST /guard/secretToken`, `/supervisor`, ...),
  mounted under `/compat/cybergis`.

They translate wire formats and nothing else: jobs, states, ownership and errors are the
gateway's own. Jobs submitted through one carry the label `compat=<name>`, so a
callback sender can tell which body a receiver expects. See docs/compat.md.
"""

from __future__ import annotations

from datetime import datetime

from jobgate.views import COMPAT_LABEL

__all__ = ["COMPAT_LABEL", "js_time"]


def js_time(value: datetime) -> str:
    """A time as JavaScript's `Date.toJSON()` writes it: UTC, milliseconds, `Z`."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
