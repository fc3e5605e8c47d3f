"""Server-Sent Events that follow a job's events or logs until it ends. Woken by the
supervisor's commits when it runs in this process; else they look again every second."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from jobgate.service import JobService

TICK_S = 1.0  # also the keep-alive period (a comment line) for idle streams


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
    while True:
        job = await service.get(job_id)
        data = await service.read_log(job_id, stream, offset)
        if data:
            offset += len(data)
            text = data.decode(errors="replace")
            lines = "".join(f"data: {line}\n" for line in text.split("\n"))
            yield f"id: {offset}\nevent: log\n{lines}\n"
        if job.state.final and not data:
            yield f"event: end\ndata: {json.dumps({'state': job.state.value})}\n\n"
            return
        if not data:
            yield ": waiting\n\n"
            await service.wait_change(job_id, TICK_S / 2)
