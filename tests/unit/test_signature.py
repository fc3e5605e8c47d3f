"""What a callback receiver relies on: the signature (and the verification snippet in
docs/callbacks.md), which addresses are never called, and the retry schedule."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobgate.config import CallbackSettings, load_config
from jobgate.engine.addresses import AddressPolicy, Refused
from jobgate.engine.callbacks import backoff
from jobgate.errors import ConfigError, SpecError
from jobgate.service.callback_urls import CallbackUrls
from jobgate.signatures import sign, verify

DOCS = Path(__file__).parents[2] / "docs" / "callbacks.md"
BODY = b'{"event_id":"J:1"}'
# Computed with: printf '%s' '1700000000.{"event_id":"J:1"}' | openssl dgst -sha256 -hmac s3cret
ALLOWED = "callbacks.allowed_hosts"
KNOWN = "sha256=52f365e78b09154269cc4928fbcb850eaed9f9cc4307b4a32d384a4bf1668375"


def test_signature_known_answer() -> None:
    assert sign("s3cret", 1700000000, BODY) == KNOWN
    mac = hmac.new(b"s3cret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert f"sha256={mac}" == KNOWN


def test_verify_accepts_only_the_signed_body_secret_and_recent_time() -> None:
    now = 1700000100.0
    assert verify("s3cret", "1700000000", BODY, KNOWN, now=now)
    assert not verify("s3cret", "1700000000", BODY + b" ", KNOWN, now=now)
    assert not verify("other", "1700000000", BODY, KNOWN, now=now)
    assert not verify("s3cret", "1700000001", BODY, KNOWN, now=now)  # the time is signed
    assert not verify("s3cret", "1700000000", BODY, KNOWN, now=now + 3600)  # a replay
    assert not verify("s3cret", "soon", BODY, KNOWN, now=now)


def test_docs_snippet_verifies_a_real_signature() -> None:
    match = re.search(r"## Verifying the signature.*?```python\n(.*?)```", DOCS.read_text(), re.S)
    assert match, "docs/callbacks.md lost its verification snippet"
    snippet = match.group(1)
    assert len(snippet.strip().splitlines()) <= 10
    scope: dict[str, Any] = {}
    exec(snippet, scope)
    stamp = "1700000000"
    headers = {"X-Jobgate-Timestamp": stamp, "X-Jobgate-Signature": sign("k", int(stamp), BODY)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("time.time", lambda: 1700000010.0)
        assert scope["verify"]("k", headers, BODY)
        assert not scope["verify"]("k", headers, BODY + b"x")
        assert not scope["verify"]("wrong", headers, BODY)
        mp.setattr("time.time", lambda: 1700009999.0)
        assert not scope["verify"]("k", headers, BODY)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata services
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    reason = AddressPolicy([]).refusal("hook.example.org", ipaddress.ip_address(address))
    assert reason is not None
    assert reason == f"{address} ({kind} address) is not in callbacks.allowed_hosts"


def test_ipv4_mapped_address_is_judged_as_ipv4() -> None:
    reason = AddressPolicy([]).refusal("h", ipaddress.ip_address("::ffff:10.0.0.1"))
    assert reason == "10.0.0.1 (private address) is not in callbacks.allowed_hosts"


@pytest.mark.parametrize(
    ("address", "inner", "kind"),
    [
        ("::7f00:1", "127.0.0.1", "loopback"),  # IPv4-compatible
        ("::ffff:0:7f00:1", "127.0.0.1", "loopback"),  # IPv4-translated (SIIT)
        ("64:ff9b::7f00:1", "127.0.0.1", "loopback"),  # NAT64, well-known prefix
        ("64:ff9b::a9fe:a9fe", "169.254.169.254", "link-local"),
        ("64:ff9b:1::a00:1", "10.0.0.1", "private"),  # NAT64, local-use prefix
        ("2002:7f00:1::", "127.0.0.1", "loopback"),  # 6to4
        ("2002:a00:1::1", "10.0.0.1", "private"),
        ("2001:0:7f00:1::", "127.0.0.1", "loopback"),  # Teredo server
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1", "private"),  # Teredo client
    ],
)
def test_an_ipv6_address_is_judged_by_the_ipv4_it_embeds(
    address: str, inner: str, kind: str
) -> None:
    reason = AddressPolicy([]).refusal("h", ipaddress.ip_address(address))
    assert reason == f"{address} (embeds {inner}, a {kind} address) is not in {ALLOWED}"


def test_site_local_and_unassigned_ipv6_are_not_public() -> None:
    policy = AddressPolicy([])
    assert policy.refusal("h", ipaddress.ip_address("fec0::1")) == (
        f"fec0::1 (site-local address) is not in {ALLOWED}"
    )
    assert policy.refusal("h", ipaddress.ip_address("::808:808")) == (
        f"::808:808 (reserved address) is not in {ALLOWED}"  # compatible, public inside
    )


def test_an_embedded_public_or_allowlisted_ipv4_passes_where_the_address_stands_for_it() -> None:
    ip = ipaddress.ip_address
    public = AddressPolicy([])
    for address in ("::ffff:8.8.8.8", "64:ff9b::808:808", "::ffff:0:808:808", "2002:808:808::1"):
        assert public.refusal("h", ip(address)) is None, address
    allowed = AddressPolicy(["127.0.0.1"])
    for address in ("::ffff:127.0.0.1", "64:ff9b::7f00:1", "::ffff:0:7f00:1"):
        assert allowed.refusal("h", ip(address)) is None, address
    # A tunnel's own address must pass as well: allowing 127.0.0.1 does not allow these.
    for address in ("::7f00:1", "2001:0:7f00:1::"):
        assert allowed.refusal("h", ip(address)) is not None, address


def test_public_and_allowlisted_addresses_pass() -> None:
    policy = AddressPolicy(["127.0.0.1", "10.20.0.0/16", "*.corp.example.org"])
    ip = ipaddress.ip_address
    assert policy.refusal("example.org", ip("93.184.216.34")) is None
    assert policy.refusal("example.org", ip("2606:2800:220:1::1")) is None
    assert policy.refusal("x", ip("127.0.0.1")) is None
    assert policy.refusal("x", ip("127.0.0.2")) is not None
    assert policy.refusal("x", ip("10.20.3.4")) is None
    assert policy.refusal("x", ip("10.21.0.1")) is not None
    assert policy.refusal("Hooks.CORP.example.org", ip("10.99.0.1")) is None
    assert policy.refusal("corp.example.org.evil.net", ip("10.99.0.1")) is not None


def test_addresses_checks_what_the_host_resolves_to() -> None:
    policy = AddressPolicy([])
    url = httpx.URL("http://127.0.0.1:9/hook")
    with pytest.raises(
        Refused, match=r"refused, not sent: 127\.0\.0\.1 -> 127\.0\.0\.1 \(loopback"
    ):
        asyncio.run(policy.addresses(url))
    allowed = AddressPolicy(["127.0.0.0/8"])
    assert asyncio.run(allowed.addresses(url)) == ["127.0.0.1"]
    assert asyncio.run(allowed.addresses(httpx.URL("http://localhost:9/"))) != []


def test_submit_refuses_what_delivery_would_refuse_and_resolves_names() -> None:
    """CallbackUrls, the check at submit: literal IPs exactly, names by what they resolve
    to now (localhost is in /etc/hosts), a name that does not resolve is let through."""
    urls = CallbackUrls(["10.20.0.0/16", "*.lab"])
    for url in ("http://[::7f00:1]:9/", "http://10.21.0.1/", "http://localhost:9/hook"):
        for check in (urls.check_now, lambda u: asyncio.run(urls.check(u))):
            with pytest.raises(SpecError) as info:
                check(url)
            assert info.value.field == "callback_url"
            assert "would never be called" in info.value.message, info.value.message
            assert "callbacks.allowed_hosts" in info.value.message
    for url in (None, "http://10.20.1.1/", "https://hooks.lab/x", "http://nowhere.invalid/"):
        urls.check_now(url)
        asyncio.run(urls.check(url))
    with pytest.raises(SpecError, match="callback_url: not a valid URL"):
        urls.check_now("http://[::1/")
    with pytest.raises(SpecError, match="callback_url: names no host"):
        asyncio.run(urls.check("http:///hook"))


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    settings = CallbackSettings()
    for attempts, nominal in ((1, 1.0), (2, 2.0), (3, 4.0), (10, 512.0), (13, 3600.0)):
        delays = [backoff(attempts, settings) for _ in range(50)]
        assert all(0.75 * nominal <= d <= nominal for d in delays), (attempts, delays)
        assert len(set(delays)) > 1  # jittered
    assert backoff(10_000, settings) <= 3600.0


def test_callbacks_section_in_config(tmp_path: Path) -> None:
    toml = tmp_path / "jobgate.toml"
    toml.write_text('[callbacks]\nallowed_hosts = ["10.0.0.0/8", "*.lab"]\ntimeout_s = 3\n')
    cfg = load_config(toml, home=tmp_path)
    assert cfg.callbacks.allowed_hosts == ["10.0.0.0/8", "*.lab"]
    assert (cfg.callbacks.timeout_s, cfg.callbacks.max_age_s) == (3.0, 86400.0)
    toml.write_text('[callbacks]\nallowed_hosts = ["10.0.0.0/33"]\n')
    with pytest.raises(ConfigError, match=r"callbacks\.allowed_hosts"):
        load_config(toml, home=tmp_path)
    toml.write_text("[callbacks]\ntimeout = 3\n")
    with pytest.raises(ConfigError, match=r"callbacks\.timeout"):
        load_config(toml, home=tmp_path)
