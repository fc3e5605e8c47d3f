"""Staging, one path for every backend: what goes into a run directory before a job (its
script, input files, working directory, then the wrapper, last) and what is collected
after it (output files, onto the gateway's host).

A plan is data; it runs over the destination's transport, or - for local jobs, in the
thread that is about to spawn the job - synchronously on this host (`stage_in_here`).
"""

from __future__ import annotations

import asyncio
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from jobgate.backends.layout import WRAPPER, JobFiles
from jobgate.backends.scripts import script_text
from jobgate.errors import FatalError, SubmitError
from jobgate.spec import JobRecord
from jobgate.transports import local
from jobgate.transports.base import Transport

OUTPUTS = "outputs"  # where collected output files go, in the job's folder on the gateway


@dataclass(frozen=True)
class Write:
    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Copy:
    """A file from the gateway's host into the run directory."""

    source: str
    target: str


@dataclass(frozen=True)
class StageIn:
    files: list[Write | Copy]  # in any order, at once
    dirs: list[str]  # after the files (their parents are made with them)
    wrapper: Write  # last: its presence means "handed over, or about to be"


def plan(
    job: JobRecord, files: JobFiles, wrapper: str, extra: list[Write] | None = None
) -> StageIn:
    """What a job's run directory needs before it is handed over."""
    steps: list[Write | Copy] = list(extra or [])
    script = script_text(job)
    if script is not None:
        steps.append(Write(files.marker("script.sh"), script.encode(), 0o755))
    for stage in job.spec.input_files:
        steps.append(Copy(stage.source, posixpath.join(files.run_dir, stage.target_path)))
    dirs = [files.workdir] if files.own_workdir else []
    return StageIn(steps, dirs, Write(files.marker(WRAPPER), wrapper.encode(), 0o755))


async def stage_in(transport: Transport, staged: StageIn) -> None:
    """Run a plan over a transport; SubmitError (fatal) for a file that cannot be staged.
    Writes make their parent directories (one round trip each over SSH, not two). On this
    host: the whole plan in one worker thread, with plain writes (`stage_in_here`)."""
    if isinstance(transport, local.LocalTransport):
        await asyncio.to_thread(stage_in_here, staged)
        return
    try:
        await asyncio.gather(*(_step(transport, s) for s in staged.files))
    except OSError as exc:  # transports raise JobgateError for their own trouble
        raise SubmitError(_staging_error(exc)) from None
    for folder in staged.dirs:
        await transport.make_dirs(folder)
    w = staged.wrapper
    await transport.write_file(w.path, w.data, w.mode)


def stage_in_here(staged: StageIn) -> None:
    """The same plan on this host, synchronously (in a worker thread)."""
    Path(posixpath.dirname(staged.wrapper.path)).mkdir(parents=True, exist_ok=True)
    try:
        for s in staged.files:
            if isinstance(s, Write):
                _write_here(s)
            else:
                local.copy_file(s.source, s.target)
    except OSError as exc:
        raise SubmitError(_staging_error(exc)) from None
    for folder in staged.dirs:
        Path(folder).mkdir(parents=True, exist_ok=True)
    _write_here(staged.wrapper)


def _write_here(w: Write) -> None:
    # Plain writes, three syscalls: the run directory is new and the job is not running
    # yet, so no reader can see half a file. The mode is applied at creation (under the
    # umask): the owner, who runs the job, can always read and run it.
    fd = os.open(w.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, w.mode)
    try:
        os.write(fd, w.data)
    finally:
        os.close(fd)


async def _step(transport: Transport, s: Write | Copy) -> None:
    if isinstance(s, Write):
        await transport.write_file(s.path, s.data, s.mode)
    else:
        await transport.put(s.source, s.target)


def _staging_error(exc: OSError) -> str:
    return f"staging in {exc.filename or ''}: {exc.strerror or exc}".replace(" : ", ": ")


async def stage_out(
    transport: Transport, job: JobRecord, files: JobFiles, target: str
) -> list[str]:
    """Copy each output file of the job to `target/outputs/` on the gateway's host (target:
    the job's folder there, which the gateway made); returns the ones that were missing.
    Each is opened beneath the job's directory (no link followed, regular files only) and
    written below `target` without following a link either (not even an `outputs` the job
    made a link); any other trouble with a file (a FIFO, a directory, a link) is a
    FatalError naming it."""
    root, below = _anchor(files)

    async def fetch(rel: str) -> bool:
        source = posixpath.join(below, rel) if below else rel
        dest = posixpath.join(OUTPUTS, rel)
        try:
            if posixpath.join(root, source) == posixpath.join(target, dest):
                return await transport.is_file_beneath(root, source)
            await transport.copy_beneath(root, source, target, dest)
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise FatalError(f"output file {rel}: {why}") from None
        return True

    outputs = job.spec.output_files
    found = await asyncio.gather(*(fetch(rel) for rel in outputs))
    return [rel for rel, ok in zip(outputs, found, strict=True) if not ok]


def _anchor(files: JobFiles) -> tuple[str, str]:
    """The directory outputs are opened beneath, and the working directory below it."""
    if files.own_workdir:
        return files.run_dir, files.workdir[len(files.run_dir) + 1 :]
    return files.workdir, ""
