"""jobgate jobs as TES tasks, in the three views: MINIMAL (id, state), BASIC (all but
executors' stdout/stderr, inputs' content and system_logs), FULL (all). States from
the job's (docs/tes.md): an executor's non-zero exit is EXECUTOR_ERROR; what kept the
task from running its executors (submit, staging, a lost job, a failed output) is
SYSTEM_ERROR."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from jobgate.api.tes.script import LOG, inside
from jobgate.api.tes.tasks import TASK_FILE
from jobgate.errors import JobgateError
from jobgate.service import JobService
from jobgate.spec import JobRecord
from jobgate.states import JobState, StopReason

TAIL = 64 * 1024  # of each executor's stdout and stderr, in the FULL view
_S = JobState
_STATE = {
    _S.NEW: "QUEUED", _S.QUEUED: "QUEUED", _S.SUBMITTED: "QUEUED", _S.STAGING_IN: "INITIALIZING",
    _S.RUNNING: "RUNNING", _S.STAGING_OUT: "RUNNING", _S.COMPLETED: "COMPLETE",
    _S.CANCELLED: "CANCELED", _S.TIMEOUT: "SYSTEM_ERROR", _S.REJECTED: "SYSTEM_ERROR",
    _S.LOST: "SYSTEM_ERROR",
}  # fmt: skip
STAGED = frozenset({_S.RUNNING, _S.STAGING_OUT, *(s for s in JobState if s.final)})


def tes_state(job: JobRecord, results: dict[str, Any] | None = None) -> str:
    if not job.state.final and job.stop_reason == StopReason.CANCEL:
        return "CANCELING"
    if "PREEMPT" in (job.reason or "").upper():
        return "PREEMPTED"
    if job.state == _S.FAILED:
        return "EXECUTOR_ERROR" if job.exit_code not in (None, 126, 127) else "SYSTEM_ERROR"
    if job.state == _S.COMPLETED and results and results.get("tes_errors"):
        return "SYSTEM_ERROR"
    return _STATE[job.state]


class TaskViews:
    def __init__(self, service: JobService) -> None:
        self.service = service
        self._docs: OrderedDict[str, dict[str, Any]] = OrderedDict()  # task documents: immutable

    async def render(
        self, job: JobRecord, view: str, results: dict[str, Any] | None
    ) -> dict[str, Any]:
        state = tes_state(job, results)
        if view == "MINIMAL":
            return {"id": job.id, "state": state}
        doc = dict(await self._doc(job))
        notes = doc.pop("system_logs", [])
        task: dict[str, Any] = {"id": job.id, "state": state, **doc}
        task["creation_time"] = job.created_at.isoformat()
        if view == "FULL":
            await self._contents(job, task)
        if job.state in STAGED or job.started_at is not None:
            task["logs"] = [await self._log(job, task, view, notes, results or {})]
        return task

    async def _doc(self, job: JobRecord) -> dict[str, Any]:
        if job.id not in self._docs:
            if job.state in STAGED:
                raw = await self._read(job, TASK_FILE, None)
            else:  # not staged yet: the kept upload, on this host
                source = next(f.source for f in job.spec.input_files if f.target == TASK_FILE)
                raw = Path(source).read_bytes()
            self._docs[job.id] = json.loads(raw)
            while len(self._docs) > 10_000:
                self._docs.popitem(last=False)
        return self._docs[job.id]

    async def _contents(self, job: JobRecord, task: dict[str, Any]) -> None:
        """FULL: each input given by content, read back from where it was staged."""
        inputs = [dict(i) for i in task.get("inputs", [])]
        for item in inputs:
            if not item.get("url") and item.get("type", "FILE") == "FILE":
                item["content"] = await self._text(job, inside(item["path"]), None)
        task["inputs"] = inputs

    async def _log(
        self,
        job: JobRecord,
        task: dict[str, Any],
        view: str,
        notes: list[str],
        results: dict[str, Any],
    ) -> dict[str, Any]:
        executors = await self._executors(job, task, view)
        log: dict[str, Any] = {
            "logs": executors,
            "outputs": results.get("tes_outputs", []),
            "metadata": {
                "jobgate_id": job.id,
                "destination": job.destination,
                "native_id": job.native_id or "",
            },
        }
        if job.started_at is not None:
            log["start_time"] = job.started_at.isoformat()
        if job.finished_at is not None:
            log["end_time"] = job.finished_at.isoformat()
        if view == "FULL":
            reason = [f"{job.state.value}: {job.reason}"] if job.reason else []
            log["system_logs"] = [*notes, *reason, *results.get("tes_errors", [])]
        return log

    async def _executors(
        self, job: JobRecord, task: dict[str, Any], view: str
    ) -> list[dict[str, Any]]:
        lines = (await self._text(job, LOG, None) or "").splitlines()
        starts = {
            p[1]: p[2] for p in (line.split() for line in lines) if len(p) == 3 and p[0] == "start"
        }
        out = []
        for parts in (line.split() for line in lines):
            if len(parts) != 4 or parts[0] != "end" or not parts[2].lstrip("-").isdigit():
                continue
            i = int(parts[1])
            entry: dict[str, Any] = {"exit_code": int(parts[2]), "end_time": parts[3]}
            if parts[1] in starts:
                entry["start_time"] = starts[parts[1]]
            if view == "FULL" and i < len(task.get("executors", [])):
                e = task["executors"][i]
                for stream in ("stdout", "stderr"):
                    path = inside(e[stream]) if e.get(stream) else f".tes/{i}.{stream}"
                    entry[stream] = await self._text(job, path, TAIL) or ""
            out.append(entry)
        return out

    async def _text(self, job: JobRecord, path: str, tail: int | None) -> str | None:
        try:
            return (await self._read(job, path, tail)).decode(errors="replace")
        except JobgateError:
            return None

    async def _read(self, job: JobRecord, path: str, tail: int | None) -> bytes:
        reader = await self.service.files.open(job, path)
        chunks, offset = [], 0
        try:  # kept to the last `tail` bytes as it is read: a big log costs no memory
            while chunk := await reader.read(offset, 1 << 20):
                offset += len(chunk)
                chunks.append(chunk)
                if tail is not None:
                    chunks = [b"".join(chunks)[-tail:]]
        finally:
            await reader.close()
        return b"".join(chunks)
