"""Step 2, dedupe: the same event twice, or concurrently, is one interaction.

An event is known by ``(channel, external_id)`` (Message-ID, MessageSid,
CallSid, chat message id), unique in the database. Two passes, around
identity resolution:

1. within the batch: an event whose key came earlier in the same batch is a
   duplicate of that one, before anything is looked up;
2. against the timeline, once the customers are known: their rows are
   locked first on PostgreSQL (concurrent writers per customer queue up
   there), then every key is looked up in one statement per ``CHUNK``; an
   event already stored answers with the interaction it became.

Updates are deduplicated on ``(channel, update_id)`` in
:mod:`hub.ingest.updates`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from hub.events import Channel, ChannelEvent
from hub.ingest.pipeline import BatchState, IngestResult, InvalidEvent, Pending
from hub.ingest.statements import chunks, pairs_in
from hub.models import Customer, Interaction


def first_of_each(
    events: Sequence[tuple[int, ChannelEvent, int]], results: dict[int, IngestResult]
) -> list[tuple[int, ChannelEvent, int]]:
    """The events of a batch whose key comes first in it; later ones are recorded as duplicates."""
    unique = []
    first_seen: dict[tuple[str, str], int] = {}
    for index, item, journal_id in events:
        check_event(item)
        key = (item.channel.value, item.external_id)
        if key in first_seen:
            results[index] = IngestResult(journal_id=journal_id, duplicate=True)
            continue
        first_seen[key] = index
        unique.append((index, item, journal_id))
    return unique


def not_on_timeline(state: BatchState, pending: list[Pending], results: dict[int, IngestResult]) -> list[Pending]:
    """The events not stored yet, in order; the others are recorded as duplicates of what they became."""
    _lock_customers(state, {p.customer_id for p in pending})
    existing = _existing_interactions(state, [(p.event.channel.value, p.event.external_id) for p in pending])
    fresh = []
    for p in pending:
        found = existing.get((p.event.channel.value, p.event.external_id))
        if found is not None:
            results[p.index] = IngestResult(
                journal_id=p.journal_id,
                interaction_id=found[0],
                customer_id=found[1],
                conversation_id=found[2],
                duplicate=True,
            )
        else:
            fresh.append(p)
    return fresh


def check_event(event: ChannelEvent) -> None:
    """Refuse an event whose key or time the timeline cannot hold, naming the field."""
    if not isinstance(event.channel, Channel):
        raise InvalidEvent("channel", f"unknown channel {event.channel!r}")
    if not event.external_id or len(event.external_id) > 998:
        raise InvalidEvent("external_id", "must be 1 to 998 characters")
    if event.occurred_at.tzinfo is None:
        raise InvalidEvent("occurred_at", "must include a time zone")


def _lock_customers(state: BatchState, customer_ids: set[int]) -> None:
    # Serialises concurrent writers per customer on PostgreSQL, so two
    # deliveries of one event, or two first messages of a customer, cannot
    # both pass the duplicate check or both open a conversation. SQLite
    # serialises all writers already (BEGIN IMMEDIATE).
    if state.session.get_bind().dialect.name != "postgresql" or not customer_ids:
        return
    for chunk in chunks(sorted(customer_ids)):
        state.conn.execute(
            select(Customer.id).where(Customer.id.in_(chunk)).order_by(Customer.id).with_for_update()
        ).all()


def _existing_interactions(
    state: BatchState, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int, int | None]]:
    found: dict[tuple[str, str], tuple[int, int, int | None]] = {}
    for chunk in chunks(list(keys)):
        rows = state.conn.execute(
            select(
                Interaction.channel,
                Interaction.external_id,
                Interaction.id,
                Interaction.customer_id,
                Interaction.conversation_id,
            ).where(pairs_in(Interaction.channel, Interaction.external_id, chunk))
        )
        for channel, external_id, iid, cid, conv in rows:
            found[(channel, external_id)] = (iid, cid, conv)
    return found
