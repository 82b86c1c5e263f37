"""Live updates: what changed, announced to open consoles and chat widgets.

One mechanism for everything that must appear in a browser without a reload:

* **The feed is a table** (``live_event``). A change is announced by
  :func:`publish` (or :func:`publish_many`) **in the transaction that makes
  the change**: a rollback takes the announcement back with it, a commit
  makes both durable at once. Nothing lives in process memory, so any number
  of web, worker and stream processes see the same feed.
* **Topics** say who may hear an event: :data:`AGENTS` carries everything the
  console shows (every agent may see every conversation);
  ``conversation:<id>`` (:func:`conversation_topic`) carries only what the
  customer in that conversation may see. Internal notes are never published
  there. ``chat:<session>`` (:func:`chat_topic`) is one chat visitor's:
  the web chat publishes agents' replies (with their text), typing and read
  receipts there.
* **Ids are the order.** Event ids are server-sent event ids; a client that
  reconnects with ``Last-Event-ID`` gets every event of its topics after it.
  On PostgreSQL a sequence hands out ids in the order transactions *start*
  publishing, not the order they commit, so a reader could see id 11 and
  later 10. :func:`publish_many` therefore takes a transaction-scoped
  advisory lock first: publishing transactions commit in id order (the lock
  is held from the announcement to the commit, which is why the write path
  announces last). SQLite has one writer at a time anyway.
* **The wake-up** is ``NOTIFY corridor_live`` on PostgreSQL (sent at commit,
  one per transaction); on SQLite the stream process polls the table, a
  primary-key range read every [live] poll_interval.

Streams are served by :mod:`hub.live.server` (``corridor live``), which
authenticates them with short-lived signed tokens from :mod:`hub.live.tokens`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from hub.models import Interaction, LiveEvent, utcnow

#: Everything the agent console shows.
AGENTS = "agents"
#: The PostgreSQL channel the wake-up is sent on.
CHANNEL = "corridor_live"
#: pg_advisory_xact_lock key ordering publishing transactions ("corridor" in ASCII, truncated).
LOCK_KEY = 0x636F72726964


def conversation_topic(conversation_id: int) -> str:
    """The topic of what the customer in one conversation may see (the chat widget's)."""
    return f"conversation:{conversation_id}"


def chat_topic(session: str) -> str:
    """The topic of one chat visitor's widget (their chat session): what that visitor alone may see.

    Not the conversation's topic: a conversation can hold more than one
    visitor's chat (two visitors claiming the same email land on that
    customer's timeline), and neither may read the other's.
    """
    return f"chat:{session}"


@dataclass(frozen=True)
class Announcement:
    """One event to publish: a topic, what happened, and JSON-able details."""

    topic: str
    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeedEvent:
    """An event as read back from the feed."""

    id: int
    topic: str
    kind: str
    data: dict[str, Any]
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        """What a stream client receives as the event's ``data``."""
        return {
            "id": self.id,
            "topic": self.topic,
            "kind": self.kind,
            "data": self.data,
            "at": self.created_at.isoformat().replace("+00:00", "Z"),
        }


def publish(session: Session, topic: str, kind: str, data: Mapping[str, Any] | None = None) -> None:
    """Announce one change in the current transaction (see the module docstring)."""
    publish_many(session, [Announcement(topic, kind, data or {})])


def publish_many(session: Session, announcements: Iterable[Announcement]) -> None:
    """Announce changes in the current transaction, in the order given.

    Call it as the transaction's last step: on PostgreSQL it holds a lock
    that orders publishing transactions until the commit.
    """
    now = utcnow()
    rows = [{"topic": a.topic, "kind": a.kind, "data": dict(a.data), "created_at": now} for a in announcements]
    if not rows:
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    session.execute(insert(LiveEvent), rows)
    if postgres:
        # Delivered at commit, once per transaction however often it is sent.
        session.execute(text(f"NOTIFY {CHANNEL}"))


def announce_ingest(session: Session, notifications: Sequence[Mapping[str, Any]]) -> None:
    """Publish what the write path did: ``interaction.created`` / ``interaction.updated``.

    ``notifications`` are the write path's own records of what it did (dicts
    with ``type`` and ``interaction_id``, as ``hub.ingest`` collects them).
    Each becomes an event on :data:`AGENTS` and on the interaction's
    conversation topic; an inbound call that is ringing also becomes a
    ``call.ringing`` event for the console's screen pop. The details come from
    the interactions themselves (one query per batch), so the events say the
    same whoever called this.
    """
    ids = sorted({int(n["interaction_id"]) for n in notifications if n.get("interaction_id") is not None})
    if not ids:
        return
    rows = {
        row.id: row
        for row in session.execute(
            select(
                Interaction.id,
                Interaction.customer_id,
                Interaction.conversation_id,
                Interaction.channel,
                Interaction.direction,
                Interaction.kind,
                Interaction.status,
                Interaction.from_address,
                Interaction.author_id,
            ).where(Interaction.id.in_(ids))
        )
    }
    announcements: list[Announcement] = []
    for notification in notifications:
        row = rows.get(int(notification.get("interaction_id") or 0))
        if row is None:
            continue
        kind = str(notification.get("type") or "interaction.updated")
        data = {
            "interaction_id": row.id,
            "customer_id": row.customer_id,
            "conversation_id": row.conversation_id,
            "channel": row.channel,
            "direction": row.direction,
            "kind": row.kind,
            "status": row.status,
        }
        announcements.append(Announcement(AGENTS, kind, data))
        if row.conversation_id is not None and row.direction != "internal":
            announcements.append(Announcement(conversation_topic(row.conversation_id), kind, data))
        if row.channel == "voice" and row.direction == "inbound" and row.status == "ringing":
            announcements.append(Announcement(AGENTS, "call.ringing", {**data, "from_address": row.from_address}))
    publish_many(session, announcements)


def position(session: Session) -> int:
    """The newest event id: a page rendered now is current up to here."""
    return int(session.scalar(select(func.coalesce(func.max(LiveEvent.id), 0))) or 0)


def events_after(
    session: Session, after: int, topics: Sequence[str] | None = None, limit: int = 500
) -> list[FeedEvent]:
    """Events with id > ``after`` (of ``topics``, or all), oldest first."""
    query = select(LiveEvent).where(LiveEvent.id > after).order_by(LiveEvent.id).limit(limit)
    if topics is not None:
        query = query.where(LiveEvent.topic.in_(list(topics)))
    return [FeedEvent(e.id, e.topic, e.kind, e.data, e.created_at) for e in session.scalars(query)]


def oldest_id(session: Session) -> int | None:
    """The oldest event still kept; a client behind it has missed pruned events."""
    return session.scalar(select(func.min(LiveEvent.id)))


def prune(session: Session, keep: timedelta, now: datetime | None = None) -> int:
    """Delete events older than ``keep``; the newest event always stays. Returns how many."""
    cutoff = (now or utcnow()) - keep
    newest = select(func.max(LiveEvent.id)).scalar_subquery()
    result = session.execute(delete(LiveEvent).where(LiveEvent.created_at < cutoff, LiveEvent.id < newest))
    return int(getattr(result, "rowcount", 0) or 0)
