"""One backend per destination, built on first use."""

from __future__ import annotations

from jobgate.backends.base import Backend, StatusSink
from jobgate.config import Config, Destination
from jobgate.errors import ConfigError


class _NoSink:
    def report(self, job_id: str, outcome: object) -> None:  # reads only: nothing to report
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
        base_dir = str(self.config.home / "runs")
        if dest.scheduler == "local" and dest.transport == "local":
            from jobgate.backends.local import LocalBackend

            return LocalBackend(dest, self.sink, base_dir)
        raise ConfigError(
            f"destinations.{dest.name}.scheduler",
            f"{dest.scheduler!r} over {dest.transport!r} is not available in this version",
        )

    def built(self) -> list[Backend]:
        return list(self._built.values())

    async def close(self) -> None:
        for backend in self._built.values():
            await backend.close()
