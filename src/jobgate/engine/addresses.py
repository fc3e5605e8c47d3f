"""Which addresses a callback may be sent to: public ones, and the non-public ones an
operator listed in `callbacks.allowed_hosts`."""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from collections.abc import Sequence

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
