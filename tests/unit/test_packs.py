"""Packs (backends/packs.py) against the in-memory Slurm of test_batch_poll: jobs handed
over together with the same options go in as one array, each watched, cancelled and
found again as its own task; the real cluster runs them in tests/integration/test_slurm.py."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from test_batch_poll import BASE, World, job, make, run

from jobgate.backends.base import Submitted
from jobgate.backends.packs import parse_marker
from jobgate.errors import SubmitError
from jobgate.states import JobState, StopReason
from jobgate.transports.base import CommandResult

S = JobState


async def submit_all(backend: Any, jobs: list[Any]) -> list[Any]:
    return await asyncio.gather(*(backend.submit(j) for j in jobs), return_exceptions=True)


def sbatch_calls(world: World) -> list[list[str]]:
    return [c for c in world.calls if c[0] == "sbatch"]


def test_jobs_handed_over_together_go_in_as_one_array_per_set_of_options() -> None:
    async def scenario() -> None:
        backend, world, _, _ = make(allowed_directives=["--hold"])
        plain = [job(i, state=S.STAGING_IN) for i in range(5)]
        wide = [job(i, state=S.STAGING_IN, resources={"cpus_per_task": 2}) for i in (5, 6)]
        array = job(7, state=S.STAGING_IN, resources={"array": "0-1"})
        held = job(8, state=S.STAGING_IN, resources={"directives": ["--hold"]})
        results = await submit_all(backend, [*plain, *wide, array, held])
        ids = [r.native_id for r in results]
        assert len(sbatch_calls(world)) == 4  # two packs, and the two that go alone
        packs = {i.partition("_")[0] for i in ids[:5]}, {i.partition("_")[0] for i in ids[5:7]}
        assert all(len(p) == 1 for p in packs) and packs[0] != packs[1]
        assert [i.partition("_")[2] for i in ids[:7]] == ["0", "1", "2", "3", "4", "0", "1"]
        assert ids[7].isdigit() and ids[8].isdigit()  # an array of its own; raw directives
        assert backend.tracked() == 9
        for i, j in enumerate(plain):  # the marker that finds it after a crash
            marker = world.files[f"/runs/{j.id}/jobgate.pack"].decode()
            assert marker == f"jobgate-pack-JOB00000 {i}\n"
        script = world.files["/runs/JOB00000/jobgate-pack.sh"].decode()
        assert "#SBATCH --array=0-4\n" in script
        assert "#SBATCH --job-name=jobgate-pack-JOB00000\n" in script
        order = [script.index(f"  /runs/{j.id}\n") for j in plain]
        assert order == sorted(order)  # task N runs job N
        assert all(f"  jobgate-{j.id}\n" in script for j in plain)
        assert "--comment" not in script and "--cpus-per-task" not in script
        wide_script = world.files["/runs/JOB00005/jobgate-pack.sh"].decode()
        assert "#SBATCH --cpus-per-task=2\n" in wide_script and "--array=0-1\n" in wide_script
        own = world.files["/runs/JOB00005/jobgate.sh"].decode()  # each job's wrapper is whole
        assert "#SBATCH --job-name=jobgate-JOB00005\n" in own

    run(scenario())


def test_a_lone_job_goes_alone_under_its_own_name() -> None:
    async def scenario() -> None:
        backend, world, _, _ = make()
        [submitted] = await submit_all(backend, [job(1, state=S.STAGING_IN)])
        assert submitted.native_id == "101" and "/runs/JOB00001/jobgate.pack" not in world.files
        wrapper = "/runs/JOB00001/jobgate.sh"
        assert sbatch_calls(world) == [["sbatch", "--parsable", "--export=ALL", wrapper]]

    run(scenario())


def test_packs_hold_at_most_pack_jobs() -> None:
    async def scenario() -> None:
        backend, _, _, _ = make(pack_jobs=3)
        results = await submit_all(backend, [job(i, state=S.STAGING_IN) for i in range(7)])
        arrays = [r.native_id.partition("_")[0] for r in results]
        assert [arrays.count(a) for a in dict.fromkeys(arrays)] == [3, 3, 1]
        assert results[6].native_id.isdigit()  # the last one alone: no array of one

    run(scenario())


def test_packed_jobs_are_watched_and_cancelled_as_their_own_tasks() -> None:
    async def scenario() -> None:
        backend, world, sink, clock = make()
        jobs = [job(i, state=S.STAGING_IN) for i in range(3)]
        await submit_all(backend, jobs)
        world.queue["101_0"] = ("COMPLETED", 0)
        world.files["/runs/JOB00000/exitcode"] = b"0\n"
        world.queue["101_1"] = ("FAILED", 2 << 8)
        world.files["/runs/JOB00001/exitcode"] = b"2\n"
        await backend.poller.poll()
        [status] = world.status_calls()
        assert status[status.index("-j") + 1] == "101_0,101_1,101_2"  # one command for all
        assert sink.final("JOB00000").state == S.COMPLETED
        failed = sink.final("JOB00001")
        assert (failed.state, failed.exit_code) == (S.FAILED, 2)
        assert [i for i, o in sink.reports if i == "JOB00002"] == []  # still pending
        await backend.stop(jobs[2], StopReason.CANCEL)
        assert ["scancel", "101_2"] in world.calls  # its task alone, not the whole pack
        del world.queue["101_2"]  # Slurm forgets a task cancelled while pending: no record
        clock.now += BASE
        await backend.poller.poll()
        cancelled = sink.final("JOB00002")
        assert (cancelled.state, cancelled.reason) == (S.CANCELLED, "cancelled on request")
        assert backend.tracked() == 0

    run(scenario())


def test_a_packed_job_is_found_after_a_crash_and_a_pack_that_never_went_in_is_not() -> None:
    async def scenario() -> None:
        backend, world, _, _ = make()
        jobs = [job(i, state=S.STAGING_IN) for i in range(2)]
        await submit_all(backend, jobs)
        found = await backend.find(jobs[1])
        assert found is not None and found.native_id == "101_1"
        world.files["/runs/JOB00009/jobgate.sh"] = b"#!/bin/bash\n"  # staged, marked,
        world.files["/runs/JOB00009/jobgate.pack"] = b"jobgate-pack-JOB00008 1\n"  # never submitted
        assert await backend.find(job(9, state=S.STAGING_IN)) is None

    run(scenario())


@pytest.mark.parametrize("refusal", ["refused", "staging"])
def test_a_refused_pack_fails_its_jobs_and_a_job_that_cannot_be_staged_leaves_it(
    refusal: str,
) -> None:
    async def scenario() -> None:
        backend, world, _, _ = make()
        sbatch, write = world._sbatch, world.write_file

        async def refuse(script: str) -> CommandResult:
            if refusal == "refused":
                return CommandResult(1, "", "sbatch: error: Invalid qos specification")
            return await sbatch(script)

        async def disk_full(path: str, data: bytes, mode: int = 0o644) -> None:
            if path == "/runs/JOB00001/script.sh":
                raise OSError(28, "No space left on device", path)
            await write(path, data, mode)

        world._sbatch = refuse  # type: ignore[method-assign]
        world.write_file = disk_full  # type: ignore[method-assign]
        results = await submit_all(backend, [job(i, state=S.STAGING_IN) for i in range(3)])
        assert isinstance(results[1], SubmitError) and "No space left" in str(results[1])
        others = [results[0], results[2]]
        if refusal == "refused":  # the pack, then each alone: each learns its own answer
            assert all(isinstance(r, SubmitError) and "Invalid qos" in str(r) for r in others)
            assert backend.tracked() == 0 and len(sbatch_calls(world)) == 3
            assert backend._packer._most == 100  # the jobs were refused, not packs
        else:  # the other two still go in, as a pack of two
            assert all(isinstance(r, Submitted) for r in others)
            assert [r.native_id for r in others] == ["101_0", "101_1"]
            assert len(sbatch_calls(world)) == 1

    run(scenario())


def test_a_site_that_refuses_arrays_gets_each_job_alone_from_then_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        backend, world, _, _ = make()
        sbatch = world._sbatch

        async def no_arrays(script: str) -> CommandResult:
            if "--array=" in world.files[script].decode():
                return CommandResult(1, "", "sbatch: error: Invalid job array specification")
            return await sbatch(script)

        world._sbatch = no_arrays  # type: ignore[method-assign]
        first = await submit_all(backend, [job(i, state=S.STAGING_IN) for i in range(3)])
        assert [r.native_id for r in first] == ["101", "102", "103"]  # each alone, in
        assert len(sbatch_calls(world)) == 4  # the refused pack, then three alone
        later = await submit_all(backend, [job(i, state=S.STAGING_IN) for i in range(3, 6)])
        assert all(r.native_id.isdigit() for r in later)
        assert len(sbatch_calls(world)) == 7  # no second pack tried
        assert backend.tracked() == 6

    with caplog.at_level(logging.WARNING, "jobgate.backends.packs"):
        run(scenario())
    assert "each job goes alone from now on" in caplog.text


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (b"jobgate-pack-01ABC 7\n", ("jobgate-pack-01ABC", 7)),
        (b"someone-else 3\n", None),  # the job may write there: only a pack's name counts
        (b"jobgate-pack-01ABC,other 1\n", None),
        (b"jobgate-pack-01ABC -1\n", None),
        (b"\xff\xfe", None),
        (b"", None),
    ],
)
def test_a_marker_is_read_only_as_a_packs_name_and_index(
    text: bytes, parsed: tuple[str, int] | None
) -> None:
    assert parse_marker(text) == parsed
