"""Which paths a job may name. A job run under the gateway's own account on behalf of an
API user (the REST, compat and TES doors) names only paths inside its run directory -
relative, no `..` - or beneath one of its destination's `work_roots` (`{user}` expanded)
or a door's own roots (joblauncher's jobdirs). Where the OS separates users (embedded use
by the gateway's own account, or a destination that runs jobs `run_as` their user), a
path is the user's own and allowed as given."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from pathlib import PurePosixPath

from jobgate.config import Destination
from jobgate.errors import SpecError
from jobgate.spec import JobSpec

PATH_FIELDS = ("directory", "stdin", "stdout", "stderr")


def user_roots(dest: Destination, user: str, extra: Sequence[str] = ()) -> list[str]:
    """The absolute directories beneath which `user`'s jobs on `dest` may name paths."""
    if user in {"", ".", ".."} or "/" in user:  # would not expand to a folder of its own
        return []
    roots = [r.replace("{user}", user) for r in dest.work_roots]
    return [posixpath.normpath(r) for r in [*roots, *extra]]


def check_confined(spec: JobSpec, roots: Sequence[str]) -> None:
    """SpecError naming the field for a path that would leave the job's area."""
    for field in PATH_FIELDS:
        value = getattr(spec, field)
        if value is not None:
            check_path(field, value, roots)


def check_path(field: str, value: str, roots: Sequence[str]) -> None:
    """SpecError naming `field` for a path outside the run directory and `roots`."""
    path = PurePosixPath(value)
    if ".." in path.parts:
        raise SpecError(field, f"{value!r}: '..' is not allowed in a job's paths")
    if not path.is_absolute():
        return
    norm = posixpath.normpath(value)
    if any(norm == r or norm.startswith(r.rstrip("/") + "/") for r in roots):
        return
    where = f"beneath {', '.join(roots)}" if roots else "nowhere on this destination"
    raise SpecError(
        field,
        f"{value!r} is outside the job's run directory: give a relative path "
        f"(absolute paths are allowed {where})",
    )
