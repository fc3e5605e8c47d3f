"""Jobs run as their user's OS account (a destination's `run_as`), so the OS keeps users
apart: the run directory is handed to the account (mode 0700) before the job starts, the
job and its `cancel.sh` start through `setpriv` as it, and a file the user named outside
the run directory is read as the account too - never with the gateway's own rights.

The gateway must be root for this (docs/security.md)."""

from __future__ import annotations

import errno
import os
import pwd
import subprocess
from dataclasses import dataclass

from jobgate.backends.environment import Account
from jobgate.backends.staging import OUTPUTS
from jobgate.config import Destination
from jobgate.errors import FatalError, SubmitError
from jobgate.spec import JobRecord
from jobgate.transports import beneath

SETPRIV = "/usr/bin/setpriv"
READ_TIMEOUT_S = 10.0
READ_CAP = 64 << 20  # a read "to the end" as the user stops here (a device never ends)


@dataclass(frozen=True)
class RunAs:
    name: str
    uid: int
    gid: int
    home: str
    shell: str

    def argv(self, argv: list[str]) -> list[str]:
        """`argv` run as this account: its uid, gid and groups (setpriv execs it)."""
        ids = [f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups"]
        return [SETPRIV, *ids, "--", *argv]

    @property
    def account(self) -> Account:
        return Account(self.name, self.home, self.shell)


def run_as_of(dest: Destination, job: JobRecord) -> RunAs | None:
    """The OS account `job` runs as on `dest`, or None where jobs run as the gateway."""
    name = dest.os_account(job.owner)
    if name is None:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SubmitError(f"no OS account {name!r} to run {job.owner!r}'s job as") from None
    if entry.pw_uid == 0:
        raise SubmitError(f"run_as would run {job.owner!r}'s job as root: refused")
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, entry.pw_shell)


def hand_over(run_dir: str, who: RunAs) -> None:
    """Give the freshly staged run directory to the account, only it may enter (no link
    is followed: what a name points to keeps its owner)."""
    for top, dirs, names in os.walk(run_dir):
        for name in [*dirs, *names]:
            os.chown(os.path.join(top, name), who.uid, who.gid, follow_symlinks=False)
    os.chown(run_dir, who.uid, who.gid)
    os.chmod(run_dir, 0o700)


def read_as(who: RunAs, path: str, offset: int = 0, limit: int = -1) -> bytes:
    """Bytes of `path` read by the account itself (its rights, its view of links), without
    waiting on a FIFO; OSError if it may not (or the file is not there)."""
    count = READ_CAP if limit < 0 else min(limit, READ_CAP)
    dd = ["dd", f"if={path}", "iflag=skip_bytes,count_bytes,nonblock", f"skip={offset}"]
    done = subprocess.run(
        who.argv([*dd, f"count={count}", "status=none"]),
        capture_output=True,
        timeout=READ_TIMEOUT_S,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C"},
    )
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()
        if "No such file" in why:
            raise FileNotFoundError(errno.ENOENT, why, path)
        raise OSError(errno.EACCES, f"{who.name} cannot read it: {why}", path)
    return done.stdout


def collect_as(who: RunAs, job: JobRecord, workdir: str, target: str) -> list[str]:
    """Output files of a job whose working directory the user named (outside the run
    directory), each read as the user and written below `target/outputs/` without
    following a link; returns the missing ones. FatalError for one that is not a file."""
    missing = []
    for rel in job.spec.output_files:
        try:
            data = read_as(who, os.path.join(workdir, rel))
        except FileNotFoundError:
            missing.append(rel)
            continue
        except OSError as exc:
            raise FatalError(f"output file {rel}: {exc.strerror}") from None
        beneath.write_beneath(target, os.path.join(OUTPUTS, rel), data)
    return missing
