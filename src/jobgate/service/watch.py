"""A feed of "some job changed" in this process: each commit of the supervisor, each
submission and cancel moves it on. A dashboard's live page re-reads its rows once per
change, rather than every client asking the store every second."""

from __future__ import annotations

import asyncio
import threading


class ChangeFeed:
    def __init__(self) -> None:
        self.version = 0
        self._lock = threading.Lock()  # submissions through the sync SDK bump from threads
        self._waiters: list[asyncio.Future[None]] = []

    def bump(self) -> None:
        with self._lock:
            self.version += 1
            waiters, self._waiters = self._waiters, []
        for fut in waiters:
            fut.get_loop().call_soon_threadsafe(_wake, fut)

    async def wait(self, seen: int, timeout: float) -> int:
        """The version once it is past `seen`, or after `timeout` (another process's
        changes move no feed here: callers look again then)."""
        if self.version != seen:
            return self.version
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self.version != seen:
                return self.version
            self._waiters.append(fut)
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            with self._lock:
                if fut in self._waiters:
                    self._waiters.remove(fut)
        return self.version


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
