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
from jobgate.sdk import Job
from jobgate.spec import JobEvent, JobRecord, JobSpec
from jobgate.states import JobState

_RECORD_FIELDS = set(JobRecord.model_fields)


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
        return Job(self, _record(res.json()))

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
        states = [state] if isinstance(state, str) else state
        params: dict[str, Any] = {
            "limit": limit,
            "destination": destination,
            "name": name,
            "state": [str(s) for s in states or []],
            "label": [f"{k}={v}" for k, v in (label or {}).items()],
        }
        res = self._request("GET", "/jobs", params={k: v for k, v in params.items() if v})
        return [Job(self, _record(item)) for item in res.json()["items"]]

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
        return self._request(
            "GET", f"/jobs/{job_id}/logs/{stream}", params={"offset": offset}
        ).content

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
            for kind, data in self._sse(
                f"/jobs/{job_id}/events", {"follow": "true", "after": after}, left
            ):
                if kind == "end":
                    break
                after = json.loads(data)["seq"]
                if kind in JobState.__members__ and done(JobState(kind)):
                    break

    def _follow_log(self, job_id: str, stream: str) -> Iterator[bytes]:
        for kind, data in self._sse(f"/jobs/{job_id}/logs/{stream}", {"follow": "true"}, None):
            if kind == "log":
                yield json.loads(data)["text"].encode()
            elif kind == "end":
                return

    def _sse(
        self, path: str, params: dict[str, Any], timeout: float | None
    ) -> Iterator[tuple[str, str]]:
        """(event, data) pairs of a Server-Sent Events stream; ends quietly on timeout."""
        kind, data = "message", []
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
                    elif not line and data:
                        yield kind, "\n".join(data)
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
