"""One backend per destination: a scheduler over a transport, built on first use."""

from __future__ import annotations

from typing import Any

from jobgate.backends.base import Backend, StatusSink
from jobgate.backends.outcome import Outcome
from jobgate.config import Config, Destination
from jobgate.histogram import Histogram
from jobgate.spec import JobRecord
from jobgate.transports.base import Transport


class _NoSink:
    def report(self, job: JobRecord | str, outcome: Outcome) -> None:  # reads only: none
        pass

    def note(
        self, job_id: str, type_: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        pass


class Backends:
    def __init__(self, config: Config, sink: StatusSink | None = None) -> None:
        self.config = config
        self.sink: StatusSink = sink or _NoSink()
        self._built: dict[str, Backend] = {}

    def get(self, name: str) -> Backend:
        if name not in self._built:
            self._built[name] = self._build(self.config.destination(name))
        return self._built[name]

    def poll_latency(self) -> dict[str, Histogram]:
        """Status rounds by destination, of the backends built so far that poll."""
        found = {name: b.poll_latency() for name, b in self._built.items()}
        return {name: hist for name, hist in found.items() if hist is not None}

    def _build(self, dest: Destination) -> Backend:
        # Imports are lazy: a gateway with only local jobs never loads asyncssh.
        # Run directories: here for jobs on this host; outputs of remote ones come here.
        local_dir = str(self.config.home / "runs")
        transport = _transport(dest)
        base_dir = local_dir
        if dest.transport == "ssh":
            base_dir = dest.remote_dir or ".jobgate/runs"  # relative: under the remote home
        if dest.scheduler == "local":
            from jobgate.backends.local import LocalBackend

            return LocalBackend(dest, self.sink, base_dir, transport)
        if dest.scheduler == "process":
            from jobgate.backends.process import ProcessBackend

            return ProcessBackend(dest, self.sink, base_dir, transport, local_dir)
        from jobgate.backends.batch import BatchBackend
        from jobgate.backends.batch_scheduler import BatchScheduler

        scheduler: BatchScheduler
        if dest.scheduler == "slurm":
            from jobgate.backends.slurm import SlurmScheduler

            scheduler = SlurmScheduler(dest)
        else:
            from jobgate.backends.pbs import PBSScheduler

            scheduler = PBSScheduler(dest)
        return BatchBackend(dest, self.sink, base_dir, transport, scheduler, local_dir)

    def built(self) -> list[Backend]:
        return list(self._built.values())

    async def close(self) -> None:
        for backend in self._built.values():
            await backend.close()


def _transport(dest: Destination) -> Transport:
    if dest.transport == "ssh":
        from jobgate.transports.ssh import SSHTransport

        return SSHTransport(dest)
    from jobgate.transports.local import LocalTransport

    return LocalTransport()
