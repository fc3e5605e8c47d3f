"""From a job file in `pending/` to a job: claimed in the store first (exactly once, on
queue, key and version), then validated, submitted (with an idempotency key made of the
claim, so a gateway that dies half way and the next one make one job), then removed from
`pending/`. Blocking: runs in a thread beside the file system (fsspec is synchronous)."""

from __future__ import annotations

import getpass
import hashlib
import logging
import posixpath
import shlex
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jobgate.config import QueueConfig
from jobgate.errors import JobgateError
from jobgate.service import JobService
from jobgate.service.queues import Item
from jobgate.spec import JobRecord

log = logging.getLogger(__name__)
TAKERS = 8  # job files taken side by side in one pass
VALIDATOR_TIMEOUT_S = 60.0


class Claims:
    def __init__(self, service: JobService, q: QueueConfig, fs: Any, root: str) -> None:
        self.service, self.q, self.fs, self.root = service, q, fs, root.rstrip("/")
        self.owner = q.owner or getpass.getuser()

    def poll(self) -> int:
        """One listing of pending/: claims and submits each new job file. How many."""
        pending = f"{self.root}/pending"
        self.fs.invalidate_cache(pending)  # an object store's listing is cached otherwise
        try:
            entries = [e for e in self.fs.ls(pending, detail=True) if e.get("type") == "file"]
        except FileNotFoundError:
            self.fs.makedirs(pending, exist_ok=True)
            entries = []
        keys = [(posixpath.basename(e["name"]), _version(e)) for e in entries]
        taken = self.service.queue_items.claimed_now(self.q.name, keys)
        mine = []
        for entry, (key, version) in zip(entries, keys, strict=True):
            if (key, version) in taken or key.startswith("."):
                continue
            item = self.service.queue_items.claim_now(self.q.name, key, version)
            if item is not None:
                mine.append((item, entry["name"]))
        # Each is a read, a submission and a delete, mostly waiting on the store and the
        # object store: side by side.
        with ThreadPoolExecutor(TAKERS, thread_name_prefix=f"jobgate-queue-{self.q.name}") as pool:
            list(pool.map(lambda claimed: self._take(*claimed), mine))
        self._take_up_stale()
        return len(mine)

    def _take(self, item: Item, path: str) -> None:
        key = item.key
        idem = _idempotency_key(self.q.name, key, item.version)
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:  # removed after its job was made: find that job
            job = self.service.queue_items.find_now(self.owner, idem)
            if job is not None:
                self.service.queue_items.submitted_now(item, job.id)
            return
        job = self._submit(key, data, idem)
        self.service.queue_items.submitted_now(item, job.id)
        self.fs.rm_file(path)
        log.info("queue %s: %s is job %s (%s)", self.q.name, key, job.id, job.state.value)

    def _take_up_stale(self) -> None:
        for item in self.service.queue_items.items_now(self.q.name, "claimed"):
            if time.time() - item.claimed_at > self.q.claim_timeout_s:
                self._take(item, f"{self.root}/pending/{item.key}")

    def _submit(self, key: str, data: bytes, idem: str) -> JobRecord:
        spec = self._spec(key, data, idem)
        refused = self._refusal(key, data)
        if refused is not None:
            return self.service.reject_now(spec, self.owner, refused)
        record, _ = self.service.submit_now(spec, self.owner)
        return record

    def _spec(self, key: str, data: bytes, idem: str) -> dict[str, Any]:
        role, cluster = shlex.quote(self.q.role), shlex.quote(self.q.cluster_name)
        inputs = [{"source": self.service.files.keep(data), "target": "job"}]
        runner = self._hook(self.q.runner, "process-job")
        if runner is not None:
            inputs.append({"source": self.service.files.keep(runner), "target": "process-job"})
            run = "mkdir -p output && chmod +x ./process-job && exec ./process-job ./job output"
            run = f"{run} {role} {cluster}"
        else:
            run = f"chmod +x ./job && exec ./job {role} {cluster}"
        return {
            "name": key[:200],
            "script": f"{run}\n",
            "input_files": inputs,
            "destination": self.q.destination,
            "labels": {"queue": self.q.name, "queue_key": key[:500]},
            "idempotency_key": idem,
        }

    def _refusal(self, key: str, data: bytes) -> str | None:
        """Why the job file may not run (None: it may): empty, too large, or what a
        refusing validator printed."""
        if not data:
            return "the job file is empty"
        if len(data) > self.q.max_job_bytes:
            return (
                f"the job file has {len(data):,} bytes, over max_job_bytes {self.q.max_job_bytes:,}"
            )
        validator = self._hook(self.q.validator, "validate-job")
        if validator is None:
            return None
        with tempfile.TemporaryDirectory(prefix="jobgate-validate-") as tmp:
            job, hook, out = Path(tmp, "job"), Path(tmp, "validate-job"), Path(tmp, "output")
            job.write_bytes(data)
            hook.write_bytes(validator)
            hook.chmod(0o700)
            out.mkdir()
            try:
                res = subprocess.run(
                    [str(hook), str(job), str(out)],
                    capture_output=True,
                    text=True,
                    timeout=VALIDATOR_TIMEOUT_S,
                    cwd=tmp,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"the validator could not run: {exc}"
        if res.returncode == 0:
            return None
        said = (res.stdout + res.stderr).strip()[-2000:]
        return f"refused by the validator (exit {res.returncode}): {said}"

    def _hook(self, named: str | None, alces: str) -> bytes | None:
        """A hook's bytes: a path on this host, a URL in the store, or (Alces' layout)
        `<profile>/share/<alces>` beside `job-queue.d/`."""
        if named is not None:
            if "://" in named:
                return bytes(self.fs.cat_file(named.split("://", 1)[1]))
            try:
                return Path(named).read_bytes()
            except OSError as exc:
                raise JobgateError(f"queue {self.q.name}: hook {named}: {exc}") from None
        if "/job-queue.d/" in self.root:
            found = f"{self.root.split('/job-queue.d/')[0]}/share/{alces}"
            if self.fs.exists(found):
                return bytes(self.fs.cat_file(found))
        return None


def _version(entry: dict[str, Any]) -> str:
    """What tells two uploads of one name apart: the object's ETag, else size and mtime."""
    for key in ("ETag", "etag", "VersionId"):
        if entry.get(key):
            return str(entry[key]).strip('"')
    mtime = entry.get("mtime") or entry.get("LastModified") or entry.get("created") or 0
    return f"{entry.get('size', 0)}-{mtime}"


def _idempotency_key(queue: str, key: str, version: str) -> str:
    digest = hashlib.sha256(f"{queue}\0{key}\0{version}".encode()).hexdigest()[:40]
    return f"queue:{queue[:100]}:{digest}"
