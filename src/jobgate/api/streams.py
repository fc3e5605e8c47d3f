"""Server-Sent Events that follow a job's events or logs until it ends. Woken by the
supervisor's commits when it runs in this process; else they look again every second."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from jobgate.errors import NotFoundError
from jobgate.service import JobService

TICK_S = 1.0  # also the keep-alive period (a comment line) for idle streams
CHUNK = 1024 * 1024  # at most this much log per event


async def events(service: JobService, job_id: str, after: int) -> AsyncIterator[str]:
    while True:
        final = (await service.get(job_id)).state.final  # read before: no event is missed
        for event in await service.events(job_id, after):
            after = event.seq
            body = event.model_dump(mode="json", exclude={"job_id"})
            yield f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(body)}\n\n"
        if final:
            yield "event: end\ndata: {}\n\n"
            return
        yield ": waiting\n\n"
        await service.wait_change(job_id, TICK_S)


async def logs(service: JobService, job_id: str, stream: str, offset: int) -> AsyncIterator[str]:
    """`log` events carry JSON {"offset": where the text starts, "text": ...}: JSON keeps
    the CRs of progress bars (a bare CR would end an SSE line), and the text ends on a
    whole UTF-8 character; the event id is the offset to resume from. One stream sends at
    most `limits.max_stream_mb`: then `end` says `"truncated": true` (resume from its
    offset with a new stream, or read the log by range)."""
    stop = offset + service.files.max_stream_bytes
    while True:
        if offset >= stop:
            state = (await service.get(job_id)).state.value
            end = {"state": state, "truncated": True, "offset": offset}
            yield f"event: end\ndata: {json.dumps(end)}\n\n"
            return
        job = await service.get(job_id)  # read before the log: once final, the log is whole
        try:
            data = await service.read_log(job_id, stream, offset, min(CHUNK, stop - offset))
        except NotFoundError as exc:  # the job put something else in the log's place
            end = {"state": job.state.value, "error": str(exc)}
            yield f"event: end\ndata: {json.dumps(end)}\n\n"
            return
        if not job.state.final or len(data) == CHUNK:
            data = _whole_chars(data)  # the rest of a character is still to come
        if data:
            body: dict[str, object] = {"offset": offset, "text": data.decode(errors="replace")}
            offset += len(data)
            yield f"id: {offset}\nevent: log\ndata: {json.dumps(body)}\n\n"
        elif job.state.final:
            yield f"event: end\ndata: {json.dumps({'state': job.state.value})}\n\n"
            return
        else:
            yield ": waiting\n\n"
            await service.wait_change(job_id, TICK_S / 2)


def _whole_chars(data: bytes) -> bytes:
    """`data` without an incomplete UTF-8 sequence at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # the last character's first byte
            size = 1 if byte < 0xC0 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= size else data[:-back]
    return data
