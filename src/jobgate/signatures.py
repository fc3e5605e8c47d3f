"""Callback signatures: what jobgate signs and what a receiver checks (docs/callbacks.md).
Below every layer, so a receiver written in Python can import it with nothing else."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_TOLERANCE_S = 300  # what docs/callbacks.md tells receivers to accept


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 over `{timestamp}.{body}`: the timestamp is signed too,
    so a captured request cannot be replayed later with a fresh one."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """What a receiver does (in Python): signature valid and timestamp recent."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), signature)
