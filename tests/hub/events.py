"""Builders for events in tests: realistic defaults, override what the test is about."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.events import Channel, ChannelEvent, Direction, IdentityKind, InteractionKind, Party

_ids = itertools.count(1)
BASE_TIME = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    """A time ``hours`` after the tests' reference time."""
    return BASE_TIME + timedelta(hours=hours)


def event(
    channel: Channel = Channel.EMAIL,
    sender: str = "ana.lima@example.com",
    *,
    hours: float = 0,
    kind: InteractionKind = InteractionKind.MESSAGE,
    direction: Direction = Direction.INBOUND,
    external_id: str | None = None,
    sender_kind: IdentityKind | None = None,
    **fields: Any,
) -> ChannelEvent:
    external_id = external_id or f"{channel.value}-{next(_ids)}"
    party = Party(address=sender, name=fields.pop("name", ""), kind=sender_kind)
    body = {
        "channel": channel.value,
        "external_id": external_id,
        "from": sender,
        **{k: str(v) for k, v in fields.items()},
    }
    if direction is Direction.OUTBOUND:
        fields.setdefault("recipients", (party,))
        party = Party(address="support@corridor.test")
    return ChannelEvent(
        channel=channel,
        external_id=external_id,
        occurred_at=at(hours),
        direction=direction,
        sender=party,
        kind=kind,
        raw=json.dumps(body).encode(),
        raw_content_type="application/json",
        **fields,
    )


def event_json(**overrides: Any) -> dict[str, Any]:
    """A valid body for POST /api/events."""
    body: dict[str, Any] = {
        "channel": "email",
        "external_id": f"<{next(_ids)}@mail.example.com>",
        "occurred_at": "2026-11-02T09:00:00Z",
        "direction": "inbound",
        "from": {"address": "ana.lima@example.com", "name": "Ana Lima"},
        "subject": "Order 48213 has not arrived",
        "text": "Hello, my order 48213 was due on Monday and has not arrived.",
    }
    body.update(overrides)
    return body
