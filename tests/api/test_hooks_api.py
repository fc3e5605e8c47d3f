"""A destination's hooks through a real `jobgate serve`: an API submission the site's
validator or Python hook refuses is answered (201) with a REJECTED job and the reason,
and never runs; the validator and hooks run off the event loop, so other requests go on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.conftest import CONFIG, Server, running_server
from conftest import install_entry_points

HOOKS = """
def small(spec, owner):
    if (spec.resources.cpus_per_task or 1) > 2:
        return f"{owner}: at most 2 cpus here"
    return None
"""


@pytest.fixture(scope="module")
def guarded(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hooks")
    (tmp / "sitehooks.py").write_text(HOOKS)
    install_entry_points(tmp, "sitehooks", "[jobgate.hooks]\nsmall-jobs = sitehooks:small\n")
    validator = tmp / "validate-job"
    validator.write_text(
        '#!/bin/sh\nif grep -q rm "$1"; then echo "$JOBGATE_USER: no rm"; exit 1; fi\n'
    )
    validator.chmod(0o755)
    config = CONFIG + (
        f"\n[destinations.guarded]\ncapacity = 2\n[destinations.guarded.hooks]\n"
        f'validator = "{validator}"\npython = ["small-jobs"]\n'
    )
    with running_server(tmp, database_url, config, {"PYTHONPATH": str(tmp)}) as srv:
        yield srv


def test_refused_jobs_are_rejected_with_the_reason(guarded: Server) -> None:
    rm = guarded.submit("alice", script="rm -f x\n", destination="guarded")
    big = guarded.submit(
        "alice", script="true\n", destination="guarded", resources={"cpus_per_task": 4}
    )
    assert (rm["state"], rm["reason"]) == (
        "REJECTED",
        "refused by the validator (exit 1): alice: no rm",
    )
    assert (big["state"], big["reason"]) == ("REJECTED", "alice: at most 2 cpus here")
    assert guarded.job("alice", rm["id"])["state"] == "REJECTED"  # stored so
    ok = guarded.submit("alice", script="echo ok\n", destination="guarded")
    assert guarded.wait("alice", ok["id"])["state"] == "COMPLETED"
    plain = guarded.submit("alice", script="rm -f x\n")  # other destinations: no hooks
    assert guarded.wait("alice", plain["id"])["state"] == "COMPLETED"
