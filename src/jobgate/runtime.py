"""The composition root: the one place that builds a gateway's parts and wires them -
store (migrated here, once), engine (supervisor and callback dispatcher), service. Doors
receive the service; nothing else builds these."""

from __future__ import annotations

import builtins
from pathlib import Path

from jobgate.config import Config
from jobgate.engine.callbacks import CallbackDispatcher
from jobgate.engine.liveness import live_gateways
from jobgate.engine.supervisor import Supervisor
from jobgate.service import JobService
from jobgate.store import AsyncStore, Store


class Runtime:
    """Store + service (+ supervisor and callbacks, unless `supervise=False`). With
    `supervise=None` a supervisor runs only if no other one is alive (the CLI's way)."""

    def __init__(self, config: Config, supervise: bool | None = True) -> None:
        self.config = config
        store = Store(config.database_url)
        self._db = AsyncStore(store)
        try:
            store.migrate()
            protect(config)
            if supervise is None:
                supervise = not live_gateways(store)
            self.supervisor = Supervisor(config, self._db) if supervise else None
            # Callbacks are sent by whichever processes supervise (they share the outbox).
            self.callbacks = CallbackDispatcher(config, self._db) if supervise else None
            self.service = JobService(config, self._db, self.supervisor, self.callbacks)
            self.service.check_config()
        except BaseException:
            self._db.close()
            store.close()
            raise
        if self.supervisor is not None:
            self.supervisor.on_change = self._changed
            self.supervisor.finishing = self.service.results.finish  # job types' parsers
            self.supervisor.finishes = self.service.results.finishes  # a door's (TES outputs)
        self._started = False

    def _changed(self, job_ids: builtins.list[str]) -> None:
        """After each supervisor commit: wake waiters, and send the new callbacks now."""
        self.service.notify(job_ids)
        if self.callbacks is not None:
            self.callbacks.notify(job_ids)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.supervisor is not None:
            await self.supervisor.start()
        if self.callbacks is not None:
            await self.callbacks.start()

    async def close(self) -> None:
        if self._started:
            if self.callbacks is not None:
                await self.callbacks.close()
            if self.supervisor is not None:
                await self.supervisor.close()
        self._db.close()
        self._db.sync.close()


def protect(config: Config) -> None:
    """The gateway's own files, closed to everyone else (jobs run_as other accounts, and
    other users of the host): the home and its runs/ may only be passed through (an
    account reaches its own run directory, mode 0700, and lists nothing), uploads and a
    SQLite store (callback secrets, token hashes) are the gateway's alone."""
    home = config.home
    runs, uploads = home / "runs", home / "uploads"
    for folder, mode in ((home, 0o711), (runs, 0o711), (uploads, 0o700)):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(mode)
    if config.database_url.startswith("sqlite:///"):
        db = Path(config.database_url.split("///", 1)[1])
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            if path.exists():
                path.chmod(0o600)  # SQLite makes its -wal and -shm with the file's mode
