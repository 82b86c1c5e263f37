"""Subscriptions: create, change, pause, resume, remove; their delivery logs. Services flush; callers commit."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from hub.customers import NotFound, audit
from hub.integrations import EVENT_TYPES, PAYLOAD_VERSION, TEST_EVENT, WebhookSettings
from hub.integrations.targets import Resolver, check_url
from hub.live import position
from hub.models import ConnectorState, WebhookDelivery, WebhookSubscription, utcnow
from hub.state import load_state, save_state

ACTIVE = "active"
PAUSED = "paused"
#: The dispatcher's cursor in connector_state: the last feed id it handled.
CURSOR = ("webhooks", "feed")


class InvalidSubscription(ValueError):
    """A subscription field is wrong; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _check_events(events: Any) -> list[str]:
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise InvalidSubscription("events", f"must be a non-empty list of event types: {', '.join(EVENT_TYPES)}")
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise InvalidSubscription("events", f"unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}")
    return sorted(set(events))


def _check_url(url: Any, settings: WebhookSettings, resolver: Resolver | None) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidSubscription("url", "is required")
    if len(url) > 2000:
        raise InvalidSubscription("url", "must be at most 2000 characters")
    try:
        check_url(url.strip(), settings.allowed_hosts, resolver)
    except ValueError as exc:
        raise InvalidSubscription("url", str(exc)) from None
    return url.strip()


def get_subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    """The subscription, or NotFound."""
    found = session.get(WebhookSubscription, subscription_id)
    if found is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return found


def list_subscriptions(session: Session) -> list[WebhookSubscription]:
    """Every subscription, oldest first."""
    return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def create_subscription(
    session: Session,
    settings: WebhookSettings,
    *,
    url: Any,
    events: Any,
    description: Any = "",
    actor_id: int | None,
    resolver: Resolver | None = None,
) -> WebhookSubscription:
    """A new active subscription with a fresh secret; it gets events from now on."""
    if not isinstance(description, str) or len(description) > 500:
        raise InvalidSubscription("description", "must be a string of at most 500 characters")
    # The checks that need no DNS first.
    event_types = _check_events(events)
    subscription = WebhookSubscription(
        url=_check_url(url, settings, resolver),
        event_types=event_types,
        description=description,
        secret=f"whsec_{secrets.token_urlsafe(32)}",
        status=ACTIVE,
        consecutive_failures=0,
        created_by_id=actor_id,
    )
    session.add(subscription)
    if load_state(session, *CURSOR) is None:
        # The first subscription: the dispatcher starts at the feed's end, not at its history.
        save_state(session, *CURSOR, {"after": position(session)})
    session.flush()
    audit(session, actor_id, "webhook.create", "webhook_subscription", subscription.id,
          url=subscription.url, events=subscription.event_types)  # fmt: skip
    return subscription


def update_subscription(
    session: Session,
    settings: WebhookSettings,
    subscription_id: int,
    changes: dict[str, Any],
    *,
    actor_id: int | None,
    resolver: Resolver | None = None,
) -> WebhookSubscription:
    """Change url, events, description or status ("paused" / "active"); unknown fields are refused."""
    subscription = get_subscription(session, subscription_id)
    unknown = sorted(set(changes) - {"url", "events", "description", "status"})
    if unknown:
        raise InvalidSubscription(unknown[0], "cannot be changed (url, events, description, status can)")
    if "url" in changes:
        subscription.url = _check_url(changes["url"], settings, resolver)
    if "events" in changes:
        subscription.event_types = _check_events(changes["events"])
    if "description" in changes:
        if not isinstance(changes["description"], str) or len(changes["description"]) > 500:
            raise InvalidSubscription("description", "must be a string of at most 500 characters")
        subscription.description = changes["description"]
    status = changes.get("status")
    if status is not None and status not in (ACTIVE, PAUSED):
        raise InvalidSubscription("status", "must be 'active' or 'paused'")
    if status == PAUSED and subscription.status != PAUSED:
        pause(session, subscription, "paused by an admin", actor_id=actor_id)
    elif status == ACTIVE and subscription.status != ACTIVE:
        resume(session, settings, subscription, actor_id=actor_id)
    session.flush()
    audit(session, actor_id, "webhook.update", "webhook_subscription", subscription.id,
          changed=sorted(changes))  # fmt: skip
    return subscription


def pause(session: Session, subscription: WebhookSubscription, reason: str, *, actor_id: int | None) -> None:
    """Stop sending; deliveries keep being written and wait for :func:`resume`."""
    subscription.status = PAUSED
    subscription.paused_reason = reason
    subscription.paused_at = utcnow()
    session.flush()
    audit(session, actor_id, "webhook.paused", "webhook_subscription", subscription.id, reason=reason,
          consecutive_failures=subscription.consecutive_failures)  # fmt: skip


def resume(
    session: Session, settings: WebhookSettings, subscription: WebhookSubscription, *, actor_id: int | None
) -> None:
    """Send again: what waited is due now, with a full retry window of its own."""
    now = utcnow()
    subscription.status = ACTIVE
    subscription.paused_reason = None
    subscription.paused_at = None
    subscription.consecutive_failures = 0
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription.id,
            WebhookDelivery.status == "pending",
            # A test is sent by whoever asked for it, never by the worker.
            WebhookDelivery.event_type != TEST_EVENT,
        )
        .values(next_attempt_at=now, expires_at=now + timedelta(hours=settings.retry_hours))
    )
    session.flush()
    audit(session, actor_id, "webhook.resumed", "webhook_subscription", subscription.id)


def remove_subscription(session: Session, subscription_id: int, *, actor_id: int | None) -> None:
    """Delete the subscription and its delivery log."""
    subscription = get_subscription(session, subscription_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id))
    audit(session, actor_id, "webhook.delete", "webhook_subscription", subscription.id, url=subscription.url)
    session.delete(subscription)
    session.flush()


def event_body(event_id: str, event_type: str, created_at: datetime, data: dict[str, Any]) -> str:
    """The JSON body of a delivery: the same bytes on every attempt."""
    at = created_at.isoformat().replace("+00:00", "Z")
    body = {"id": event_id, "version": PAYLOAD_VERSION, "type": event_type, "created_at": at, "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)


def queue_test(session: Session, subscription_id: int) -> WebhookDelivery:
    """A ``webhook.test`` delivery for the caller to send at once (never retried, never by the worker)."""
    subscription = get_subscription(session, subscription_id)
    now = utcnow()
    event_id = f"test_{secrets.token_hex(8)}"
    delivery = WebhookDelivery(
        subscription_id=subscription.id,
        event_id=event_id,
        event_type=TEST_EVENT,
        ordering_key=None,
        body=event_body(event_id, TEST_EVENT, now, {"subscription_id": subscription.id}),
        status="pending",
        attempts=0,
        # None: the worker never picks it up; the caller sends it.
        next_attempt_at=None,
        expires_at=now,
    )
    session.add(delivery)
    session.flush()
    # The column's default (now) fills in a None given to the constructor: the worker would then see the
    # test as due, fail it as expired while it is in flight, or send it a second time. None, on purpose:
    delivery.next_attempt_at = None
    session.flush()
    return delivery


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[WebhookDelivery]
    next_cursor: str | None


def delivery_log(
    session: Session, subscription_id: int, *, status: str | None, limit: int, before: int | None
) -> DeliveryPage:
    """A subscription's deliveries, newest first; ``before`` is the cursor (a delivery id)."""
    get_subscription(session, subscription_id)
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    rows = list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(rows, str(rows[-1].id) if more and rows else None)


def pending_counts(session: Session) -> dict[int, int]:
    """Deliveries waiting to be sent (or retried), per subscription."""
    rows = session.execute(
        select(WebhookDelivery.subscription_id, func.count())
        .where(WebhookDelivery.status == "pending", WebhookDelivery.event_type != TEST_EVENT)
        .group_by(WebhookDelivery.subscription_id)
    )
    return {row[0]: int(row[1]) for row in rows}


def health(session: Session) -> dict[str, Any]:
    """For /api/health: paused subscriptions, what waits, and how far the dispatcher is behind the feed."""
    subscriptions: Sequence[WebhookSubscription] = list_subscriptions(session)
    state = session.get(ConnectorState, CURSOR)
    cursor = int(state.value.get("after", 0)) if state is not None else None
    pending = session.scalar(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at.is_not(None))
        .order_by(WebhookDelivery.id)
        .limit(1)
    )
    oldest = session.get(WebhookDelivery, pending) if pending is not None else None
    return {
        "subscriptions": len(subscriptions),
        "paused": [s.id for s in subscriptions if s.status == PAUSED],
        "oldest_pending_seconds": round((utcnow() - oldest.created_at).total_seconds(), 1) if oldest else 0.0,
        "feed_behind": max(position(session) - cursor, 0) if cursor is not None else 0,
        "feed_gap": (state.value.get("gap") if state is not None else None),
    }
