"""A job's environment, decided in one place for every backend.

It is exactly: a base (`PATH`, `HOME`, `USER`, `LANG`, `TMPDIR`, `SHELL`), the gateway's
variables the destination names in `pass_env`, the spec's `environment`, and
`JOBGATE_JOB_ID` / `JOBGATE_RUN_DIR` / `JOBGATE_EVENTS`. Nothing else of the gateway's own
environment (its home, port, tokens, database URL) ever reaches a job. Each backend
delivers it its own way: local jobs are spawned with it; the wrappers export it; and
commands the gateway runs for a job (sbatch and qsub, the process scheduler's launch,
`cancel.sh`) start from `env -i` with the base, so sbatch's `--export=ALL` and qsub's `-v`
(never `-V`) pass on nothing of the gateway's.

On the gateway's host the base is known here: PATH, LANG and TMPDIR from the gateway
(else defaults), HOME, USER and SHELL of the account the job runs as. On another host
the login there has its own: it is kept, and only what it lacks is filled in.
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

from jobgate.config import Destination
from jobgate.spec import JobRecord

BASE = ("PATH", "HOME", "USER", "LANG", "TMPDIR", "SHELL")
OWN = ("JOBGATE_JOB_ID", "JOBGATE_RUN_DIR", "JOBGATE_EVENTS")
EVENTS_FILE = "jobgate.events"  # JSON lines a job appends: its own events (engine/talkback)
DEFAULTS = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what a shell can export


@dataclass(frozen=True)
class JobEnvironment:
    values: dict[str, str]  # set for the job, in this order (later ones win)
    defaults: dict[str, str]  # set only where the job's host has not (a remote login)

    def command_env(self) -> list[str]:
        """`NAME=value` words for `env -i` before a command run for the job: only the base
        and jobgate's own, as a command line is public; the rest is in the wrapper."""
        return [f"{k}={v}" for k, v in self.values.items() if k in BASE or k in OWN]


class Account(NamedTuple):
    """The OS account a job runs as, as its environment names it."""

    user: str
    home: str
    shell: str


@cache
def account_of(uid: int) -> Account:
    """From the password database, once: an account is not renamed under a gateway."""
    entry = pwd.getpwuid(uid)
    return Account(entry.pw_name, entry.pw_dir, entry.pw_shell or "/bin/sh")


def job_environment(
    job: JobRecord,
    dest: Destination,
    run_dir: str,
    *,
    gateway_env: Mapping[str, str] | None = None,
    account: Account | None = None,
) -> JobEnvironment:
    """The job's environment, taken from `gateway_env` (default: this process's) and, on
    this host, `account` (default: the gateway's own, whose jobs run as it)."""
    gateway = os.environ if gateway_env is None else gateway_env
    base: dict[str, str] = {}
    defaults = dict(DEFAULTS)
    if dest.transport == "local":
        acct = account or account_of(os.geteuid())
        base = {
            "PATH": gateway.get("PATH") or DEFAULTS["PATH"],
            "HOME": acct.home,
            "USER": acct.user,
            "LANG": gateway.get("LANG") or DEFAULTS["LANG"],
            "TMPDIR": gateway.get("TMPDIR") or DEFAULTS["TMPDIR"],
            "SHELL": acct.shell,
        }
        defaults = {}
    passed = {
        name: value
        for name, value in sorted(gateway.items() if dest.pass_env else ())
        if dest.passes_env(name) and _NAME.fullmatch(name)
    }
    values = base | passed | dict(sorted(job.spec.environment.items()))
    values |= {  # always jobgate's
        "JOBGATE_JOB_ID": job.id,
        "JOBGATE_RUN_DIR": run_dir,
        "JOBGATE_EVENTS": f"{run_dir}/{EVENTS_FILE}",
    }
    return JobEnvironment(values, {k: v for k, v in defaults.items() if k not in values})


def clean_prefix(env: JobEnvironment, dest: Destination) -> tuple[str, ...]:
    """`env -i` and the base only, before a command that hands the job over (sbatch,
    qsub): the same for every job of a destination, so one shell runs many of them; the
    job's own variables are in its wrapper. Over SSH: nothing (the login's own)."""
    if dest.transport != "local":
        return ()
    return ("/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.values.items() if k in BASE))


def clean_command(argv: list[str], env: JobEnvironment, dest: Destination) -> list[str]:
    """A command the gateway runs for a job (a launch, `cancel.sh`) on its own host starts
    from `env -i`, not from the gateway's environment; over SSH the host's login is the
    job's own environment already."""
    if dest.transport != "local":
        return argv
    return ["/usr/bin/env", "-i", *env.command_env(), *argv]  # not found on PATH: ours
