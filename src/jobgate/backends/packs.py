"""Packs: jobs handed over together with the same scheduler options go in as one job array
(one `sbatch` for many jobs), each task running its own job's wrapper in its own run
directory. A submit command costs the scheduler's client and controller milliseconds of
CPU each, the same for one job or a hundred: under load this is what lets the gateway
out-run a loop of `sbatch` calls. A lone job still goes in alone, under its own name.

A packed job's native id is its task's, `<array id>_<index>`: status, cancel and
accounting take it as it is. A `jobgate.pack` marker in its run directory, written before the
submit command runs, names the pack and the job's index in it, so that a job caught by
a crash can be found again (`find`), as a lone job is by its name.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from jobgate.backends.batch_status import NativeStatus
from jobgate.backends.layout import JobFiles
from jobgate.backends.staging import Copy, Write
from jobgate.errors import SubmitError
from jobgate.spec import JobRecord

log = logging.getLogger(__name__)

PACK = "jobgate.pack"  # the marker: "<pack name> <index>"
SCRIPT = "jobgate-pack.sh"  # the pack's script, kept in its first job's run directory
_MARKER = re.compile(r"(jobgate-pack-[0-9A-Za-z]+) (\d+)")


@dataclass
class Member:
    job: JobRecord
    files: JobFiles
    prefix: tuple[str, ...]  # what the submit command starts with (`env -i` and a base)
    staged: asyncio.Future[None] = field(repr=False)  # its staging, under way
    future: asyncio.Future[str] = field(repr=False)


def markers(name: str, members: list[Member]) -> list[Write | Copy]:
    """Each member's marker (PACK): the pack's name and the member's index in it."""
    return [Write(m.files.marker(PACK), f"{name} {i}\n".encode()) for i, m in enumerate(members)]


def parse_marker(data: bytes) -> tuple[str, int] | None:
    """(pack name, index), or None for anything else: the job may have written there."""
    m = _MARKER.fullmatch(data.decode(errors="replace").strip())
    return (m.group(1), int(m.group(2))) if m else None


def pack_name(members: list[Member]) -> str:
    return f"jobgate-pack-{members[0].job.id}"


SubmitOne = Callable[[Member], Awaitable[str]]
SubmitPack = Callable[[list[Member]], Awaitable[str]]


class Packer:
    """Jobs join before their staging ends, so that those handed over together (one
    claim's batch, one loop turn) meet; each key's jobs then go as one pack of at most
    `most`, once staged, at most `slots` submit commands at a time. Jobs that wait for a
    slot go together too: packs grow with the load, and a lone job adds no delay. Each job
    learns its own native id, or the exception of its staging or of its command."""

    def __init__(self, one: SubmitOne, pack: SubmitPack, slots: int, most: int) -> None:
        self._one, self._pack, self._slots, self._most = one, pack, slots, most
        self._queues: dict[Hashable, list[Member]] = {}
        self._busy = 0
        self._pumping = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(
        self,
        key: Hashable,
        job: JobRecord,
        files: JobFiles,
        prefix: tuple[str, ...],
        staged: asyncio.Future[None],
    ) -> str:
        loop = asyncio.get_running_loop()
        member = Member(job, files, prefix, staged, loop.create_future())
        self._queues.setdefault(key, []).append(member)
        if not self._pumping:
            self._pumping = True
            loop.call_soon(self._pump)  # after every hand-over of this loop turn
        return await member.future

    def _pump(self) -> None:
        self._pumping = False
        while self._busy < self._slots and self._queues:
            key = next(iter(self._queues))  # the longest waiting key first
            queue = self._queues.pop(key)
            members, rest = queue[: self._most], queue[self._most :]
            if rest:
                self._queues[key] = rest
            self._busy += 1
            task = asyncio.create_task(self._send(members))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, queued: list[Member]) -> None:
        members = []
        for m, error in zip(queued, await _staging(queued), strict=True):
            if error is None:
                members.append(m)
            elif not m.future.done():  # its own staging failed: it leaves the pack
                m.future.set_exception(error)
        try:
            if not members:
                ids: list[str] = []
            elif len(members) == 1:
                ids = [await self._one(members[0])]
            else:
                try:
                    array_id = await self._pack(members)
                except SubmitError as exc:  # maybe the pack, not the jobs: try each alone
                    await self._each_alone(members, exc)
                    return
                ids = [f"{array_id}_{i}" for i in range(len(members))]
        except Exception as exc:  # every job of the pack learns it (TransientError: find)
            for m in members:
                if not m.future.done():
                    m.future.set_exception(exc)
        else:
            for m, native_id in zip(members, ids, strict=True):
                if not m.future.done():
                    m.future.set_result(native_id)
        finally:
            self._busy -= 1
            self._pump()

    async def _each_alone(self, members: list[Member], refusal: SubmitError) -> None:
        """A refused pack's jobs, each alone: each gets its own answer. If one goes in,
        this site refuses the array itself (no arrays, or a lower MaxArraySize): every
        job goes alone from now on."""
        done = await asyncio.gather(*(self._one(m) for m in members), return_exceptions=True)
        for m, result in zip(members, done, strict=True):
            if m.future.done():
                continue
            if isinstance(result, BaseException):
                m.future.set_exception(result)
            else:
                m.future.set_result(result)
        if self._most > 1 and any(isinstance(r, str) for r in done):
            log.warning("packs refused (%s): each job goes alone from now on", refusal)
            self._most = 1

    async def close(self) -> None:
        for member in (m for queue in self._queues.values() for m in queue):
            member.staged.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def as_tasks(found: dict[str, NativeStatus], ids: list[str]) -> dict[str, NativeStatus]:
    """A packed job (`<array>_<index>`) is its task's status, filed under the array."""
    for native_id in ids:
        array_id, sep, index = native_id.partition("_")
        parent = found.get(array_id) if sep and index.isdigit() else None
        task = parent.tasks.get(int(index)) if parent is not None else None
        if task is not None:
            found[native_id] = task
    return found


async def _staging(members: list[Member]) -> list[BaseException | None]:
    done = await asyncio.gather(*(m.staged for m in members), return_exceptions=True)
    return [r if isinstance(r, BaseException) else None for r in done]
