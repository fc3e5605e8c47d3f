"""Sortable job ids (ULID: 48-bit millisecond time + 80 random bits, Crockford base32)."""

from __future__ import annotations

import base64
import os
import re
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# base64's RFC 4648 base32 digits -> Crockford's: the encoding runs in C.
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
_lock = threading.Lock()
_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
_last_ms = 0
_last_rand = 0


def new_id() -> str:
    """A ULID; ids made in the same millisecond stay in order (monotonic random part)."""
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        _last_ms, _last_rand = ms, rand
    return encode((ms << 80) | rand)


def encode(value: int) -> str:
    """A 128-bit value as 26 Crockford base32 digits (130 bits, the first is 0-7)."""
    # Left-aligned in 160 bits, the 130 come out as the first 26 of base32's 32 digits.
    digits = base64.b32encode((value << 30).to_bytes(20, "big"))[:26]
    return digits.translate(_CROCKFORD).decode()


def is_id(text: str) -> bool:
    """Whether `text` is an id as new_id makes them (safe as a file name, and in a shell)."""
    return _ID.fullmatch(text) is not None
