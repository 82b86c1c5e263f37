"""Builders for events in tests: realistic defaults, override what the test is about."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from hub.events import Channel, ChannelEvent, Direction, IdentityKind, InteractionKind, Party
from hub.ingest import IngestResult, ingest_many
from hub.runtime import Runtime

_ids = itertools.count(1)
BASE_TIME = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    """A time ``hours`` after the tests' reference time."""
    return BASE_TIME + timedelta(hours=hours)


def put(runtime: Runtime, *items: object) -> list[IngestResult]:
    """Ingest ``items`` in one write transaction, as a connector's batch would."""
    with runtime.database.write() as session:
        return ingest_many(session, list(items), source="test")  # type: ignore[arg-type]


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


def post_event(client: FlaskClient, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """POST /api/events as a system would, let the journal processor take it, return what became of it.

    The answer to the POST only says "received" (202); what the event became
    (its interaction, customer, conversation, or its error) is what
    ``GET /api/events/<id>`` reports once the processor has run.
    """
    response = client.post("/api/events", json=body, headers=headers)
    assert response.status_code == 202, response.json
    assert response.json["status"] == "received"
    client.application.extensions["corridor"].journal.drain()
    outcome = client.get(response.headers["Location"], headers=headers)
    assert outcome.status_code == 200, outcome.json
    result: dict[str, Any] = outcome.json
    return result
