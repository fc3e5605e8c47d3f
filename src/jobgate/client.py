"""`jobgate.Client(url, token)`: the remote gateway, with the same interface as the
embedded `Gateway` and the same `Job` handles. Waiting and following logs use the
server's Server-Sent Events, not polling."""

from __future__ import annotations

import builtins
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from jobgate.errors import (
    ConflictError,
    FatalError,
    JobgateError,
    NotFoundError,
    SpecError,
    TransientError,
)
from jobgate.handle import Job, Page
from jobgate.spec import JobEvent, JobRecord, JobSpec
from jobgate.states import JobState
from jobgate.tasks import TaskOut

_RECORD_FIELDS = set(JobRecord.model_fields)
PAGE = 1000  # the API's largest page
LOG_CHUNK = 16 << 20  # bytes of a log per request
FOLLOW_RETRIES = 5  # a followed log's stream opened again this often after it broke


class Client:
    supervising = False  # the server supervises

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1", headers=headers, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransientError(
                f"cannot reach the gateway at {self._http.base_url}: {exc}"
            ) from exc
        if response.status_code >= 400:
            raise _error(response)
        return response

    # -- the Gateway interface -----------------------------------------------------------

    def submit(self, spec: JobSpec | dict[str, Any] | None = None, **fields: Any) -> Job:
        data = (
            spec.model_dump(mode="json", exclude_defaults=True)
            if isinstance(spec, JobSpec)
            else (spec if spec is not None else fields)
        )
        inputs = data.get("input_files") or []
        if inputs:  # the server takes input files as multipart parts, not as its own paths
            body = {k: v for k, v in data.items() if k != "input_files"}
            with contextlib.ExitStack() as stack:
                files = [
                    (
                        "files",
                        (
                            i.get("target") or i["source"].rsplit("/", 1)[-1],
                            stack.enter_context(open(i["source"], "rb")),
                        ),
                    )
                    for i in inputs
                ]
                res = self._request("POST", "/jobs", data={"spec": json.dumps(body)}, files=files)
        else:
            res = self._request("POST", "/jobs", json=data)
        body = res.json()
        return Job(self, _record(body), body.get("warnings") or [])

    def get(self, job_id: str) -> Job:
        return Job(self, self._record(job_id))

    def list(
        self,
        state: JobState | str | builtins.list[JobState | str] | None = None,
        destination: str | None = None,
        label: dict[str, str] | None = None,
        name: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Job]:
        """Newest first, at most `limit` (0: all of them): as many pages as that takes."""
        filters: dict[str, Any] = {
            "state": state,
            "destination": destination,
            "label": label,
            "name": name,
        }
        jobs: builtins.list[Job] = []
        cursor = None
        while True:
            size = PAGE if limit <= 0 else min(PAGE, limit - len(jobs))
            page = self.page(limit=size, cursor=cursor, **filters)
            jobs += page.jobs
            cursor = page.next_cursor
            if cursor is None or 0 < limit <= len(jobs):
                return jobs

    def page(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        count: bool = False,
        state: JobState | str | builtins.list[JobState | str] | None = None,
        destination: str | None = None,
        label: dict[str, str] | None = None,
        name: str | None = None,
    ) -> Page:
        states = [state] if isinstance(state, str) else state
        params: dict[str, Any] = {
            "limit": limit,
            "cursor": cursor,
            "count": "true" if count else None,
            "destination": destination,
            "name": name,
            "state": [str(s).upper() for s in states or []],
            "label": [f"{k}={v}" for k, v in (label or {}).items()],
        }
        body = self._request("GET", "/jobs", params={k: v for k, v in params.items() if v}).json()
        jobs = [Job(self, _record(item)) for item in body["items"]]
        return Page(jobs, body.get("next_cursor"), body.get("total"))

    def cancel(self, job_id: str) -> Job:
        return Job(self, self._cancel(job_id))

    def destinations(self) -> builtins.list[dict[str, Any]]:
        return list(self._request("GET", "/destinations").json())

    # -- JobSource ------------------------------------------------------------------------

    def _record(self, job_id: str) -> JobRecord:
        return _record(self._request("GET", f"/jobs/{job_id}").json())

    def _cancel(self, job_id: str) -> JobRecord:
        return _record(self._request("DELETE", f"/jobs/{job_id}").json())

    def _read_log(self, job_id: str, stream: str, offset: int) -> bytes:
        """To the end: the API answers up to LOG_CHUNK a request, and says where to go on."""
        chunks = []
        while True:
            res = self._request(
                "GET",
                f"/jobs/{job_id}/logs/{stream}",
                params={"offset": offset, "limit": LOG_CHUNK},
            )
            chunks.append(res.content)
            offset = int(res.headers.get("x-next-offset", offset + len(res.content)))
            if len(res.content) < LOG_CHUNK:
                return b"".join(chunks)

    def _waiting(self, job_id: str) -> str | None:
        waiting = self._request("GET", f"/jobs/{job_id}").json().get("waiting")
        return str(waiting) if waiting else None

    def _files(self, job_id: str) -> builtins.list[str]:
        return list(self._request("GET", f"/jobs/{job_id}/files").json())

    def _results(self, job_id: str) -> dict[str, Any] | None:
        body = self._request("GET", f"/jobs/{job_id}/results").json()
        return body if body else None

    def results(
        self, *, job_type: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Results of finished typed jobs, newest first (keyset: `cursor` = a job id)."""
        params = {"job_type": job_type, "limit": limit, "cursor": cursor}
        res = self._request("GET", "/results", params={k: v for k, v in params.items() if v})
        items: builtins.list[dict[str, Any]] = res.json()["items"]
        return items

    def _download(self, job_id: str, path: str) -> Iterator[bytes]:
        try:
            with self._http.stream("GET", f"/jobs/{job_id}/files/{path}") as res:
                if res.status_code >= 400:
                    res.read()
                    raise _error(res)
                yield from res.iter_bytes()
        except httpx.TransportError as exc:
            raise TransientError(f"lost the gateway while downloading {path}: {exc}") from exc

    def _tasks(self, job_id: str) -> builtins.list[TaskOut]:
        rows = self._request("GET", f"/jobs/{job_id}/tasks").json()
        return [TaskOut.model_validate(row) for row in rows]

    def _events(self, job_id: str) -> builtins.list[JobEvent]:
        rows = self._request("GET", f"/jobs/{job_id}/events").json()
        return [JobEvent(job_id=job_id, **row) for row in rows]

    def _wait(
        self, job_id: str, timeout: float | None, until: Callable[[JobState], bool] | None
    ) -> JobRecord:
        done = until or (lambda s: s.final)
        deadline = None if timeout is None else time.monotonic() + timeout
        after = 0  # events already seen: a new stream does not replay them
        while True:
            record = self._record(job_id)
            left = None if deadline is None else deadline - time.monotonic()
            if done(record.state) or record.state.final or (left is not None and left <= 0):
                return record
            # Follow the event stream until a state `done` holds; then read the record again.
            for kind, data, _ in self._sse(
                f"/jobs/{job_id}/events", {"follow": "true", "after": after}, left
            ):
                if kind == "end":
                    break
                after = json.loads(data)["seq"]
                if kind in JobState.__members__ and done(JobState(kind)):
                    break

    def _follow_log(self, job_id: str, stream: str) -> Iterator[bytes]:
        """Chunks as they are written, until the job ends: a stream that breaks (or stops
        at the server's size limit) is opened again from the last offset it delivered, so
        nothing is lost or repeated."""
        offset, failures = 0, 0
        while True:
            params = {"follow": "true", "offset": offset}
            try:
                for kind, data, event_id in self._sse(
                    f"/jobs/{job_id}/logs/{stream}", params, None
                ):
                    if kind == "log":
                        yield json.loads(data)["text"].encode()
                        offset, failures = int(event_id or offset), 0
                    elif kind == "end" and not json.loads(data).get("truncated"):
                        return
            except TransientError:
                failures += 1
                if failures > FOLLOW_RETRIES:
                    raise
                time.sleep(min(2.0**failures, 30.0))

    def _sse(
        self, path: str, params: dict[str, Any], timeout: float | None
    ) -> Iterator[tuple[str, str, str | None]]:
        """(event, data, id) of a Server-Sent Events stream; ends quietly on timeout."""
        kind, data, event_id = "message", [], None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with self._http.stream(
                "GET", path, params=params, timeout=httpx.Timeout(30.0, read=timeout)
            ) as res:
                if res.status_code >= 400:
                    res.read()
                    raise _error(res)
                for line in res.iter_lines():
                    if deadline is not None and time.monotonic() >= deadline:
                        return  # keep-alives arrive every second: a read never times out
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif line.startswith("id:"):
                        event_id = line[3:].strip()
                    elif not line and data:
                        yield kind, "\n".join(data), event_id
                        kind, data = "message", []
        except httpx.ReadTimeout:
            return
        except httpx.TransportError as exc:
            raise TransientError(f"lost the gateway's event stream: {exc}") from exc


def _record(data: dict[str, Any]) -> JobRecord:
    return JobRecord.model_validate({k: v for k, v in data.items() if k in _RECORD_FIELDS})


def _error(response: httpx.Response) -> JobgateError:
    try:
        body = response.json()
        detail = body.get("detail") or body.get("title") or response.text
    except ValueError:
        body, detail = {}, response.text
    status = response.status_code
    if status == 422 and body.get("field"):
        field = body["field"]
        return SpecError(field, str(detail).removeprefix(f"{field}: "))
    if status == 404:
        return NotFoundError(detail)
    if status == 409:
        return ConflictError(detail)
    if status in (401, 403):
        return FatalError(f"not authorized ({status}): {detail} (check JOBGATE_TOKEN)")
    if status >= 500:
        return TransientError(f"the gateway answered {status}: {detail}")
    return FatalError(f"the gateway answered {status}: {detail}")
