"""Which gateway and destination a `jobgate` PSI/J executor uses.

PSI/J hands an executor a `url` and a `config`; jobgate reads them as:

- no url: the default gateway (remote if `JOBGATE_SERVER` is set, else embedded) and the
  default destination (`JOBGATE_DEST`, else the gateway's own default);
- `jobgate://<destination>`, or a bare `<destination>`: that destination on the default
  gateway (bare names exist because PSI/J's test harness splits `--executors` on ':');
- `jobgate+http://host:port[/path][?destination=<name>]` (or `jobgate+https`): a remote
  gateway; its token comes from the config or `JOBGATE_TOKEN`.

Fields set on `JobgateExecutorConfig` win over the url, which wins over the environment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psij

_DEST_RE = re.compile(r"^[A-Za-z0-9_.+@-]+$")


class JobgateExecutorConfig(psij.JobExecutorConfig):
    """PSI/J's executor config plus where jobgate runs jobs.

    `server`: a jobgate server's URL (`http://host:port`); "" forces the embedded gateway
    even when `JOBGATE_SERVER` is set. `config_file` and `home` select the embedded
    gateway's `jobgate.toml` and store (default: `JOBGATE_CONFIG`, `JOBGATE_HOME`, ...).
    """

    def __init__(
        self,
        destination: str | None = None,
        *,
        server: str | None = None,
        token: str | None = None,
        config_file: str | os.PathLike[str] | None = None,
        home: str | os.PathLike[str] | None = None,
        launcher_log_file: Path | None = None,
        work_directory: Path | None = None,
    ) -> None:
        super().__init__(launcher_log_file=launcher_log_file, work_directory=work_directory)
        self.destination = destination
        self.server = server
        self.token = token
        self.config_file = config_file
        self.home = home


@dataclass(frozen=True)
class Target:
    """The resolved choice: `server` None means the embedded gateway."""

    server: str | None
    token: str | None
    destination: str | None
    config_file: str | None
    home: str | None


def resolve(url: str | None, config: object | None) -> Target:
    """Config fields, then the url, then the environment (ValueError for a bad url)."""
    server, destination = _parse_url(url)
    cfg = config if isinstance(config, JobgateExecutorConfig) else None
    if cfg is not None and cfg.server is not None:
        server = cfg.server
    if server is None:
        server = os.environ.get("JOBGATE_SERVER")
    if cfg is not None and cfg.destination is not None:
        destination = cfg.destination
    if destination is None:
        destination = os.environ.get("JOBGATE_DEST") or None
    token = (cfg.token if cfg is not None else None) or os.environ.get("JOBGATE_TOKEN")
    return Target(
        server=server or None,
        token=token or None,
        destination=destination,
        config_file=str(cfg.config_file) if cfg is not None and cfg.config_file else None,
        home=str(cfg.home) if cfg is not None and cfg.home else None,
    )


def _parse_url(url: str | None) -> tuple[str | None, str | None]:
    """(server URL or None, destination or None)."""
    if not url:
        return None, None
    if "://" not in url:
        return None, _destination(url, url)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    destination = query.get("destination", [None])[-1]
    if parts.scheme == "jobgate":
        if parts.netloc and destination is None:
            destination = parts.netloc
        if parts.path not in ("", "/"):
            raise ValueError(f"jobgate url {url!r}: expected jobgate://<destination>")
        return None, _destination(destination, url) if destination else None
    if parts.scheme in ("jobgate+http", "jobgate+https"):
        base = urlunsplit((parts.scheme.removeprefix("jobgate+"), parts.netloc, parts.path, "", ""))
        return base, _destination(destination, url) if destination else None
    raise ValueError(
        f"jobgate url {url!r}: use jobgate://<destination> or jobgate+http://host:port"
    )


def _destination(name: str, url: str) -> str:
    if not _DEST_RE.match(name):
        raise ValueError(f"jobgate url {url!r}: {name!r} is not a destination name")
    return name
