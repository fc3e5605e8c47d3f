"""Schemathesis against a real `jobgate serve`'s OpenAPI document, on SQLite and on
PostgreSQL, with all of its checks: whatever it sends, valid or not, the server answers
without a 5xx, with a status and body its OpenAPI document names, rejects what the schema
does not allow, takes what it allows (but for the rules of CONFIG_TOML), and needs the
authentication it says; through all its phases, the stateful one included (which chains
requests along the links it infers: submit, then get, cancel, read).

It runs as the `schemathesis` command (its examples, coverage and fuzzing phases, with a
fixed seed and a bounded number of cases per operation): its pytest plugin's lazy
schemas do not work with pytest 9 (they read a private `Function._nodeid`).

Fuzzed jobs must not run (their scripts are random text, and tests may run as root): the
server's only destination has one slot, held by a job of bob's for the whole run, so the
jobs the fuzzer submits stay QUEUED until the server stops. The fuzzer acts as alice (it
reuses ids from responses: as the admin it cancelled that job), and as the admin only on
/tokens. The stateful phase, which chains requests, is left out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from api.conftest import Server, held_server

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
TESTS = str(Path(__file__).parent.parent)  # where `api.test_schemathesis` imports from
CONFIG = """\
[destinations.local]
capacity = 1
"""
EXAMPLES = 20  # per operation and phase: a store's run stays under a minute
# positive_data_acceptance wants every schema-valid request taken. These bodies have rules
# no JSON Schema states, so a valid-looking one may rightly get 422 naming the field:
# /jobs: script or executable, a destination that exists, directives its allow-list
# takes, a directory inside the user's area; /tokens: a user name jobgate knows, an expiry
# to come; joblauncher: a jobdir of the user's own, and files that are in it; cybergis:
# a destination that exists, environment names a shell takes. Every other operation,
# and every other check on these, stands as schemathesis has it.
CONFIG_TOML = """\
[[operations]]
include-path = ["/api/v1/jobs", "/api/v1/jobs:batch", "/api/v1/tokens", "/compat/joblauncher/job",
                "/compat/cybergis/supervisor", "/compat/cybergis/guard/secretToken"]
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = [
    "2XX", "3XX", "401", "403", "404", "409", "422", "429", "5XX"]

# joblauncher's DELETE cancels, and the job keeps its record (docs/compat.md): a GET after
# it answers 200 with state KILLED, which use_after_free (schemathesis >= 4.32) calls a
# deleted resource still there.
[[operations]]
include-path-regex = "^/compat/joblauncher/job/"
checks.use_after_free.enabled = false
"""


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case[Any]) -> bool:
    """No `follow=true`: a stream follows its job until the job ends, and the fuzzer's jobs
    never do (they wait for the slot). This module is the fuzzer's hooks module too."""
    follow = (case.query or {}).get("follow", [])
    values = follow if isinstance(follow, list) else [follow]
    return not any(str(v).lower() in {"true", "1", "yes", "on", "t", "y"} for v in values)


@pytest.fixture(scope="module")
def fuzz_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with held_server(tmp_path_factory.mktemp("fuzz"), database_url, CONFIG) as srv:
        yield srv


@pytest.mark.parametrize(
    ("user", "paths"),
    [
        # alice: every route; bob's job holding the slot is not hers to see or cancel.
        ("alice", []),
        # the admin: POST /tokens past its 403 (nothing there can touch a job).
        ("admin", ["--include-path=/api/v1/tokens"]),
    ],
)
def test_no_input_makes_a_server_error(
    fuzz_server: Server, tmp_path: Path, user: str, paths: list[str]
) -> None:
    (fuzz_server.home / "jobdirs" / user).mkdir(parents=True, exist_ok=True)  # joblauncher's
    (tmp_path / "schemathesis.toml").write_text(CONFIG_TOML)
    run = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{fuzz_server.api}/openapi.json",
            *paths,
            "--checks=all",
            "--phases=examples,coverage,fuzzing,stateful",
            f"--max-examples={EXAMPLES}",
            "--seed=1",
            "--workers=1",  # CPython 3.11's ast.parse is not thread-safe (Hypothesis uses it)
            "--request-timeout=20",
            f"--header=Authorization: Bearer {fuzz_server.tokens[user]}",
            "--suppress-health-check=all",
            "--warnings=off",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,  # no schemathesis.toml of anyone else's applies
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": __name__,  # filter_case above
            "PYTHONPATH": os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")])),
        },
    )
    print(run.stdout)  # shown with -s or -rP: what each phase covered
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
