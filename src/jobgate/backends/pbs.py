"""PBS: qsub / qstat / qdel, for PBS Pro / OpenPBS (`qstat -f -F json -x`, `-l select=`) and
Torque (`qstat -f`, `-l nodes=:ppn=`), chosen by the destination's `flavor`.

An end state (`F`, `C`) says nothing about success: the Exit_status does when PBS shows it,
else the job's exit-code sidecar. Torque and Slurm's Torque wrappers keep no history.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from typing import Any

from jobgate.backends.array_spec import check_array
from jobgate.backends.base import JobFiles
from jobgate.backends.batch_scheduler import (
    BatchScheduler,
    body_context,
    job_name,
)
from jobgate.backends.batch_status import NativeStatus, Phase, StateMap
from jobgate.backends.outcome import exit_reason
from jobgate.backends.pbs_directives import PBS_DIRECTIVES
from jobgate.errors import SchedulerUnavailable, SpecError, SubmitError
from jobgate.spec import JobRecord, Resources
from jobgate.states import JobState
from jobgate.transports.base import CommandResult
from jobgate.units import format_walltime

P, R, E, S = Phase.PENDING, Phase.RUNNING, Phase.ENDED, JobState
# F and C: how it ended comes from the exit status (or the sidecar), not the state.
PBSPRO_STATES: StateMap = {
    **dict.fromkeys(["Q", "H", "W", "T"], (P, None, None)),
    **dict.fromkeys(["R", "E", "S", "U", "B"], (R, None, None)),  # B: an array, a task began
    "F": (E, None, None),
    "X": (E, None, None),  # an array task that finished
    "M": (E, S.LOST, "moved to another PBS server"),
}
TORQUE_STATES: StateMap = {
    **dict.fromkeys(["Q", "H", "W", "T"], (P, None, None)),
    **dict.fromkeys(["R", "E", "S"], (R, None, None)),
    "C": (E, None, None),
}
# Negative exit statuses are PBS's own: walltime and memory kills, failures to start.
_LIMITS = {
    "pbspro": {
        -29: (S.TIMEOUT, "walltime exceeded"),
        -27: (S.FAILED, "out of memory"),
        -26: (S.FAILED, "out of virtual memory"),
        -28: (S.FAILED, "cpu time exceeded"),
        -24: (S.FAILED, "cpu limit exceeded"),
        -25: (S.FAILED, "cpu limit exceeded"),
    },
    "torque": {
        -11: (S.TIMEOUT, "walltime exceeded"),
        -10: (S.FAILED, "out of memory"),
        -12: (S.FAILED, "cpu time exceeded"),
    },
}
_SUBJOB = re.compile(r"(\d+)\[(\d+)\](.*)")


class PBSScheduler(BatchScheduler):
    name = "pbs"
    template = "pbs.sh.j2"
    directives = PBS_DIRECTIVES
    unknown_id_codes = frozenset({153})  # PBSE_UNKJOBID (15001) as an exit status
    unknown_id_errors = ("Unknown Job Id",)
    transient_errors = (
        "cannot connect to server",
        "Connection refused",
        "Communication failure",
        "No route to host",
        "timed out",
        "pbs_iff",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flavor = self.destination.flavor
        self.states = PBSPRO_STATES if self.flavor == "pbspro" else TORQUE_STATES

    def check(self, resources: Resources) -> None:
        self.check_directives(resources)
        check_array(resources)
        if resources.qos:
            raise SpecError("resources.qos", "PBS has no QOS (use a queue)")
        pbspro = self.flavor == "pbspro"
        if resources.array and not re.fullmatch(
            r"\d+-\d+(:\d+)?(%\d+)?" if pbspro else r"[\d,-]+(%\d+)?", resources.array
        ):
            form = "'0-99', '0-99:2' or '0-99%10'" if pbspro else "'0-99', '1,3,5' or '0-99%10'"
            raise SpecError("resources.array", f"{self.flavor} arrays are written {form}")
        if pbspro and resources.constraint:
            raise SpecError(
                "resources.constraint",
                "PBS Pro has no constraint: use a custom resource in a select directive",
            )
        if (
            not pbspro
            and resources.constraint
            and not re.fullmatch(r"[\w.-]+", resources.constraint)
        ):
            raise SpecError("resources.constraint", "Torque takes one node property")
        if resources.reservation and (not pbspro or resources.partition):
            raise SpecError(
                "resources.reservation",
                "a PBS Pro reservation is its queue: "
                "give it without a partition (Torque: use directives)",
            )

    def script_context(self, job: JobRecord, res: Resources, files: JobFiles) -> dict[str, Any]:
        nodes = res.nodes or 1
        per_node = math.ceil((res.tasks or nodes) / nodes)
        cpus = per_node * (res.cpus_per_task or 1)
        sized = any((res.nodes, res.tasks, res.cpus_per_task, res.memory_mb, res.gpus))
        if self.flavor == "pbspro":
            chunk = [str(nodes), f"ncpus={cpus}", f"mpiprocs={per_node}"]
            chunk += [f"ompthreads={res.cpus_per_task}"] if res.cpus_per_task else []
            chunk += [f"mem={res.memory_mb}mb"] if res.memory_mb else []
            chunk += [f"ngpus={res.gpus}"] if res.gpus else []
            resources = [f"select={':'.join(chunk)}"] if sized else []
            resources += ["place=excl"] if res.exclusive else []
        else:
            spec = [f"nodes={nodes}", f"ppn={cpus}"] + ([f"gpus={res.gpus}"] if res.gpus else [])
            spec += [res.constraint] if res.constraint else []
            resources = [":".join(spec)] if sized or res.constraint else []
            resources += [f"mem={res.memory_mb * nodes}mb"] if res.memory_mb else []
        if res.walltime_s:
            resources.append(f"walltime={format_walltime(res.walltime_s)}")
        task_var = "${PBS_ARRAY_INDEX:-${PBS_ARRAYID:-${SLURM_ARRAY_TASK_ID:?not an array task}}}"
        return {
            "res": res,
            "name": job_name(job),
            "log": files.marker("jobgate.log"),
            "resources": resources,
            "queue": res.partition or res.reservation,
            "array_option": "-J" if self.flavor == "pbspro" else "-t",
            "exclusive_flag": res.exclusive and self.flavor == "torque",
            **body_context(task_var),
        }

    # -- commands ---------------------------------------------------------------------------

    def submit_command(self, script_path: str, files: JobFiles) -> list[str]:
        # On the command line too: Slurm's qsub wrapper ignores #PBS -o in the script.
        log = files.marker("jobgate.log")
        # -v, never -V: PBS gives the job only its PBS_O_* and this variable (the wrapper
        # sets the rest); Slurm's qsub wrapper makes it --export=none, and without any -v
        # would pass the job the gateway's whole environment. The run directory is named
        # by the job id: a ULID, nothing for -v's comma list or the wrapper's shell to read.
        own = f"JOBGATE_JOB_ID={posixpath.basename(files.run_dir)}"
        return ["qsub", "-j", "oe", "-o", log, "-v", own, script_path]

    def parse_submit_output(self, result: CommandResult) -> str:
        if result.returncode != 0:
            raise self.submit_failure(result)
        lines = result.stdout.strip().splitlines()
        native_id = lines[-1].strip() if lines else ""
        if not re.fullmatch(r"\d+(\[\d*\])?(\.[\w.-]+)?", native_id):
            raise SubmitError(f"qsub printed no job id: {result.stdout.strip()[:200]!r}")
        return native_id

    def status_command(self, native_ids: list[str]) -> list[str]:
        if self.flavor == "pbspro":  # -x: finished jobs too; -t: array tasks one by one
            return ["qstat", "-f", "-F", "json", "-x", "-t", *native_ids]
        return ["qstat", "-f", *native_ids]

    def parse_status_output(self, text: str) -> dict[str, NativeStatus]:
        out: dict[str, NativeStatus] = {}
        for native_id, attrs in self._records(text).items():
            st = self._status(attrs)
            sub = _SUBJOB.fullmatch(native_id)
            if sub:
                parent = f"{sub.group(1)}[]{sub.group(3)}"
                out.setdefault(parent, NativeStatus(Phase.PENDING, "B")).tasks[
                    int(sub.group(2))
                ] = st
            else:
                st.tasks = out[native_id].tasks if native_id in out else {}
                out[native_id] = st
        return out

    def cancel_command(self, native_ids: list[str]) -> list[str]:
        return ["qdel", *native_ids]

    def find_commands(self, name: str, since_s: float) -> list[list[str]]:
        if self.flavor == "pbspro":
            return [["qstat", "-f", "-F", "json", "-x"]]
        return [["qstat", "-f"]]

    def parse_find_output(self, text: str, name: str) -> str | None:
        for native_id, attrs in self._records(text).items():
            if attrs.get("Job_Name") == name and not _SUBJOB.fullmatch(native_id):
                return native_id
        return None

    # -- parsing ----------------------------------------------------------------------------

    def _records(self, text: str) -> dict[str, dict[str, Any]]:
        if self.flavor == "torque":
            return parse_qstat_f(text)
        if not text.strip():
            return {}
        try:
            jobs = json.loads(text).get("Jobs", {})
        except (ValueError, AttributeError) as exc:
            raise SchedulerUnavailable(f"qstat printed no JSON: {exc}") from None
        return {k: v for k, v in jobs.items() if isinstance(v, dict)}

    def _status(self, attrs: dict[str, Any]) -> NativeStatus:
        host = str(attrs.get("exec_host") or "").split("/")[0] or None
        st = self.classify(str(attrs.get("job_state", "")), host=host)
        raw = attrs.get("Exit_status", attrs.get("exit_status"))
        code = int(str(raw)) if str(raw).lstrip("-").isdigit() else None
        if st.phase == Phase.ENDED and st.outcome is None and code is not None:
            st.outcome, st.exit_code, st.signal, st.reason = exit_status(code, self.flavor)
        elif st.phase == Phase.PENDING and attrs.get("comment"):
            st.reason = str(attrs["comment"])
        return st


def exit_status(code: int, flavor: str) -> tuple[JobState, int | None, int | None, str | None]:
    """(state, exit code, signal, reason) from a PBS exit status: the script's own code,
    256 + a signal, or one of PBS's negative codes."""
    if code < 0:
        state, reason = _LIMITS.get(flavor, {}).get(
            code, (S.FAILED, f"PBS could not run the job (exit status {code})")
        )
        return state, None, None, reason
    if code >= 256:
        return S.FAILED, None, code - 256, exit_reason(None, code - 256)
    return (S.COMPLETED if code == 0 else S.FAILED), code, None, None


def parse_qstat_f(text: str) -> dict[str, dict[str, Any]]:
    """`qstat -f` (Torque, or PBS without JSON): "Job Id: N" then "key = value" lines;
    a long value goes on in lines without " = " (Torque wraps them with a tab)."""
    records: dict[str, dict[str, Any]] = {}
    attrs: dict[str, Any] = {}
    key = None
    for line in text.splitlines():
        if line.startswith("Job Id:"):
            attrs, key = {}, None
            records[line.split(":", 1)[1].strip()] = attrs
        elif " = " in line and not line.startswith(("\t\t", "        ")):
            key, _, value = line.strip().partition(" = ")
            attrs[key] = value.strip()
        elif key and line.strip():
            attrs[key] += line.strip()
    return records
