"""The ``X-Corridor-Signature`` header: HMAC-SHA256 over the timestamp and the body.

``X-Corridor-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``

The timestamp is signed with the body so a captured request cannot be
replayed later: receivers refuse a ``t`` outside their window (five minutes
in :func:`verify`). Every attempt is signed anew, so a retry a day later
still verifies. The README has the same check for receivers, standalone.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Corridor-Signature"
#: Seconds a receiver accepts a signature for, either side of its clock.
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, header: str, body: bytes, *, now: float | None = None, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of ``now``."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).rsplit("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
