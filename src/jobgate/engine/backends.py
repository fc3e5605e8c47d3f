"""One backend per destination, built on first use."""

from __future__ import annotations

from jobgate.backends.base import Backend, Outcome, StatusSink
from jobgate.config import Config, Destination
from jobgate.errors import ConfigError
from jobgate.spec import JobRecord
from jobgate.transports.base import Transport


class _NoSink:
    def report(self, job: JobRecord, outcome: Outcome) -> None:  # reads only: no reports
        pass

    def note(self, job_id: str, type_: str, message: str) -> None:
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

    def _build(self, dest: Destination) -> Backend:
        # Imports are lazy: a gateway with only local jobs never loads asyncssh.
        # Run directories: here for local jobs; outputs of remote ones are collected here.
        base_dir = local_dir = str(self.config.home / "runs")
        if dest.scheduler == "local" and dest.transport == "local":
            from jobgate.backends.local import LocalBackend

            return LocalBackend(dest, self.sink, base_dir)
        if dest.scheduler == "local":
            raise ConfigError(
                f"destinations.{dest.name}.scheduler",
                "use scheduler = 'ssh' to run jobs directly on an SSH host",
            )
        transport = self._transport(dest)
        if dest.transport == "ssh" or dest.scheduler == "ssh":
            base_dir = dest.remote_dir or ".jobgate/runs"  # relative: under the remote home
        if dest.scheduler == "ssh":
            from jobgate.backends.ssh import SSHBackend

            return SSHBackend(dest, self.sink, base_dir, transport, local_base_dir=local_dir)
        from jobgate.backends.batch import BatchBackend

        if dest.scheduler == "slurm":
            from jobgate.backends.slurm import SlurmScheduler

            return BatchBackend(
                dest, self.sink, base_dir, transport, SlurmScheduler(dest), local_dir=local_dir
            )
        from jobgate.backends.pbs import PBSScheduler

        return BatchBackend(
            dest, self.sink, base_dir, transport, PBSScheduler(dest), local_dir=local_dir
        )

    @staticmethod
    def _transport(dest: Destination) -> Transport:
        if dest.transport == "ssh" or dest.scheduler == "ssh":
            if not dest.host:
                raise ConfigError(
                    f"destinations.{dest.name}.host", "an SSH destination needs a host"
                )
            from jobgate.transports.ssh import SSHTransport

            return SSHTransport(dest)
        from jobgate.transports.local import LocalTransport

        return LocalTransport()

    def built(self) -> list[Backend]:
        return list(self._built.values())

    async def close(self) -> None:
        for backend in self._built.values():
            await backend.close()
