"""Which addresses a callback may be sent to: public ones, and the non-public ones an
operator listed in `callbacks.allowed_hosts`. An IPv6 address that carries an IPv4 one
(mapped, translated, NAT64, 6to4, Teredo) is judged by that IPv4 too: `[::ffff:0:7f00:1]`
reaches 127.0.0.1 as surely as `127.0.0.1` does. Delivery checks before every attempt;
the service asks the same questions at submit (jobgate.service.callback_urls)."""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_V6 = ipaddress.IPv6Network
# The address *is* the IPv4 one (a socket, SIIT or NAT64 translator turns it into that):
# judged by the IPv4 alone.
_TRANSLATED = (_V6("::ffff:0:0:0/96"), _V6("64:ff9b::/96"))
# The IPv4 is the far end of a tunnel or a local translator: both must pass.
_COMPATIBLE = _V6("::/96")  # deprecated IPv4-compatible ::a.b.c.d
_LOCAL_NAT64 = _V6("64:ff9b:1::/48")  # RFC 8215, never public; IPv4 in the low 32 bits


class Refused(Exception):
    """The URL may not be called: the row fails at once and nothing is sent."""


class Unreachable(Exception):
    """Not now (e.g. DNS failed): try again later."""


def target(url: httpx.URL) -> tuple[str, int]:
    """The host (IDNA-encoded, as DNS and TLS want it) and port a URL names."""
    host = url.raw_host.decode("ascii")
    if not host:
        raise Refused(f"refused, not sent: no host in {url}")
    return host, url.port or (443 if url.scheme == "https" else 80)


def literal(host: str) -> IPAddress | None:
    """The address if `host` is an IP address written the usual way, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def found(infos: Iterable[tuple[Any, ...]]) -> list[IPAddress]:
    """The distinct addresses of a getaddrinfo answer, in its order."""
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[list[ipaddress.IPv4Address], bool]:
    """The IPv4 addresses `ip` carries, and whether it stands for them alone."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped], True
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in net for net in _TRANSLATED):
        return [low32], True
    if ip.sixtofour is not None:
        return [ip.sixtofour], False
    if ip.teredo is not None:
        return list(ip.teredo), False  # its server and (de-obfuscated) client
    if (ip in _COMPATIBLE and int(ip) > 1) or ip in _LOCAL_NAT64:  # not :: nor ::1
        return [low32], False
    return [], False


class AddressPolicy:
    """Public addresses are allowed; loopback, private, link-local, site-local,
    multicast, reserved and other non-global ones only if the host (glob) or address
    (IP/CIDR) is listed. Every address the name resolves to must pass, and the request
    then goes to those very addresses, so DNS cannot answer differently between check
    and connect."""

    def __init__(self, allowed_hosts: Sequence[str]) -> None:
        self._globs: list[str] = []
        self._nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowed_hosts:
            try:
                self._nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._globs.append(entry.lower())

    def host_allowed(self, host: str) -> bool:
        """The name is listed: allowed whatever it resolves to."""
        return any(fnmatch.fnmatchcase(host.lower(), g) for g in self._globs)

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why `ip` (an address of `host`) may not be called, or None if it may."""
        if self.host_allowed(host) or self._listed(ip):
            return None
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                return self.refusal(host, ip.ipv4_mapped)  # ::ffff:10.0.0.1 is 10.0.0.1
            inner, alone = embedded_ipv4(ip)
            for v4 in inner:
                if not (self._listed(v4) or _public(v4)):
                    return f"{ip} (embeds {v4}, a {_kind(v4)} address) is not in {_LIST}"
            if alone:
                return None
        return None if _public(ip) else f"{ip} ({_kind(ip)} address) is not in {_LIST}"

    def first_refusal(self, host: str, ips: Iterable[IPAddress]) -> str | None:
        """`host -> why` for the first of its addresses that may not be called."""
        for ip in ips:
            reason = self.refusal(host, ip)
            if reason is not None:
                return f"{host} -> {reason}"
        return None

    async def addresses(self, url: httpx.URL) -> list[str]:
        """The addresses to connect to, after checking every one of them."""
        host, port = target(url)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise Unreachable(f"cannot resolve {host!r}: {exc}") from None
        ips = found(infos)
        reason = self.first_refusal(host, ips)
        if reason is not None:
            raise Refused(f"refused, not sent: {reason}")
        return [str(ip) for ip in ips]

    def _listed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self._nets)


_LIST = "callbacks.allowed_hosts"


def _public(ip: IPAddress) -> bool:
    if not ip.is_global or ip.is_multicast:
        return False
    # Python counts site-local (fec0::/10, deprecated) and unassigned space as global.
    return not (isinstance(ip, ipaddress.IPv6Address) and (ip.is_site_local or ip.is_reserved))


def _kind(ip: IPAddress) -> str:
    # Most specific first: Python counts link-local, reserved, ... as private too.
    kinds = ("loopback", "link_local", "site_local", "multicast", "unspecified", "reserved")
    for kind in (*kinds, "private"):
        if getattr(ip, f"is_{kind}", False):
            return kind.replace("_", "-")
    return "non-public"
