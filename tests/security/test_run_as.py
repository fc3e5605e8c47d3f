"""`run_as = "{user}"`: each jobgate user's jobs run as the OS account of that name, in a
run directory only that account can enter, so the OS - not only the API - keeps users
apart: alice's job cannot read bob's run directory, nor the gateway's store. Paths a user
names outside the run directory are opened with the user's rights, never the gateway's.
Two OS accounts are made for it here (CI runs as root)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.conftest import Server, running_server
from conftest import JOBGATE, need

ALICE, BOB = "jgalice", "jgbob"  # OS accounts and jobgate users of the same name
CONFIG = """\
[destinations.local]
capacity = 4
run_as = "{user}"
"""


def _account(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


@pytest.fixture(scope="module")
def accounts() -> dict[str, pwd.struct_passwd]:
    need(os.geteuid() == 0, "run_as needs root (to make OS accounts and start jobs as them)")
    need(shutil.which("useradd") is not None, "no useradd to make the test's OS accounts")
    return {name: _account(name) for name in (ALICE, BOB)}


@pytest.fixture(scope="module")
def server(accounts: dict[str, pwd.struct_passwd], database_url: str) -> Iterator[Server]:
    # Not under pytest's temporary folder (mode 0700, root's): the accounts must be able
    # to walk to their run directories, as they would to /var/lib/jobgate.
    tmp = Path(tempfile.mkdtemp(prefix="jobgate-run-as-", dir="/var/tmp"))
    os.chmod(tmp, 0o755)
    try:
        with running_server(tmp, database_url, CONFIG) as srv:
            for name in accounts:
                token = subprocess.run(
                    [JOBGATE, "token", "create", "--user", name],
                    env=srv.env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
                srv.tokens[name] = token
            yield srv
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_jobs_run_as_their_user_who_cannot_read_another_user_or_the_store(
    server: Server, accounts: dict[str, pwd.struct_passwd]
) -> None:
    secret = f"bobs-secret-{os.urandom(6).hex()}"
    bob = server.submit(BOB, script=f"echo '{secret}'; id -un")
    assert server.wait(BOB, bob["id"])["state"] == "COMPLETED"
    bob_dir = server.job(BOB, bob["id"])["run_dir"]
    store = server.env["JOBGATE_DATABASE_URL"].split("///", 1)[-1]
    probe = (
        f"id -un; cat {bob_dir}/stdout || echo denied-run-dir; "
        f"cat {store} > /dev/null || echo denied-store; ls {server.home}/runs || echo denied-list"
    )
    alice = server.submit(ALICE, script=probe)
    assert server.wait(ALICE, alice["id"])["state"] == "COMPLETED"
    out = server.client(ALICE).get(f"/jobs/{alice['id']}/logs/stdout").text
    assert out.splitlines()[0] == ALICE
    assert secret not in out and "denied-run-dir" in out and "denied-list" in out
    if store.startswith("/"):  # SQLite: a file on this host
        assert "denied-store" in out
    bob_out = server.client(BOB).get(f"/jobs/{bob['id']}/logs/stdout").text
    assert bob_out == f"{secret}\n{BOB}\n"
    run_dir = Path(server.job(ALICE, alice["id"])["run_dir"])
    info = run_dir.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (accounts[ALICE].pw_uid, 0o700)


def test_paths_outside_the_run_dir_are_opened_with_the_users_rights(
    server: Server, accounts: dict[str, pwd.struct_passwd]
) -> None:
    """A user's own folder: allowed (run_as separates users); the gateway reads the log
    there as the user. A file only root may read, named as stdout: never served."""
    own = Path(tempfile.mkdtemp(prefix="jobgate-alice-", dir="/var/tmp"))
    os.chown(own, accounts[ALICE].pw_uid, accounts[ALICE].pw_gid)
    private = Path(tempfile.mkdtemp(prefix="jobgate-root-", dir="/var/tmp"))
    (private / "secret.txt").write_text("root only\n")
    os.chmod(private, 0o700)
    try:
        job = server.submit(ALICE, script="echo mine", stdout=str(own / "out.txt"))
        assert server.wait(ALICE, job["id"])["state"] == "COMPLETED"
        got = server.client(ALICE).get(f"/jobs/{job['id']}/logs/stdout")
        assert got.status_code == 200 and got.text == "mine\n"
        assert (own / "out.txt").stat().st_uid == accounts[ALICE].pw_uid
        peek = server.submit(ALICE, script="true", stdout=str(private / "secret.txt"))
        server.wait(ALICE, peek["id"])  # its wrapper cannot open it either
        res = server.client(ALICE).get(f"/jobs/{peek['id']}/logs/stdout")
        assert "root only" not in res.text
        assert (private / "secret.txt").read_text() == "root only\n"
    finally:
        shutil.rmtree(own, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
