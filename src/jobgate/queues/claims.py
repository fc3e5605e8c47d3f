"""From a job file in `pending/` to a job: claimed in the store first (exactly once, on
queue, key and version), then validated, submitted (with an idempotency key made of the
claim, so a gateway that dies half way and the next one make one job), then removed from
`pending/`. Blocking: runs in a thread beside the file system (fsspec is synchronous)."""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import posixpath
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jobgate.config import QueueConfig
from jobgate.errors import JobgateError
from jobgate.service import JobService
from jobgate.service.hooks import run_validator
from jobgate.service.queues import Item
from jobgate.spec import JobRecord

log = logging.getLogger(__name__)
TAKERS = 8  # job files taken side by side in one pass


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
            self._make_pending(pending)
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

    def _make_pending(self, pending: str) -> None:
        """A folder is made; an object store has no folders, but its bucket must exist
        (never made here: a typo would make one)."""
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        if "file" in protocols or "local" in protocols:
            self.fs.makedirs(pending, exist_ok=True)
            return
        bucket = self.root.split("/", 1)[0]
        if not self.fs.exists(bucket):
            raise JobgateError(f"{bucket} cannot be listed: no such bucket (or no access)")

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
        try:
            runner = self._hook(self.q.runner, "process-job")
            refused = self._refusal(data, runner is not None)
        except (OSError, JobgateError) as exc:  # a hook that is missing or unreadable
            runner, refused = None, f"queue {self.q.name}: {exc}"
        spec = self._spec(key, data, idem, runner)
        if refused is not None:
            return self.service.reject_now(spec, self.owner, refused)
        record, _ = self.service.submit_now(spec, self.owner)
        return record

    def _spec(self, key: str, data: bytes, idem: str, runner: bytes | None) -> dict[str, Any]:
        role, cluster = shlex.quote(self.q.role), shlex.quote(self.q.cluster_name)
        inputs = [{"source": self.service.files.keep(data), "target": "job"}]
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

    def _refusal(self, data: bytes, has_runner: bool) -> str | None:
        """Why the job file may not run (None: it may): empty, too large, not something
        to execute, or what a refusing validator printed."""
        if not data:
            return "the job file is empty"
        if len(data) > self.q.max_job_bytes:
            return (
                f"the job file has {len(data):,} bytes, over max_job_bytes {self.q.max_job_bytes:,}"
            )
        if not has_runner and not _executable(data):
            return (
                "the job file is not executable: neither a script (text, or a #! line) "
                "nor a program (ELF); give it a #! line, or the queue a runner"
            )
        validator = self._hook(self.q.validator, "validate-job")
        return None if validator is None else run_validator(validator, data)

    def _hook(self, named: str | None, alces: str) -> bytes | None:
        """A hook's bytes: a path on this host, a URL in the store, or (Alces' layout)
        `<profile>/share/<alces>` beside `job-queue.d/`."""
        if named is not None:
            if "://" in named:
                return bytes(self.fs.cat_file(named.split("://", 1)[1]))
            path = Path(named)
            if not os.access(path, os.X_OK):  # read it or not, it is not a runner to use
                raise JobgateError(f"the hook {named} is missing or not executable")
            return path.read_bytes()
        if "/job-queue.d/" in self.root:
            found = f"{self.root.split('/job-queue.d/')[0]}/share/{alces}"
            if self.fs.exists(found):
                return bytes(self.fs.cat_file(found))
        return None


def _executable(data: bytes) -> bool:
    """What `exec ./job` can run: a #! script, an ELF program, or text (run by the shell)."""
    return data.startswith((b"#!", b"\x7fELF")) or b"\0" not in data[:4096]


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
