"""A callback URL that delivery would refuse is refused at submit, naming `callback_url`,
by the engine's own AddressPolicy. An IP address is judged as it is; a host name by
every address it resolves to now. A name that does not resolve now is accepted: delivery
resolves it again before every attempt (and refuses it then, if it must)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import httpx

from jobgate.engine.addresses import AddressPolicy, IPAddress, Refused, found, literal, target
from jobgate.errors import SpecError

RESOLVE_S = 2.0  # longer, and the name is taken as not resolving now


class CallbackUrls:
    def __init__(self, allowed_hosts: Sequence[str]) -> None:
        self._policy = AddressPolicy(allowed_hosts)

    async def check(self, url: str | None) -> None:
        """Refuse `url` (SpecError) if delivery would; host names resolved off the loop."""
        host, port = self._target(url)
        ips = _literal(host)
        self._judge(host, ips if ips is not None else await _resolve(host, port))

    def check_now(self, url: str | None) -> None:
        """`check` for sync callers, resolving in the caller's thread."""
        host, port = self._target(url)
        ips = _literal(host)
        self._judge(host, ips if ips is not None else _resolve_now(host, port))

    def _target(self, url: str | None) -> tuple[str, int]:
        """The URL's host and port; ("", 0) when there is nothing to resolve."""
        if url is None:
            return "", 0
        try:
            host, port = target(httpx.URL(url))
        except httpx.InvalidURL as exc:
            raise SpecError("callback_url", f"not a valid URL: {exc}") from None
        except Refused:
            raise SpecError("callback_url", "names no host") from None
        return ("", 0) if self._policy.host_allowed(host) else (host, port)

    def _judge(self, host: str, ips: list[IPAddress]) -> None:
        reason = self._policy.first_refusal(host, ips)
        if reason is not None:
            raise SpecError("callback_url", f"would never be called: {reason}")


def _literal(host: str) -> list[IPAddress] | None:
    """The host's one address if it is an IP address ([] if no host); None: a name."""
    if not host:
        return []
    ip = literal(host)
    return None if ip is None else [ip]


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """The name's addresses now ([] if it does not resolve in RESOLVE_S)."""
    try:
        async with asyncio.timeout(RESOLVE_S):  # getaddrinfo runs in the loop's executor
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError):
        return []
    return found(infos)


def _resolve_now(host: str, port: int) -> list[IPAddress]:
    try:
        return found(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    except OSError:
        return []
