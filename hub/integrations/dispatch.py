"""Feed to deliveries: one ``webhook_delivery`` row per event and matching subscription.

Runs in ``corridor worker``. It reads the change feed (``live_event``) after
its cursor and, in one transaction, writes the deliveries and moves the
cursor past what it read, so an event becomes deliveries exactly once. The
cursor row is locked first: two workers on PostgreSQL take turns.

The feed carries what consoles need; what a subscriber gets is looked up
here, in the same snapshot, from the rows the events name (the interaction,
the conversation). ``conversation.opened`` is not in the feed yet: it is the
``interaction.created`` of a conversation's first interaction, which this
snapshot can tell (see README, "Outgoing webhooks", for the hook the write
path should publish instead).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from hub.integrations import WebhookSettings
from hub.integrations.subscriptions import CURSOR, event_body
from hub.live import AGENTS, FeedEvent, events_after, oldest_id, position
from hub.models import ConnectorState, Conversation, Interaction, WebhookDelivery, WebhookSubscription, utcnow

log = logging.getLogger(__name__)

#: Feed events read per transaction.
BATCH = 500
#: Feed kinds passed on under the same name.
PASSED_ON = {
    "conversation.assigned",
    "conversation.status_changed",
    "conversation.opened",
    "customer.merged",
    "customer.unmerged",
    "customer.erased",
}


@dataclass(frozen=True)
class WebhookEvent:
    """One event as subscribers get it."""

    event_id: str
    event_type: str
    ordering_key: str | None
    data: dict[str, Any]


def _iso(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _interaction(row: Interaction) -> dict[str, Any]:
    return {
        "id": row.id,
        "customer_id": row.customer_id,
        "conversation_id": row.conversation_id,
        "channel": row.channel,
        "direction": row.direction,
        "kind": row.kind,
        "external_id": row.external_id,
        "occurred_at": _iso(row.occurred_at),
        "from": row.from_address,
        "to": row.to_address,
        "subject": row.subject,
        "text": row.text,
        "status": row.status,
        "error_code": row.error_code,
        "error_message": row.error_message,
        "author_id": row.author_id,
    }


def _conversation(row: Conversation) -> dict[str, Any]:
    return {
        "id": row.id,
        "customer_id": row.customer_id,
        "status": row.status,
        "subject": row.subject,
        "assignee_id": row.assignee_id,
        "opened_at": _iso(row.opened_at),
        "last_activity_at": _iso(row.last_activity_at),
        "closed_at": _iso(row.closed_at),
    }


def _key(conversation_id: Any, customer_id: Any) -> str | None:
    if conversation_id is not None:
        return f"conversation:{conversation_id}"
    return f"customer:{customer_id}" if customer_id is not None else None


def webhook_events(session: Session, feed: Sequence[FeedEvent]) -> list[WebhookEvent]:
    """What the feed events mean to subscribers, in feed order (only the ``agents`` topic: it has everything)."""
    feed = [e for e in feed if e.topic == AGENTS]
    interaction_ids = {int(e.data["interaction_id"]) for e in feed if e.data.get("interaction_id") is not None}
    interactions = {
        row.id: row for row in session.scalars(select(Interaction).where(Interaction.id.in_(interaction_ids)))
    }
    conversation_ids = {row.conversation_id for row in interactions.values() if row.conversation_id is not None}
    conversation_ids |= {int(e.data["conversation_id"]) for e in feed if e.data.get("conversation_id") is not None}
    conversations = {
        row.id: row for row in session.scalars(select(Conversation).where(Conversation.id.in_(conversation_ids)))
    }
    first = dict(
        session.execute(
            select(Interaction.conversation_id, func.min(Interaction.id))
            .where(Interaction.conversation_id.in_(conversation_ids))
            .group_by(Interaction.conversation_id)
        ).all()
    )
    out: list[WebhookEvent] = []
    for event in feed:
        event_id = f"evt_{event.id}"
        interaction = interactions.get(int(event.data.get("interaction_id") or 0))
        if event.kind in ("interaction.created", "interaction.updated"):
            if interaction is None:
                continue  # gone since (erased): nothing left to tell
            conversation = conversations.get(interaction.conversation_id or 0)
            key = _key(interaction.conversation_id, interaction.customer_id)
            body = {"interaction": _interaction(interaction)}
            if conversation is not None:
                body["conversation"] = _conversation(conversation)
            if event.kind == "interaction.created":
                if conversation is not None and first.get(conversation.id) == interaction.id:
                    out.append(WebhookEvent(f"{event_id}.opened", "conversation.opened", key, body))
                out.append(WebhookEvent(event_id, "interaction.created", key, body))
            elif interaction.status is not None:
                out.append(WebhookEvent(event_id, "interaction.delivery_status_changed", key, body))
        elif event.kind in PASSED_ON:
            data = dict(event.data)
            conversation = conversations.get(int(data.get("conversation_id") or 0))
            if conversation is not None:
                data["conversation"] = _conversation(conversation)
            key = _key(data.get("conversation_id"), data.get("customer_id", data.get("target_id")))
            out.append(WebhookEvent(event_id, event.kind, key, data))
    return out


def dispatch(session: Session, settings: WebhookSettings, *, limit: int = BATCH) -> int:
    """Turn the next feed events into deliveries, in the caller's transaction; returns feed events read."""
    postgres = session.get_bind().dialect.name == "postgresql"
    state = session.get(ConnectorState, CURSOR, with_for_update=postgres, populate_existing=True)
    if state is None:
        return 0  # no subscription was ever made: nothing to send, and nothing to keep a place in
    after = int(state.value.get("after", 0))
    feed = events_after(session, after, limit=limit)
    if not feed:
        return 0
    value: dict[str, Any] = {"after": feed[-1].id}
    oldest = oldest_id(session)
    if oldest is not None and oldest > after + 1 and after < position(session):
        gap = {"after": after, "oldest": oldest, "at": _iso(utcnow())}
        log.error("webhooks: the feed may have been pruned past the dispatcher (ids %d-%d unread); raise [live] "
                  "retention_hours or keep the worker running", after + 1, oldest - 1)  # fmt: skip
        value["gap"] = gap
    elif "gap" in state.value:
        value["gap"] = state.value["gap"]
    state.value = value
    subscriptions = list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))
    if subscriptions:
        _write(session, settings, subscriptions, webhook_events(session, feed))
    session.flush()
    return len(feed)


def _write(
    session: Session,
    settings: WebhookSettings,
    subscriptions: Iterable[WebhookSubscription],
    events: Sequence[WebhookEvent],
) -> None:
    now = utcnow()
    expires = now + timedelta(hours=settings.retry_hours)
    rows = [
        {
            "subscription_id": subscription.id,
            "event_id": event.event_id,
            "event_type": event.event_type,
            "ordering_key": event.ordering_key,
            "body": event_body(event.event_id, event.event_type, now, event.data),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "expires_at": expires,
            "created_at": now,
        }
        for event in events
        for subscription in subscriptions
        if event.event_type in subscription.event_types
    ]
    if rows:
        session.execute(insert(WebhookDelivery), rows)
