"""A destination's hooks, for jobs from every door: an executable validator (Alces'
`validate-job JOB OUTPUT_DIR`), Python validators registered in the `jobgate.hooks` entry
point group, and a runner that runs each job instead (`RUNNER JOB OUTPUT_DIR ROLE
CLUSTER`). A refusal ends the job REJECTED with the reason; nothing of it runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import install_entry_points
from jobgate import Gateway
from jobgate.errors import ConfigError
from jobgate.states import JobState

WAIT = 30


def executable(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def register(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """An installed package `sitehooks` whose entry points name hooks of `module`."""
    (tmp_path / "sitehooks.py").write_text(module)
    hooks = "[jobgate.hooks]\nsmall-jobs = sitehooks:small\nbroken = sitehooks:broken\n"
    install_entry_points(tmp_path, "sitehooks", hooks)
    monkeypatch.syspath_prepend(str(tmp_path))


SITE_HOOKS = """
def small(spec, owner):
    if (spec.resources.cpus_per_task or 1) > 2:
        return f"{owner}: at most 2 cpus here, not {spec.resources.cpus_per_task}"
    return None

def broken(spec):
    raise RuntimeError("the site database is down")
"""


def test_an_executable_validator_refuses_or_passes(
    open_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    validator = executable(
        tmp_path / "validate-job",
        "#!/bin/sh\n"
        f'printf "%s %s\\n" "$JOBGATE_USER" "$(cat "$1")" >> {seen}\n'
        '[ -d "$2" ] || exit 3\n'
        'if grep -q rm "$1"; then echo "no rm in jobs here"; exit 1; fi\n',
    )
    with open_gateway(local={"hooks": {"validator": validator}}) as gw:
        refused = gw.submit(script="rm -rf data\n")
        ok = gw.submit(script="echo fine\n")
        assert refused.state == JobState.REJECTED
        assert refused.record.reason == "refused by the validator (exit 1): no rm in jobs here"
        assert refused.native_id is None and refused.files() == []  # nothing of it ran
        assert ok.wait(WAIT) == JobState.COMPLETED and ok.stdout() == "fine\n"
    assert seen.read_text().splitlines()[0].endswith(" rm -rf data")


def test_python_hooks_by_entry_point(
    open_gateway: Callable[..., Gateway], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(tmp_path, monkeypatch, SITE_HOOKS)
    with open_gateway(local={"hooks": {"python": ["small-jobs"]}}) as gw:
        big = gw.submit(script="true", resources={"cpus_per_task": 4})
        small = gw.submit(script="true", resources={"cpus_per_task": 2})
        assert big.state == JobState.REJECTED
        assert big.record.reason is not None and big.record.reason.endswith(
            ": at most 2 cpus here, not 4"
        )
        assert small.wait(WAIT) == JobState.COMPLETED
    with open_gateway(local={"hooks": {"python": ["broken"]}}) as gw:
        failed = gw.submit(script="true")  # a hook that cannot answer refuses: fail closed
        assert failed.state == JobState.REJECTED
        assert failed.record.reason == (
            "the hook broken failed: RuntimeError: the site database is down"
        )


def test_an_unknown_hook_stops_start_up(open_gateway: Callable[..., Gateway]) -> None:
    with pytest.raises(ConfigError) as info:
        open_gateway(local={"hooks": {"python": ["no-such-hook"]}})
    assert info.value.field == "destinations.local.hooks.python"
    assert "no hook 'no-such-hook' in jobgate.hooks" in info.value.message


def test_a_runner_runs_each_job_instead(
    open_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    runner = executable(
        tmp_path / "process-job",
        "#!/bin/sh\n"
        'echo "runner: $(basename "$1") out=$2 role=$3 cluster=$4"\n'
        'date > "$2/started_at"\n'
        'exec sh "$1"\n',
    )
    hooks = {"runner": runner, "role": "login", "cluster": "c9"}
    with open_gateway(local={"hooks": hooks}) as gw:
        job = gw.submit(script="echo the job itself\n")
        assert job.wait(WAIT) == JobState.COMPLETED
        assert job.stdout() == (
            "runner: script.sh out=output role=login cluster=c9\nthe job itself\n"
        )
        assert "output/started_at" in job.files()
    with open_gateway(local={"hooks": {"runner": str(tmp_path / "no-runner")}}) as gw:
        lost = gw.submit(script="echo never\n")
        assert lost.wait(WAIT) == JobState.FAILED and lost.record.exit_code == 127
        assert lost.read_log("stderr").decode() == (
            f"jobgate: the runner {tmp_path}/no-runner is missing or not executable here\n"
        )
