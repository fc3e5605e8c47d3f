"""Callback delivery: every state change of a job with a `callback_url` is POSTed there,
signed with the owner's secret, from the outbox table (see store/outbox.py).

At least once, in order per job, with exponential back-off for `max_age_s` (24 h by
default): all state is in the table, so deliveries survive restarts and are shared by
several gateways on one PostgreSQL. Receivers drop duplicates by event id. The wire
format and how to verify a signature are in docs/callbacks.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from jobgate.config import CallbackSettings, Config
from jobgate.errors import NotFoundError
from jobgate.spec import JobEvent, JobRecord
from jobgate.states import JobState
from jobgate.store import Store
from jobgate.store.accounts import Accounts
from jobgate.store.outbox import Claim, Outbox

log = logging.getLogger(__name__)
# Jobs from a drop-in API carry compat=<its name>: their receivers expect its format.
COMPAT_LABEL = "compat"
POLL_S = 0.5  # how often the outbox is looked at when nothing woke us
# Every commit wakes us, jobs with callbacks or not: look once per burst, not per commit
# (a query per wake was 5% of a 1,000-job local run without any callback).
COALESCE_S = 0.02
LEASE_SLACK_S = 30.0  # a claim outlives its attempt by this much (DNS, store writes)
STOP_GRACE_S = 5.0  # on close, attempts under way get this long to finish
SIGNATURE_TOLERANCE_S = 300  # what docs/callbacks.md tells receivers to accept

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# -- signatures ------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 over `{timestamp}.{body}`: the timestamp is signed too,
    so a captured request cannot be replayed later with a fresh one."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """What a receiver does (in Python): signature valid and timestamp recent."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), signature)


# -- which addresses may be called -------------------------------------------------------------


class Refused(Exception):
    """The URL may not be called: the row fails at once and nothing is sent."""


class Unreachable(Exception):
    """Not now (e.g. DNS failed): try again later."""


class AddressPolicy:
    """Public addresses are allowed; loopback, private, link-local, multicast, reserved
    and other non-global ones only if the host (glob) or address (IP/CIDR) is listed.
    Every address the name resolves to must pass, and the request then goes to those
    very addresses, so DNS cannot answer differently between check and connect."""

    def __init__(self, allowed_hosts: Sequence[str]) -> None:
        self._globs: list[str] = []
        self._nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowed_hosts:
            try:
                self._nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._globs.append(entry.lower())

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why `ip` (an address of `host`) may not be called, or None if it may."""
        if any(fnmatch.fnmatchcase(host.lower(), g) for g in self._globs):
            return None
        if any(ip.version == net.version and ip in net for net in self._nets):
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
        if ip.is_global and not ip.is_multicast:
            return None
        return f"{ip} ({_kind(ip)} address) is not in callbacks.allowed_hosts"

    async def addresses(self, url: httpx.URL) -> list[str]:
        """The addresses to connect to, after checking every one of them."""
        host = url.raw_host.decode("ascii")  # IDNA-encoded, as DNS and TLS want it
        if not host:
            raise Refused(f"refused, not sent: no host in {url}")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise Unreachable(f"cannot resolve {host!r}: {exc}") from None
        found = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        for ip in found:
            reason = self.refusal(host, ip)
            if reason is not None:
                raise Refused(f"refused, not sent: {host} -> {reason}")
        return [str(ip) for ip in found]


def _kind(ip: IPAddress) -> str:
    # Most specific first: Python counts link-local, reserved, ... as private too.
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


# -- retries -----------------------------------------------------------------------------------


def backoff(attempts: int, settings: CallbackSettings) -> float:
    """Seconds before the next try after `attempts` failed ones: 1, 2, 4, ... up to the cap,
    each shortened by up to a quarter at random so that many jobs' retries spread out."""
    base = settings.initial_backoff_s * 2.0 ** min(max(attempts - 1, 0), 40)
    return min(base, settings.max_backoff_s) * random.uniform(0.75, 1.0)


@dataclass(frozen=True)
class _Result:
    status: int | None = None
    error: str | None = None
    final: bool = False  # never to be retried
    sent: bool = True  # False: nothing left this process (not counted as an attempt)
    skip: str | None = None  # why nothing is to be sent (the receiver would learn nothing)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


# -- the dispatcher ------------------------------------------------------------------------------


class CallbackDispatcher:
    """Claims due outbox rows and POSTs them; one per job at a time, many jobs at once."""

    def __init__(self, config: Config, store: Store) -> None:
        self.settings = config.callbacks
        self.store = store
        self.outbox = Outbox(store)
        self.accounts = Accounts(store)
        self.policy = AddressPolicy(self.settings.allowed_hosts)
        # Deliveries by outcome (delivered, retry, failed, refused): share this dict as
        # ApiContext.metrics.callbacks to publish them on /metrics.
        self.outcomes: defaultdict[str, int] = defaultdict(int)
        self._client: httpx.AsyncClient | None = None
        self._wake: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self) -> None:
        from jobgate import __version__  # here: the package imports this module

        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(
            timeout=self.settings.timeout_s,
            follow_redirects=False,  # a redirect could point anywhere: not a success
            trust_env=False,  # a proxy would connect to other addresses than those checked
            # Requests go to checked IPs; a kept-alive TLS connection verified for one host
            # name could otherwise be reused for another name on the same IP.
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"User-Agent": f"jobgate/{__version__}"},
        )
        self._main = asyncio.create_task(self._run(), name="jobgate-callbacks")

    async def close(self) -> None:
        self._closing = True
        if self._main is not None:
            self._main.cancel()
            await asyncio.gather(self._main, return_exceptions=True)
        if self._inflight:
            _, late = await asyncio.wait(self._inflight, timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()  # their rows are handed back (see _deliver)
            await asyncio.gather(*late, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def notify(self, _job_ids: Sequence[str] = ()) -> None:
        """Look at the outbox now (a change was committed, or a delivery finished)."""
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            self._wake.clear()
            try:
                self._claim_some()
            except Exception as exc:  # the store is busy or down: try again next poll
                log.warning("callback outbox pass failed: %s", exc)
            # Not wait_for: on 3.11 it swallows a cancel that lands as the event is set
            # (frequent here: every finished delivery sets it), and close() would hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self._wake.wait()
                await asyncio.sleep(COALESCE_S)

    def _claim_some(self) -> None:
        free = self.settings.concurrency - len(self._inflight)
        now = time.time()
        if free <= 0 or not self.outbox.any_due(now):
            return
        lease = self.settings.timeout_s + LEASE_SLACK_S
        for claim in self.outbox.claim(now, lease, free):
            task = asyncio.create_task(self._deliver(claim), name=f"callback-{claim.id}")
            self._inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self.notify()  # the job's next row may be due now, and a slot is free

    # -- one attempt ---------------------------------------------------------------------------

    async def _deliver(self, claim: Claim) -> None:
        try:
            async with asyncio.timeout(self.settings.timeout_s):  # httpx times each phase
                result = await self._attempt(claim)
        except TimeoutError:
            result = _Result(error=f"timed out after {self.settings.timeout_s:g} s")
        except asyncio.CancelledError:
            # The gateway is stopping: hand the row back for the next gateway at once. The
            # request may have arrived: at least once, receivers drop duplicates by event id.
            with contextlib.suppress(Exception):
                self.outbox.retry(claim, time.time(), "interrupted: the gateway stopped")
            raise
        except Exception as exc:
            log.exception("callback %s failed unexpectedly", claim.id)
            result = _Result(error=f"internal error: {exc}")
        self._record_safely(claim, result)

    async def _attempt(self, claim: Claim) -> _Result:
        try:
            job = self.store.get(claim.job_id)
        except NotFoundError:
            return _Result(error="the job no longer exists", final=True, sent=False)
        event = self.outbox.event(claim.event_seq)
        if event is None:
            return _Result(error="the event no longer exists", final=True, sent=False)
        try:
            url = httpx.URL(claim.url)
            addresses = await self.policy.addresses(url)
        except httpx.InvalidURL as exc:
            return _Result(error=f"refused, not sent: invalid URL: {exc}", final=True, sent=False)
        except Refused as exc:
            return _Result(error=str(exc), final=True, sent=False)
        except Unreachable as exc:
            return _Result(error=str(exc))
        method, body = "POST", _body(claim, self.outbox.sequence(claim), job, event)
        if job.labels.get(COMPAT_LABEL) == "joblauncher":
            method, status = "PUT", _joblauncher_status(job, event.type)
            before = self.outbox.previous_state(claim)
            if before is not None and _joblauncher_status(job, before)["state"] == status["state"]:
                return _Result(skip=f"not sent: joblauncher state {status['state']} again")
            body = json.dumps(status, separators=(",", ":")).encode()
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "Host": url.netloc.decode("ascii"),  # the name, though we connect to an address
            "X-Jobgate-Event-Id": f"{claim.job_id}:{claim.event_seq}",
            "X-Jobgate-Timestamp": str(stamp),
            "X-Jobgate-Signature": sign(self._secret(job.owner), stamp, body),
        }
        return await self._send(method, url, addresses, headers, body)

    async def _send(
        self,
        method: str,
        url: httpx.URL,
        addresses: list[str],
        headers: dict[str, str],
        body: bytes,
    ) -> _Result:
        assert self._client is not None
        error = "no address"
        for address in addresses:  # e.g. ::1 then 127.0.0.1 for "localhost"
            try:
                # Credentials in the URL (https://user:pw@host/) go as basic auth.
                async with self._client.stream(
                    method,
                    url.copy_with(host=address),
                    content=body,
                    headers=headers,
                    # TLS sends and checks the name, not the address we connect to.
                    extensions={"sni_hostname": url.raw_host.decode("ascii")},
                ) as response:  # the body is never read: a receiver cannot stream us gigabytes
                    status = response.status_code
            except httpx.ConnectError as exc:
                error = f"cannot connect to {address}: {exc}"
                continue
            except httpx.HTTPError as exc:
                return _Result(error=f"{type(exc).__name__}: {exc}")
            return _Result(status=status, error=None if 200 <= status < 300 else f"HTTP {status}")
        return _Result(error=error)

    def _secret(self, owner: str) -> str:
        # CLI and SDK jobs belong to OS users who may have no account yet: make one, so
        # their callbacks are signed too.
        try:
            return self.accounts.user(owner).callback_secret
        except NotFoundError:
            return self.accounts.ensure_user(owner).callback_secret

    # -- results ---------------------------------------------------------------------------------

    def _record_safely(self, claim: Claim, result: _Result) -> None:
        try:
            outcome = self._record(claim, result)
        except Exception as exc:  # the lease runs out and the row is tried again
            log.warning("recording callback %s failed: %s", claim.id, exc)
            return
        if outcome:
            self.outcomes[outcome] += 1

    def _record(self, claim: Claim, result: _Result) -> str | None:
        now = time.time()
        if result.skip is not None:
            took = self.outbox.skipped(claim, now, result.skip)
            outcome = "skipped"
        elif result.ok:
            assert result.status is not None
            took = self.outbox.delivered(claim, result.status, now)
            outcome = "delivered"
        elif result.final:
            error = result.error or "failed"
            took = self.outbox.failed(claim, now, error, result.status, count=result.sent)
            outcome = "failed" if result.sent else "refused"
        elif now - claim.created_at >= self.settings.max_age_s:
            error = f"{result.error}; gave up after {claim.attempts} attempts"
            took = self.outbox.failed(claim, now, error, result.status)
            outcome = "failed"
        else:
            at = now + backoff(claim.attempts, self.settings)
            took = self.outbox.retry(claim, at, result.error or "failed", result.status)
            outcome = "retry"
        if not took:  # our lease ran out and another gateway took the row over
            log.warning("callback %s was claimed again before its result was stored", claim.id)
            return None
        if outcome not in ("delivered", "skipped"):
            log.info("callback %s for job %s: %s", claim.id, claim.job_id, result.error)
        return outcome


def _body(claim: Claim, sequence: int, job: JobRecord, event: JobEvent) -> bytes:
    # The public views, as the API shows them; imported here because jobgate.api imports
    # the SDK, which imports this module.
    from jobgate.api.schemas import EventOut, JobOut

    payload = {
        "event_id": f"{claim.job_id}:{claim.event_seq}",
        "sequence": sequence,
        "job": JobOut.of(job).model_dump(mode="json"),
        "event": EventOut.of(event).model_dump(mode="json"),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def _joblauncher_status(job: JobRecord, state: str) -> dict[str, Any]:
    """joblauncher's JobStatusResponse as of a change to `state`: the body its clients
    expect PUT to their status_callback_url (exit code and reason once final)."""
    from jobgate.api.compat.joblauncher import status_of  # see _body

    at = JobState(state)
    return status_of(job if at.final else job.model_copy(update={"state": at, "exit_code": None}))
