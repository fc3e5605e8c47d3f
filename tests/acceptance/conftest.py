"""The `cli` fixture: the `jobgate` command as a user runs it (a subprocess), on its
embedded gateway (SQLite) and through a real `jobgate serve` (PostgreSQL), so that each
acceptance test shows the CLI behaves the same both ways."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.conftest import running_server
from conftest import JOBGATE, fresh_pg_database, pg_url

# Room for the jobs a test holds (the default is one slot per CPU: two here).
EMBEDDED_CONFIG = "[destinations.local]\ncapacity = 16\n"


@dataclass
class Cli:
    env: dict[str, str]
    gateway_dir: Path  # the gateway's own working directory (where a decoy is put)
    database_url: str

    def __call__(
        self, *args: str, cwd: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [JOBGATE, *args],
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def job(self, job_id: str) -> dict[str, object]:
        res = self("show", "--json", job_id)
        assert res.returncode == 0, res.stderr
        shown: dict[str, object] = json.loads(res.stdout)
        return shown


@pytest.fixture(scope="module", params=["embedded", "served"])
def cli(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("JOBGATE_")}
    base["COLUMNS"] = "200"
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "embedded":
        home = tmp / "home"
        url = f"sqlite:///{home / 'jobgate.db'}"
        (tmp / "jobgate.toml").write_text(EMBEDDED_CONFIG)
        env = base | {
            "JOBGATE_HOME": str(home),
            "JOBGATE_CONFIG": str(tmp / "jobgate.toml"),
            "JOBGATE_DATABASE_URL": url,
        }
        home.mkdir()
        yield Cli(env, home, url)
        return
    with running_server(tmp, fresh_pg_database(pg_url())) as srv:
        env = base | {
            "JOBGATE_SERVER": srv.base_url,
            "JOBGATE_TOKEN": srv.tokens["alice"],
            "JOBGATE_HOME": str(tmp / "client-home"),  # a store here: the CLI went local
        }
        yield Cli(env, tmp, srv.env["JOBGATE_DATABASE_URL"])


def submitted_id(res: subprocess.CompletedProcess[str]) -> str:
    """The job id in `submit --wait`'s detail table."""
    return next(ln.split()[1] for ln in res.stdout.splitlines() if ln.split()[:1] == ["id"])
