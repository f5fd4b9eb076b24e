"""The signature of webhook and Node-RED deliveries (docs/actions.md shows a receiver's check).

    X-Tinyfleet-Timestamp: <unix seconds>
    X-Tinyfleet-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

The body is the exact bytes sent. A receiver recomputes the HMAC, compares in constant time and refuses a
timestamp too far from its clock (replays); `Idempotency-Key` lets it drop repeats of the same delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Tinyfleet-Timestamp"
SIGNATURE_HEADER = "X-Tinyfleet-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_S = 300


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The `X-Tinyfleet-Signature` value for `body` sent at `timestamp`."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_headers(secret: str | bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(
    secret: str | bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """What a receiver does: right HMAC over "<timestamp>.<body>" and a timestamp within the tolerance."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
