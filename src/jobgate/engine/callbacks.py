"""Callback delivery: every state change of a job with a `callback_url` is sent there,
signed with the owner's secret, from the outbox table (see store/outbox.py).

At least once, in order per job, with exponential back-off for `max_age_s` (24 h by
default): all state is in the table, so deliveries survive restarts and are shared by
several gateways on one PostgreSQL. Receivers drop duplicates by event id. The wire
format is jobgate's own (views.jobgate_format) unless the job carries a `compat` label
naming a format a door registered (`register_format`, or the entry point group
`jobgate.callback_formats`): the engine never imports a door.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

import httpx

from jobgate.config import CallbackSettings, Config
from jobgate.engine.addresses import AddressPolicy, Refused, Unreachable
from jobgate.errors import NotFoundError
from jobgate.signatures import sign
from jobgate.store import AsyncStore
from jobgate.store.accounts import Accounts
from jobgate.store.outbox import Claim, Outbox
from jobgate.version import __version__
from jobgate.views import COMPAT_LABEL, Announcement, CallbackFormat, jobgate_format

log = logging.getLogger(__name__)
FORMATS_GROUP = "jobgate.callback_formats"
POLL_S = 0.5  # how often the outbox is looked at when nothing woke us
# Every commit wakes us, jobs with callbacks or not: look once per burst, not per commit
# (a query per wake was 5% of a 1,000-job local run without any callback).
COALESCE_S = 0.02
LEASE_SLACK_S = 30.0  # a claim outlives its attempt by this much (DNS, store writes)
STOP_GRACE_S = 5.0  # on close, attempts under way get this long to finish


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


# -- formats ---------------------------------------------------------------------------------


class Formats:
    """Callback formats by name: registered by doors, else found by entry point."""

    def __init__(self) -> None:
        self._known: dict[str, CallbackFormat] = {}
        self._looked: set[str] = set()

    def register(self, name: str, builder: CallbackFormat) -> None:
        self._known[name] = builder

    def get(self, name: str | None) -> CallbackFormat:
        if name is None:
            return jobgate_format
        if name not in self._known and name not in self._looked:
            self._looked.add(name)
            for ep in entry_points(group=FORMATS_GROUP, name=name):
                self._known[name] = ep.load()
        return self._known.get(name, jobgate_format)


# -- the dispatcher ------------------------------------------------------------------------------


class CallbackDispatcher:
    """Claims due outbox rows and sends them; one per job at a time, many jobs at once."""

    def __init__(self, config: Config, db: AsyncStore) -> None:
        self.settings = config.callbacks
        self.db = db
        self.outbox = Outbox(db.sync)
        self.accounts = Accounts(db.sync)
        self.policy = AddressPolicy(self.settings.allowed_hosts)
        self.formats = Formats()
        # Deliveries by outcome (delivered, retry, failed, refused, skipped): /metrics.
        self.outcomes: defaultdict[str, int] = defaultdict(int)
        self._client: httpx.AsyncClient | None = None
        self._wake: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self) -> None:
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
                await self._claim_some()
            except Exception as exc:  # the store is busy or down: try again next poll
                log.warning("callback outbox pass failed: %s", exc)
            # Not wait_for: on 3.11 it swallows a cancel that lands as the event is set
            # (frequent here: every finished delivery sets it), and close() would hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self._wake.wait()
                await asyncio.sleep(COALESCE_S)

    async def _claim_some(self) -> None:
        free = self.settings.concurrency - len(self._inflight)
        now = time.time()
        if free <= 0 or not await self.db.read(self.outbox.any_due, now):
            return
        lease = self.settings.timeout_s + LEASE_SLACK_S
        for claim in await self.db.write(self.outbox.claim, now, lease, free):
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
        await self._record_safely(claim, result)

    async def _announcement(self, claim: Claim) -> Announcement | _Result:
        try:
            job = await self.db.read(self.db.sync.get, claim.job_id)
        except NotFoundError:
            return _Result(error="the job no longer exists", final=True, sent=False)
        event = await self.db.read(self.outbox.event, claim.event_seq)
        if event is None:
            return _Result(error="the event no longer exists", final=True, sent=False)
        sequence = await self.db.read(self.outbox.sequence, claim)
        before = await self.db.read(self.outbox.previous_state, claim)
        return Announcement(f"{claim.job_id}:{claim.event_seq}", sequence, job, event, before)

    async def _attempt(self, claim: Claim) -> _Result:
        found = await self._announcement(claim)
        if isinstance(found, _Result):
            return found
        try:
            url = httpx.URL(claim.url)
            addresses = await self.policy.addresses(url)
        except httpx.InvalidURL as exc:
            return _Result(error=f"refused, not sent: invalid URL: {exc}", final=True, sent=False)
        except Refused as exc:
            return _Result(error=str(exc), final=True, sent=False)
        except Unreachable as exc:
            return _Result(error=str(exc))
        form = self.formats.get(found.job.labels.get(COMPAT_LABEL))
        if found.event.type.startswith("job.") and form is not jobgate_format:
            return _Result(skip="not sent: a drop-in API's format has no job events")
        delivery = form(found)
        if delivery is None:
            return _Result(skip="not sent: its receiver would learn nothing new")
        stamp = int(time.time())
        secret = await self.db.write(self._secret, found.job.owner)
        headers = {
            "Content-Type": "application/json",
            "Host": url.netloc.decode("ascii"),  # the name, though we connect to an address
            "X-Jobgate-Event-Id": found.event_id,
            "X-Jobgate-Timestamp": str(stamp),
            "X-Jobgate-Signature": sign(secret, stamp, delivery.body),
        }
        return await self._send(delivery.method, url, addresses, headers, delivery.body)

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

    async def _record_safely(self, claim: Claim, result: _Result) -> None:
        try:
            outcome = await self.db.write(self._record, claim, result)
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
