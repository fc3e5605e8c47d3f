"""Schemathesis over the TES 1.1 schema jobgate ships (src/jobgate/api/tes/openapi.json,
served at /ga4gh/tes/v1/openapi.json) against a real `jobgate serve`, all checks, on
both stores: whatever it sends, the door answers without a 5xx, as the schema says.

Fuzzed tasks must not run (their commands are random text; tests may run as root): the
one destination has one slot, held by a job of bob's for the whole run, so the tasks
stay QUEUED until the server stops."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.conftest import Server, held_server
from api.test_schemathesis import SCHEMATHESIS

CONFIG = """\
[destinations.local]
capacity = 1
"""
# Rules no JSON Schema of TES states, so a schema-valid request may rightly get 400
# naming the field: paths are absolute (and not "/"), a task has an executor with a
# command, a URL's scheme is one the gateway takes, backend parameters are the
# destination's when strict; and no text holds a NUL byte (PostgreSQL cannot).
CONFIG_TOML = """\
[[operations]]
include-path = ["/tasks"]
checks.positive_data_acceptance.expected-statuses = ["2XX", "400", "401", "404"]
"""


@pytest.fixture(scope="module")
def tes_fuzz(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with held_server(tmp_path_factory.mktemp("tesfuzz"), database_url, CONFIG) as srv:
        yield srv


def test_the_shipped_tes_schema_holds(tes_fuzz: Server, tmp_path: Path) -> None:
    (tmp_path / "schemathesis.toml").write_text(CONFIG_TOML)
    base = f"{tes_fuzz.base_url}/ga4gh/tes/v1"
    run = subprocess.run(
        [
            SCHEMATHESIS, "run", f"{base}/openapi.json", f"--url={base}",
            "--checks=all", "--phases=examples,coverage,fuzzing", "--max-examples=25",
            "--seed=1", "--workers=1", "--request-timeout=20",
            f"--header=Authorization: Bearer {tes_fuzz.tokens['alice']}",
            "--suppress-health-check=all", "--warnings=off",
        ],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    print(run.stdout)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
