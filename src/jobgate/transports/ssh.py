"""Commands and files on another host, over one SSH connection per destination (asyncssh).

Every job of a destination shares one connection: it is opened on first use (under a
lock, so a burst of jobs opens one, not hundreds - aiida#4288) and opened again, with
exponential back-off, after it drops. Commands run in channels capped by
`max_channels`; files go through one SFTP client reused by all. Host keys are always
checked against `known_hosts` (or ~/.ssh/known_hosts): a missing file is an error, never
a reason to skip the check. ~/.ssh/config is deliberately not read, so the destination
in jobgate.toml is the whole truth about how we connect.

Errors are translated here (xenon#668: "SSH down" must never read as "no such job"):
could not reach or lost the host -> SSHUnavailable (transient, retry later);
the host refused us (key, host key) -> SSHAuthError / SSHHostKeyError (fatal);
a missing remote file -> FileNotFoundError, as with the local transport.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import posixpath
import secrets
import shlex
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from jobgate.config import Destination
from jobgate.errors import FatalError, JobgateError, SchedulerUnavailable
from jobgate.transports import beneath, sftp_files
from jobgate.transports.asyncssh_quiet import asyncssh
from jobgate.transports.base import MAX_LISTED, CommandResult, Transport
from jobgate.views import FileReader

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
CONNECT_TIMEOUT_S = 15.0
FILE_TIMEOUT_S = 120.0  # one small SFTP operation (a script, a log, a stat)
# A silent peer (cable pulled, VM paused) is noticed after interval * count seconds.
KEEPALIVE_INTERVAL_S = 15.0
KEEPALIVE_COUNT_MAX = 4


class SSHUnavailable(SchedulerUnavailable):
    """The SSH host could not be reached or the connection dropped: retry later."""


class SSHAuthError(FatalError):
    """The SSH server refused our credentials (or we have none it could accept)."""


class SSHHostKeyError(FatalError):
    """The server's host key could not be verified against known_hosts."""


def remote_command(argv: list[str], cwd: str | None = None) -> str:
    """One shell command line: every argument quoted, `cd` first when a cwd is given.
    A relative cwd is relative to the remote home, where every SSH session starts."""
    if not argv:
        raise ValueError("empty command")
    command = shlex.join(argv)
    return f"cd {shlex.quote(cwd)} && {command}" if cwd else command


def known_hosts_path(dest: Destination) -> str:
    return os.path.expanduser(dest.known_hosts or "~/.ssh/known_hosts")


def connect_options(dest: Destination) -> dict[str, Any]:
    """asyncssh.connect() keyword arguments for a destination (files are not read here)."""
    if not dest.host:
        raise SSHAuthError(f"destination {dest.name!r} has no SSH host")
    options: dict[str, Any] = {
        "host": dest.host,
        "port": dest.port,
        "known_hosts": known_hosts_path(dest),  # never None: None would disable the check
        "config": None,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "login_timeout": CONNECT_TIMEOUT_S,
        "keepalive_interval": KEEPALIVE_INTERVAL_S,
        "keepalive_count_max": KEEPALIVE_COUNT_MAX,
    }
    if dest.user:
        options["username"] = dest.user
    if dest.key_file:
        # Only this key, as ssh's IdentitiesOnly: offering every agent key first can
        # exhaust the server's MaxAuthTries before ours is tried.
        options["client_keys"] = [os.path.expanduser(dest.key_file)]
        options["agent_path"] = None
    return options


def backoff_delay(failures: int) -> float:
    """Seconds to wait after `failures` consecutive failed connection attempts."""
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(failures - 1, 30)))


class SSHTransport(Transport):
    def __init__(self, dest: Destination) -> None:
        self.dest = dest
        self.where = f"{dest.user + '@' if dest.user else ''}{dest.host}:{dest.port}"
        self.connections_opened = 0  # for tests and benchmarks: should stay at 1
        self.commands_run = 0
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._sftp_conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()
        self._channels = asyncio.Semaphore(dest.max_channels)
        self._failures = 0
        self._retry_at = 0.0
        self._last_error: JobgateError | None = None

    # -- the connection -------------------------------------------------------------------

    async def _connection(self) -> asyncssh.SSHClientConnection:
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            if self._conn is not None:
                log.warning("SSH connection to %s dropped: reconnecting", self.where)
            self._conn = None
            loop = asyncio.get_running_loop()
            if self._last_error is not None and loop.time() < self._retry_at:
                # Fail fast while backing off: a thousand waiting jobs must not mean
                # a thousand connection attempts.
                left = self._retry_at - loop.time()
                raise type(self._last_error)(f"{self._last_error} (next attempt in {left:.0f} s)")
            began = loop.time()
            try:
                self._conn = await self._open()
            except JobgateError as exc:
                self._failures += 1
                delay = backoff_delay(self._failures)
                self._retry_at, self._last_error = loop.time() + delay, exc
                log.warning("%s (next attempt in %.0f s)", exc, delay)
                raise
            self._failures, self._last_error = 0, None
            self.connections_opened += 1
            log.info(
                "SSH connection to %s open (%.0f ms)", self.where, 1000 * (loop.time() - began)
            )
            return self._conn

    async def _open(self) -> asyncssh.SSHClientConnection:
        options = connect_options(self.dest)
        if not os.path.isfile(options["known_hosts"]):
            raise SSHHostKeyError(
                f"cannot check the host key of {self.where}: known_hosts file "
                f"{options['known_hosts']} does not exist (set known_hosts for destination "
                f"{self.dest.name!r}; host-key checking is never turned off)"
            )
        for key in options.get("client_keys", []):
            if not os.path.isfile(key):
                raise SSHAuthError(f"SSH key file {key} for {self.where} does not exist")
        try:
            return await asyncssh.connect(**options)
        except asyncssh.PermissionDenied as exc:
            how = (
                f"key {options['client_keys'][0]}"
                if "client_keys" in options
                else "the SSH agent and default keys"
            )
            raise SSHAuthError(
                f"SSH login to {self.where} refused (permission denied) with {how}: {exc.reason}"
            ) from None
        except asyncssh.HostKeyNotVerifiable as exc:
            raise SSHHostKeyError(
                f"refusing to connect: the host key of {self.where} is not trusted by "
                f"{options['known_hosts']} ({exc.reason}); check its fingerprint, then add it"
            ) from None
        except asyncssh.KeyImportError as exc:
            raise SSHAuthError(f"cannot read the SSH key for {self.where}: {exc}") from None
        except (OSError, asyncssh.Error) as exc:  # refused, unreachable, DNS, timeout, reset
            raise SSHUnavailable(f"SSH to {self.where} is down: {_describe(exc)}") from None

    async def _sftp_client(self) -> asyncssh.SFTPClient:
        conn = await self._connection()
        if self._sftp is not None and self._sftp_conn is conn:
            return self._sftp
        async with self._lock:  # one SFTP session per connection, however many callers
            if self._sftp is None or self._sftp_conn is not conn:
                with self._translate("starting SFTP"):
                    self._sftp = await conn.start_sftp_client()
                self._sftp_conn = conn
            return self._sftp

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """Turn asyncssh's errors from an open connection into ours."""
        try:
            yield
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath) as exc:
            raise FileNotFoundError(errno.ENOENT, f"{exc.reason} on {self.where}", what) from None
        except asyncssh.SFTPPermissionDenied as exc:
            raise PermissionError(errno.EACCES, f"{exc.reason} on {self.where}", what) from None
        except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection) as exc:
            raise SSHUnavailable(f"SSH to {self.where} is down ({what}): {exc.reason}") from None
        except asyncssh.SFTPError as exc:  # the server answered: a file problem, not the link
            raise OSError(errno.EIO, f"{what} on {self.where}: {exc.reason}") from None
        except asyncssh.ChannelOpenError as exc:  # the link closing, or the server's limit
            up = self._conn is not None and not self._conn.is_closed()
            state = "refused a channel" if up else "is down"
            raise SSHUnavailable(f"SSH to {self.where} {state} ({what}): {exc.reason}") from None
        except (asyncssh.DisconnectError, ConnectionError) as exc:
            down = f"SSH to {self.where} is down ({what})"
            raise SSHUnavailable(f"{down}: {_describe(exc)}") from None

    # -- commands ---------------------------------------------------------------------------

    async def run(
        self,
        argv: list[str],
        *,
        input: str | None = None,
        timeout: float = 60.0,
        cwd: str | None = None,
    ) -> CommandResult:
        command = remote_command(argv, cwd)
        conn = await self._connection()
        async with self._channels:
            self.commands_run += 1
            try:
                with self._translate(f"running {argv[0]}"):
                    result = await conn.run(
                        command, input=input, check=False, timeout=timeout, errors="replace"
                    )
            except asyncssh.TimeoutError:
                raise SSHUnavailable(
                    f"{argv[0]} on {self.where} did not finish within {timeout:.0f} s"
                ) from None
        if result.returncode is None:  # the channel closed without an exit status
            raise SSHUnavailable(
                f"SSH to {self.where} is down ({argv[0]}): connection lost before it ended"
            )
        return CommandResult(result.returncode, _text(result.stdout), _text(result.stderr))

    # -- files --------------------------------------------------------------------------------

    @asynccontextmanager
    async def _sftp_op(
        self, what: str, timeout: float | None
    ) -> AsyncIterator[asyncssh.SFTPClient]:
        """The shared SFTP client for one operation, errors translated. SFTP requests have
        no deadline of their own: a hung file system on the host (NFS) must show as
        'SSH did not answer' (retry later), not as a gateway stuck for good."""
        try:
            async with asyncio.timeout(timeout):
                sftp = await self._sftp_client()
                with self._translate(what):
                    yield sftp
        except TimeoutError:
            raise SSHUnavailable(f"{what} on {self.where}: no answer within {timeout} s") from None

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        # A private temporary name, then an atomic rename: readers never see half a file.
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        async with self._sftp_op(f"writing {path}", FILE_TIMEOUT_S) as sftp:
            fh = await self._create(sftp, tmp)
            async with sftp_files.removed_on_error(sftp, tmp):
                try:
                    await asyncio.gather(fh.write(data), fh.chmod(mode))
                finally:
                    await fh.close()
                await sftp.posix_rename(tmp, path)

    async def _create(self, sftp: asyncssh.SFTPClient, path: str) -> asyncssh.SFTPClientFile:
        """Open for writing, creating the parent directories only when they are missing:
        the common case (they exist) costs one round trip, not one per path component."""
        try:
            return await sftp.open(path, "wb")
        except asyncssh.SFTPNoSuchFile:
            parent = posixpath.dirname(path)
            if not parent:
                raise
            await sftp_files.mkdirs(sftp, parent)
            return await sftp.open(path, "wb")

    async def read_file(self, path: str, offset: int = 0, limit: int = -1) -> bytes:
        async with (
            self._sftp_op(f"reading {path}", FILE_TIMEOUT_S) as sftp,
            sftp.open(path, "rb") as fh,
        ):
            data: bytes = await fh.read(limit, offset)
        return data

    async def put(self, local_path: str, remote_path: str) -> None:
        mode = os.stat(local_path).st_mode & 0o777  # a missing local file stays an OSError
        tmp = f"{remote_path}.{secrets.token_hex(4)}.tmp"
        # No deadline for bulk copies: their length depends on the file.
        async with (
            self._sftp_op(f"uploading {local_path} to {remote_path}", None) as sftp,
            sftp_files.removed_on_error(sftp, tmp),
        ):
            try:
                await sftp.put(local_path, tmp)
            except asyncssh.SFTPNoSuchFile:
                await sftp_files.mkdirs(sftp, posixpath.dirname(remote_path) or ".")
                await sftp.put(local_path, tmp)
            await sftp.chmod(tmp, mode)
            await sftp.posix_rename(tmp, remote_path)

    async def get(self, remote_path: str, local_path: str) -> None:
        target = Path(local_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            async with self._sftp_op(f"downloading {remote_path}", None) as sftp:
                await sftp.get(remote_path, str(tmp))
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)

    async def exists(self, path: str) -> bool:
        async with self._sftp_op(f"looking for {path}", FILE_TIMEOUT_S) as sftp:
            return bool(await sftp.exists(path))

    async def make_dirs(self, path: str) -> None:
        async with self._sftp_op(f"creating {path}", FILE_TIMEOUT_S) as sftp:
            await sftp_files.mkdirs(sftp, path)

    async def open_beneath(self, root: str, rel: str) -> FileReader:
        # The remote host's own checks: the SSH user's rights, and no path that resolves
        # out of root (SFTP has no O_NOFOLLOW walk; the remote account is the job's own).
        beneath.parts_of(rel)
        async with self._sftp_op(f"opening {rel} in {root}", FILE_TIMEOUT_S) as sftp:
            full = await sftp_files.resolved_file(sftp, root, rel)
            return sftp_files.Reader(await sftp.open(full, "rb"), self._sftp_op)

    async def copy_beneath(self, root: str, rel: str, local_root: str, local_rel: str) -> None:
        beneath.parts_of(rel)
        async with self._sftp_op(f"looking for {rel} in {root}", FILE_TIMEOUT_S) as sftp:
            full = await sftp_files.resolved_file(sftp, root, rel)
        await self.get(full, posixpath.join(local_root, *beneath.parts_of(local_rel)))

    async def list_files(self, path: str) -> list[str]:
        async with self._sftp_op(f"listing {path}", FILE_TIMEOUT_S) as sftp:
            return await sftp_files.walk(sftp, path, MAX_LISTED)

    async def close(self) -> None:
        conn, self._conn, self._sftp, self._sftp_conn = self._conn, None, None, None
        if conn is not None:
            conn.close()
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await conn.wait_closed()
            except TimeoutError:  # a dead peer must not hold up the gateway's shutdown
                conn.abort()


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
    return str(exc) or type(exc).__name__
