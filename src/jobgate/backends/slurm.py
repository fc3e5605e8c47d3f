"""Slurm: sbatch / squeue / sacct / scancel, and every resource as an #SBATCH directive.

Status is `squeue -t all -r` (finished jobs stay listed for MinJobAge, array tasks one per
line), with the exit code as a wait status; jobs that left it are asked about in `sacct`.
"""

from __future__ import annotations

import re
from typing import Any

from jobgate.backends.array_spec import array_indices, check_array
from jobgate.backends.base import JobFiles
from jobgate.backends.batch_scheduler import (
    BatchScheduler,
    body_context,
    job_name,
)
from jobgate.backends.batch_status import NativeStatus, Phase, StateMap
from jobgate.backends.slurm_directives import SLURM_DIRECTIVES
from jobgate.errors import SubmitError
from jobgate.spec import JobRecord, Resources
from jobgate.states import JobState
from jobgate.transports.base import CommandResult
from jobgate.units import format_walltime

SQUEUE_FIELDS = "ArrayJobID:|,ArrayTaskID:|,JobID:|,State:|,Reason:|,exit_code:|,BatchHost:|"
SACCT_FIELDS = "JobID,JobIDRaw,State,ExitCode,NodeList"
# The exit status is the job's own only in these end states (CANCELLED, TIMEOUT show 0:0).
_EXIT_MEANINGFUL = frozenset({"COMPLETED", "FAILED", "OUT_OF_MEMORY"})

P, R, E, S = Phase.PENDING, Phase.RUNNING, Phase.ENDED, JobState
STATES: StateMap = {
    **dict.fromkeys(
        [
            "PENDING",
            "CONFIGURING",
            "REQUEUED",
            "REQUEUE_HOLD",
            "REQUEUE_FED",
            "RESV_DEL_HOLD",
            "SPECIAL_EXIT",
        ],
        (P, None, None),
    ),
    **dict.fromkeys(
        ["RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"],
        (R, None, None),
    ),
    "COMPLETED": (E, S.COMPLETED, None),
    "FAILED": (E, S.FAILED, None),  # the reason comes from the exit code
    "CANCELLED": (E, S.CANCELLED, None),
    "TIMEOUT": (E, S.TIMEOUT, "walltime exceeded"),
    "OUT_OF_MEMORY": (E, S.FAILED, "out of memory"),
    "NODE_FAIL": (E, S.FAILED, "node failure"),
    "PREEMPTED": (E, S.FAILED, "preempted"),
    "BOOT_FAIL": (E, S.FAILED, "node boot failure"),
    "DEADLINE": (E, S.TIMEOUT, "deadline reached (--deadline)"),
    "REVOKED": (E, S.LOST, "revoked: a sibling cluster of the federation ran it"),
}


class SlurmScheduler(BatchScheduler):
    name = "slurm"
    template = "slurm.sh.j2"
    pack_template = "slurm_pack.sh.j2"
    states = STATES
    directives = SLURM_DIRECTIVES
    unknown_id_errors = ("Invalid job id specified",)  # squeue -j <one unknown id>
    transient_errors = (
        "Unable to contact slurm controller",
        "Socket timed out",
        "temporarily unable",
        "Communication connection failure",
        "Zero Bytes were transmitted",
    )

    def check(self, resources: Resources) -> None:
        self.check_directives(resources)
        check_array(resources)

    def script_context(self, job: JobRecord, res: Resources, files: JobFiles) -> dict[str, Any]:
        run_dir = files.run_dir.replace("%", "%%")  # --output expands %j, %a, ...
        return {
            "res": res,
            "name": job_name(job),
            "log": f"{run_dir}/jobgate-%a.log" if res.array else f"{run_dir}/jobgate.log",
            "walltime": format_walltime(res.walltime_s) if res.walltime_s else None,
            # sbatch drops backslashes even inside quotes: keep the comment plain
            "comment": job.spec.name.replace("\\", "/") if job.spec.name else None,
            **body_context("${SLURM_ARRAY_TASK_ID:?not an array task}"),
        }

    # -- commands ---------------------------------------------------------------------------

    def submit_command(self, script_path: str, files: JobFiles) -> list[str]:
        # sbatch runs from `env -i` with the job's base (BatchBackend.submit), so ALL
        # exports only that. Not NONE: it has slurmd load the user's login environment
        # (`su -`) before each job, one at a time: half the job rate of the test cluster.
        return ["sbatch", "--parsable", "--export=ALL", script_path]

    def parse_submit_output(self, result: CommandResult) -> str:
        if result.returncode != 0:
            raise self.submit_failure(result)
        lines = result.stdout.strip().splitlines()
        m = re.fullmatch(r"(\d+)(?:;[\w.-]+)?", lines[-1].strip() if lines else "")
        if not m:
            raise SubmitError(f"sbatch printed no job id: {result.stdout.strip()[:200]!r}")
        return m.group(1)

    def status_command(self, native_ids: list[str]) -> list[str]:
        return ["squeue", "-h", "-t", "all", "-r", "-j", ",".join(native_ids), "-O", SQUEUE_FIELDS]

    def parse_status_output(self, text: str) -> dict[str, NativeStatus]:
        out: dict[str, NativeStatus] = {}
        for line in text.splitlines():
            cols = line.split("|")
            if len(cols) < 7 or not cols[0].strip():
                continue
            array_id, task, _, state, reason, raw, host = (c.strip() for c in cols[:7])
            code, sig = _wait_status(raw)
            st = self._status(state, code, sig, host, reason)
            _place(out, array_id, None if task == "N/A" else task, st)
        return out

    def accounting_command(self, native_ids: list[str], since_s: float) -> list[str] | None:
        return [
            "sacct",
            "-X",
            "-P",
            "-n",
            "-S",
            _since(since_s),
            "-j",
            ",".join(native_ids),
            "-o",
            SACCT_FIELDS,
        ]

    def parse_accounting_output(self, text: str) -> dict[str, NativeStatus]:
        out: dict[str, NativeStatus] = {}
        for line in text.splitlines():  # later lines win: requeued or reused ids
            cols = line.split("|")
            if len(cols) < 5 or not cols[0].strip():
                continue
            job_id, _, state, exit_code, nodes = (c.strip() for c in cols[:5])
            code, _, sig = exit_code.partition(":")
            host = None if nodes.startswith("None") else nodes
            st = self._status(state.split(" ")[0], _int(code), _int(sig), host, None)
            array_id, _, task = job_id.partition("_")
            _place(out, array_id, task.strip("[]") or None, st)
        return out

    def accounting_disabled(self, result: CommandResult) -> bool:
        return "accounting storage is disabled" in result.stderr + result.stdout

    def cancel_command(self, native_ids: list[str]) -> list[str]:
        return ["scancel", *native_ids]

    def find_commands(self, name: str, since_s: float) -> list[list[str]]:
        return [
            ["squeue", "-h", "-t", "all", "-n", name, "-o", "%F"],
            ["sacct", "-X", "-P", "-n", "-S", _since(since_s), "--name", name, "-o", "JobID"],
        ]

    def parse_find_output(self, text: str, name: str) -> str | None:
        for line in text.splitlines():
            job_id = line.strip().partition("_")[0]
            if job_id.isdigit():
                return job_id
        return None

    def _status(
        self, state: str, code: int | None, sig: int | None, host: str | None, reason: str | None
    ) -> NativeStatus:
        meaningful = state in _EXIT_MEANINGFUL
        st = self.classify(
            state,
            exit_code=code if meaningful and not sig else None,
            signal=sig or None,
            host=host if host not in (None, "", "n/a") else None,
        )
        if st.phase == Phase.PENDING and reason and reason != "None":
            st.reason = reason  # why it waits (Resources, JobHeldUser, ...)
        return st


def _place(out: dict[str, NativeStatus], job_id: str, task: str | None, st: NativeStatus) -> None:
    """File a row under its job; array task rows (a range while still pending) as tasks."""
    if task is None:
        tasks = out[job_id].tasks if job_id in out else {}
        out[job_id] = st
        st.tasks = tasks
        return
    parent = out.setdefault(job_id, NativeStatus(Phase.PENDING, "ARRAY"))
    for index in array_indices(task):
        parent.tasks[index] = st
    phases = {t.phase for t in parent.tasks.values()}
    parent.phase = (
        Phase.RUNNING
        if Phase.RUNNING in phases
        else Phase.ENDED
        if phases == {Phase.ENDED}
        else Phase.PENDING
    )


def _wait_status(raw: str) -> tuple[int | None, int | None]:
    """squeue's exit_code is a wait(2) status: exit code in the high byte, signal low."""
    value = _int(raw)
    return (None, None) if value is None else (value >> 8 & 0xFF, value & 0x7F)


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


def _since(age_s: float) -> str:
    """A start for sacct relative to the cluster's clock (no time zones), an hour early."""
    return f"now-{int(age_s) + 3600}"
