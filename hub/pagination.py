"""Opaque keyset cursors: (occurred_at, id) of the last row of a page."""

from __future__ import annotations

import base64
from datetime import UTC, datetime


class InvalidCursor(ValueError):
    pass


def encode_cursor(occurred_at: datetime, row_id: int) -> str:
    raw = f"{occurred_at.astimezone(UTC).isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, _, row_id = base64.urlsafe_b64decode(padded).decode().partition("|")
        moment = datetime.fromisoformat(when)
        if moment.tzinfo is None or not row_id.isascii():
            raise ValueError
        key = int(row_id)
        # Past what a database key holds (2**63 - 1), or a time that has no
        # UTC equivalent: no page of ours ends there.
        if not 0 < key < 2**63:
            raise ValueError
        return moment.astimezone(UTC), key
    except (ValueError, OverflowError):
        raise InvalidCursor("cursor: not a cursor this server issued") from None
