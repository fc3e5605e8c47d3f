"""PBS, both flavors: job scripts against golden files; parsers against real output of Slurm's
Torque wrappers and synthetic PBS Pro / Torque samples (see tests/data/pbs/README.md)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Literal

import pytest
from test_slurm_scheduler import check_golden, job_script, record

from jobgate.backends.batch_scheduler import Phase
from jobgate.backends.pbs import PBSScheduler, exit_status, parse_qstat_f
from jobgate.config import Destination
from jobgate.errors import SchedulerUnavailable, SpecError, SubmitError
from jobgate.spec import Resources
from jobgate.states import JobState
from jobgate.transports.base import CommandResult

DATA = Path(__file__).parent.parent / "data" / "pbs"
NASTY = "it's $(touch /tmp/pwned) `id` ; rm -rf ~"
S = JobState


def pbs(flavor: Literal["pbspro", "torque"]) -> PBSScheduler:
    return PBSScheduler(Destination(name="pbs", scheduler="pbs", flavor=flavor))


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def recorded_ids() -> dict[str, str]:
    return dict(word.split("=") for word in recorded("jobs.txt").split())


RESOURCES = {
    "nodes": 2,
    "tasks": 8,
    "cpus_per_task": 2,
    "memory": "4G",
    "gpus": 1,
    "walltime": "36:00:00",
    "partition": "workq",
    "account": "proj-1",
    "exclusive": True,
    "directives": ["-m abe", "-r n"],
}


@pytest.mark.parametrize(
    ("name", "flavor", "spec"),
    [
        (
            "pbs-pbspro.sh",
            "pbspro",
            {"script": "echo hi", "resources": RESOURCES, "environment": {"NASTY": NASTY}},
        ),
        (
            "pbs-torque.sh",
            "torque",
            {"script": "echo hi", "resources": {**RESOURCES, "constraint": "bigmem"}},
        ),
        (
            "pbs-array.sh",
            "pbspro",
            {"executable": "/bin/hostname", "resources": {"array": "0-9%2", "walltime": 30}},
        ),
    ],
)
def test_job_script_matches_golden(
    name: str, flavor: Literal["pbspro", "torque"], spec: dict[str, object]
) -> None:
    text = job_script(pbs(flavor), record("pbs", **spec))
    check_golden(name, text)
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_walltime_is_hh_mm_ss_and_resources_per_flavor() -> None:
    job = record("pbs", script="x", resources={"walltime": 3600, "tasks": 4, "memory": "1G"})
    pro, torque = job_script(pbs("pbspro"), job), job_script(pbs("torque"), job)
    assert "#PBS -l walltime=01:00:00\n" in pro and "#PBS -l walltime=01:00:00\n" in torque
    assert "#PBS -l select=1:ncpus=4:mpiprocs=4:mem=1024mb\n" in pro
    assert "#PBS -l nodes=1:ppn=4\n#PBS -l mem=1024mb\n" in torque


@pytest.mark.parametrize(
    ("flavor", "resources", "field"),
    [
        ("torque", {"qos": "high"}, "resources.qos"),
        ("pbspro", {"constraint": "a100"}, "resources.constraint"),
        ("torque", {"constraint": "a|b"}, "resources.constraint"),
        ("pbspro", {"array": "1,3,5"}, "resources.array"),
        ("torque", {"array": "0-10:2"}, "resources.array"),
        ("torque", {"reservation": "r1"}, "resources.reservation"),
        ("pbspro", {"directives": ["-N other"]}, "resources.directives.0"),
        ("pbspro", {"directives": ["-l software=x", "-o /tmp/x"]}, "resources.directives.1"),
        ("torque", {"directives": ["-v A=$(id)"]}, "resources.directives.0"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    flavor: Literal["pbspro", "torque"], resources: dict[str, object], field: str
) -> None:
    with pytest.raises(SpecError) as info:
        pbs(flavor).check(Resources.model_validate(resources))
    assert info.value.field == field


def test_wrapper_qstat_live_and_final() -> None:
    torque, ids = pbs("torque"), recorded_ids()
    live = torque.parse_status_output(recorded("qstat-f-live.txt"))
    assert live[ids["held"]].phase == Phase.PENDING
    assert (live[ids["running_cancelled"]].phase, live[ids["running_cancelled"]].host) == (
        Phase.RUNNING,
        "vm",
    )
    final = torque.parse_status_output(recorded("qstat-f-final.txt"))
    # Every end is C with no exit status: ended, but how is the sidecar's to say.
    assert {(st.phase, st.outcome) for st in final.values()} == {(Phase.ENDED, None)}
    assert set(final) == set(ids.values())


def test_wrapper_errors() -> None:
    torque = pbs("torque")
    assert torque.status_error(CommandResult(153, "", "")) is None  # qstat of one unknown id
    assert torque.status_error(CommandResult(1, "", "qstat: cannot connect to server")) is not None
    assert (
        torque.parse_submit_output(CommandResult(0, recorded("qsub.txt"), ""))
        == recorded("qsub.txt").strip()
    )
    refused = recorded("qsub-refused.txt").rsplit("rc=", 1)[0]
    with pytest.raises(SubmitError, match="Invalid partition name specified"):
        torque.parse_submit_output(CommandResult(1, refused, ""))
    with pytest.raises(SchedulerUnavailable):
        torque.parse_submit_output(CommandResult(1, "", "qsub: cannot connect to server pbs01"))


# PBS Pro (synthetic): native id -> (phase, our state, exit code, signal, host)
PBSPRO = {
    "1001.pbs01": (Phase.PENDING, None, None, None, None),
    "1002.pbs01": (Phase.RUNNING, None, None, None, "node03"),
    "1003.pbs01": (Phase.ENDED, S.COMPLETED, 0, None, "node04"),
    "1004.pbs01": (Phase.ENDED, S.FAILED, 3, None, "node04"),
    "1005.pbs01": (Phase.ENDED, S.TIMEOUT, None, None, "node05"),  # Exit_status -29
    "1006.pbs01": (Phase.ENDED, S.FAILED, None, 15, "node05"),  # 271 = 256 + SIGTERM
    "1007.pbs01": (Phase.ENDED, None, None, None, None),  # deleted while queued: no status
    "1009.pbs01": (Phase.RUNNING, None, None, None, "node07"),  # E: exiting, not yet done
}


def test_pbspro_json() -> None:
    out = pbs("pbspro").parse_status_output(recorded("pbspro-qstat-fxt.json"))
    for native_id, want in PBSPRO.items():
        st = out[native_id]
        assert (st.phase, st.outcome, st.exit_code, st.signal, st.host) == want, native_id
    assert out["1001.pbs01"].reason and "Insufficient" in out["1001.pbs01"].reason
    array = out["1008[].pbs01"]
    assert {i: (t.phase, t.outcome) for i, t in array.tasks.items()} == {
        0: (Phase.ENDED, S.COMPLETED),
        1: (Phase.RUNNING, None),
        2: (Phase.PENDING, None),
    }


def test_pbspro_json_edge_cases() -> None:
    pro = pbs("pbspro")
    assert pro.parse_status_output("") == {}
    assert pro.parse_status_output('{"timestamp":1,"pbs_version":"2022","pbs_server":"s"}') == {}
    with pytest.raises(SchedulerUnavailable):
        pro.parse_status_output("qstat: some error\n")


# Torque (synthetic): native id -> (phase, our state, exit code, signal, host)
TORQUE = {
    "2001.torque01.example.org": (Phase.ENDED, S.COMPLETED, 0, None, "node07"),
    "2002.torque01.example.org": (Phase.ENDED, S.FAILED, 3, None, "node07"),
    "2003.torque01.example.org": (Phase.ENDED, S.TIMEOUT, None, None, "node08"),  # -11
    "2004.torque01.example.org": (Phase.ENDED, S.FAILED, None, 15, "node08"),
    "2005.torque01.example.org": (Phase.RUNNING, None, None, None, "node09"),
    "2006.torque01.example.org": (Phase.PENDING, None, None, None, None),
    "2007.torque01.example.org": (Phase.PENDING, None, None, None, None),
    "2008.torque01.example.org": (Phase.RUNNING, None, None, None, "node09"),
}


def test_torque_qstat_f() -> None:
    out = pbs("torque").parse_status_output(recorded("torque-qstat-f.txt"))
    assert {
        k: (v.phase, v.outcome, v.exit_code, v.signal, v.host) for k, v in out.items()
    } == TORQUE
    first = parse_qstat_f(recorded("torque-qstat-f.txt"))["2001.torque01.example.org"]
    assert first["Variable_List"].endswith("PBS_O_SERVER=torque01.example.org")  # continued
    assert first["Output_Path"].endswith("0000000001/jobgate.log")


@pytest.mark.parametrize(
    ("code", "flavor", "want"),
    [
        (0, "torque", (S.COMPLETED, 0, None, None)),
        (3, "pbspro", (S.FAILED, 3, None, None)),
        (143, "pbspro", (S.FAILED, 143, None, None)),  # the script's own code
        (265, "torque", (S.FAILED, None, 9, "killed by SIGKILL")),
        (-29, "pbspro", (S.TIMEOUT, None, None, "walltime exceeded")),
        (-11, "torque", (S.TIMEOUT, None, None, "walltime exceeded")),
        (-27, "pbspro", (S.FAILED, None, None, "out of memory")),
        (-1, "pbspro", (S.FAILED, None, None, "PBS could not run the job (exit status -1)")),
    ],
)
def test_exit_status(code: int, flavor: str, want: tuple[object, ...]) -> None:
    assert exit_status(code, flavor) == want


def test_find_by_name() -> None:
    ids = recorded_ids()
    torque, pro = pbs("torque"), pbs("pbspro")
    assert (
        torque.parse_find_output(recorded("qstat-f-final.txt"), "jobgate-rec-fail") == ids["fail"]
    )
    assert torque.parse_find_output(recorded("qstat-f-final.txt"), "jobgate-nope") is None
    text = recorded("pbspro-qstat-fxt.json")
    assert pro.parse_find_output(text, "jobgate-01JOBGATEPBSPRO000000008") == "1008[].pbs01"


def test_commands() -> None:
    assert pbs("pbspro").status_command(["1.s", "2[].s"]) == [
        "qstat",
        "-f",
        "-F",
        "json",
        "-x",
        "-t",
        "1.s",
        "2[].s",
    ]
    assert pbs("torque").status_command(["5"]) == ["qstat", "-f", "5"]  # the wrappers: no -x/-t
    assert pbs("torque").cancel_command(["5"]) == ["qdel", "5"]
