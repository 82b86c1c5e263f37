"""Step 2, dedupe: the same event twice, or concurrently, is one interaction.

An event is known by ``(channel, external_id)`` (Message-ID, MessageSid,
CallSid, chat message id), unique in the database. Two passes, around
identity resolution:

1. within the batch: an event whose key (and fingerprint, below) came
   earlier in the same batch is a duplicate of that one, before anything
   is looked up;
2. against the timeline, once the customers are known: their rows are
   locked first on PostgreSQL (concurrent writers per customer queue up
   there), then every key is looked up in one statement per ``CHUNK``; an
   event already stored answers with the interaction it became.

Where the sender assigns the id (an email's Message-ID), one id does not
prove one message: mailers reuse ids, and forwarding tools keep the
original's. There a duplicate is the same id *and* the same content
:func:`fingerprint`; a different message under a known id is stored as its
own interaction, under a derived id (``<id>#<fingerprint prefix>``), with a
defect note, and a re-delivery of *that* one finds it under the derived id:
exactly once, whichever of the two comes again. The same raw bytes are
always the same message, however differently a newer parser reads them. A
batch with such a collision costs two more statements (the stored payloads,
the derived ids), never one per message.

Updates are deduplicated on ``(channel, update_id)`` in
:mod:`hub.ingest.updates`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select

from hub.events import Channel, ChannelEvent
from hub.ingest.pipeline import BatchState, IngestResult, InvalidEvent, Pending
from hub.ingest.statements import chunks, pairs_in
from hub.models import Customer, Interaction, JournalEntry

#: Channels whose ids the sender assigns: only there can two different
#: messages share one. Twilio's SIDs are Twilio's own, a chat message's id
#: the widget's, and an API event's id is the integrator's idempotency key:
#: a second event under one of those is the first one delivered again.
SENDER_ASSIGNED_IDS = frozenset({Channel.EMAIL})
#: Hex digits of the fingerprint in a derived id: 48 bits, so that two
#: different messages under one id never meet under one derived id.
DERIVED_ID_DIGITS = 12
#: Longest external id the timeline holds (and dedupe.check_event allows).
MAX_EXTERNAL_ID = 998


def fingerprint(event: ChannelEvent) -> str | None:
    """What tells a different message under a known id from the same message again.

    A SHA-256 over the sender, the subject and the text (whitespace runs and
    case folded, so a copy a server re-encoded still matches) and the time
    (an email's Date). None where the id alone decides: ids the provider or
    the receiving side assigns, and replies written in Corridor, whose copy
    read back from the Sent folder is the same message although the mail as
    sent (quoted history, its Date) differs from what the agent typed.
    """
    if event.channel not in SENDER_ASSIGNED_IDS or event.author_id is not None:
        return None
    if event.external_id.casefold().rstrip(">").endswith(".invalid"):
        # The reserved TLD (RFC 2606): an id the receiving side made up (the
        # email connector's, from Gmail's X-GM-MSGID or a hash of the bytes),
        # which names one message by construction.
        return None
    digest = hashlib.sha256()
    parts = (
        event.sender.address.casefold() if event.sender else "",
        _folded(event.subject),
        _folded(event.text),
        f"{event.occurred_at.timestamp():.6f}",
    )
    for part in parts:
        # surrogatepass: a lone surrogate must not make hashing fail; the
        # text is judged (repaired or refused) elsewhere.
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def derived_id(external_id: str, fingerprint: str) -> str:
    """The id a different message under a known ``external_id`` is stored under."""
    suffix = f"#{fingerprint[:DERIVED_ID_DIGITS]}"
    return external_id[: MAX_EXTERNAL_ID - len(suffix)] + suffix


def first_of_each(
    events: Sequence[tuple[int, ChannelEvent, int]], results: dict[int, IngestResult]
) -> list[tuple[int, ChannelEvent, int, str | None]]:
    """The events of a batch that come first in it, with their fingerprints; repeats are recorded as duplicates."""
    unique = []
    first_seen: set[tuple[str, str, str | None]] = set()
    for index, item, journal_id in events:
        check_event(item)
        fp = fingerprint(item)
        key = (item.channel.value, item.external_id, fp)
        if key in first_seen:
            results[index] = IngestResult(journal_id=journal_id, duplicate=True)
            continue
        first_seen.add(key)
        unique.append((index, item, journal_id, fp))
    return unique


@dataclass(frozen=True, slots=True)
class _Holder:
    """What holds a key already: a stored interaction or an event earlier in this batch."""

    fingerprint: str | None
    #: The stored interaction's ids; None for an event of this batch.
    stored: tuple[int, int, int | None] | None = None
    #: The raw payload it came as, where known (loaded only for a collision).
    raw: bytes | None = None


def not_on_timeline(state: BatchState, pending: list[Pending], results: dict[int, IngestResult]) -> list[Pending]:
    """The events not stored yet, in order; the others are recorded as duplicates of what they became.

    An event that is a different message under a known sender-assigned id
    leaves with its derived id and a defect note.
    """
    _lock_customers(state, {p.customer_id for p in pending})
    holders = _existing_interactions(state, [(p.event.channel.value, p.event.external_id) for p in pending])
    fresh: list[Pending] = []
    collisions: list[Pending] = []
    for p in pending:
        key = (p.event.channel.value, p.event.external_id)
        holder = holders.get(key)
        if holder is None:
            holders[key] = _Holder(p.fingerprint, raw=p.event.raw)
            fresh.append(p)
        elif holder.fingerprint is None or p.fingerprint is None or holder.fingerprint == p.fingerprint:
            _duplicate(p, holder, results)
        else:
            collisions.append(p)
    if not collisions:
        return fresh
    # The same bytes again are the same message, whatever the parser makes of
    # them: a resync or a second label folder after a parser change (a
    # charset repaired, say) must not turn every old message into two.
    _load_payloads(state, holders, [(p.event.channel.value, p.event.external_id) for p in collisions])
    different = []
    for p in collisions:
        holder = holders[(p.event.channel.value, p.event.external_id)]
        if holder.raw == p.event.raw:
            _duplicate(p, holder, results)
        else:
            different.append(p)
    derived = {p.index: derived_id(p.event.external_id, p.fingerprint or "") for p in different}
    holders.update(_existing_interactions(state, [(p.event.channel.value, derived[p.index]) for p in different]))
    for p in different:
        key = (p.event.channel.value, derived[p.index])
        holder = holders.get(key)
        if holder is not None:
            _duplicate(p, holder, results)
            continue
        holders[key] = _Holder(p.fingerprint, raw=p.event.raw)
        p.defects.append(
            f"another message with the id {p.event.external_id!r} is on the timeline (a different sender, "
            f"subject, text or date); this one is stored as {derived[p.index]!r}"
        )
        p.event = replace(p.event, external_id=derived[p.index])
        fresh.append(p)
    # In the order the batch gave them, as without collisions.
    fresh.sort(key=lambda p: p.index)
    return fresh


def check_event(event: ChannelEvent) -> None:
    """Refuse an event whose key or time the timeline cannot hold, naming the field."""
    if not isinstance(event.channel, Channel):
        raise InvalidEvent("channel", f"unknown channel {event.channel!r}")
    if not event.external_id or len(event.external_id) > MAX_EXTERNAL_ID:
        raise InvalidEvent("external_id", "must be 1 to 998 characters")
    if event.occurred_at.tzinfo is None:
        raise InvalidEvent("occurred_at", "must include a time zone")


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _duplicate(p: Pending, holder: _Holder, results: dict[int, IngestResult]) -> None:
    if holder.stored is None:
        # An event earlier in this batch holds the key; like a repeat that
        # first_of_each found, it has no interaction to name yet.
        results[p.index] = IngestResult(journal_id=p.journal_id, duplicate=True)
        return
    interaction_id, customer_id, conversation_id = holder.stored
    results[p.index] = IngestResult(
        journal_id=p.journal_id,
        interaction_id=interaction_id,
        customer_id=customer_id,
        conversation_id=conversation_id,
        duplicate=True,
    )


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


def _existing_interactions(state: BatchState, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], _Holder]:
    found: dict[tuple[str, str], _Holder] = {}
    for chunk in chunks(list(keys)):
        rows = state.conn.execute(
            select(
                Interaction.channel,
                Interaction.external_id,
                Interaction.id,
                Interaction.customer_id,
                Interaction.conversation_id,
                Interaction.fingerprint,
            ).where(pairs_in(Interaction.channel, Interaction.external_id, chunk))
        )
        for channel, external_id, iid, cid, conv, fp in rows:
            found[(channel, external_id)] = _Holder(fp, (iid, cid, conv))
    return found


def _load_payloads(state: BatchState, holders: dict[tuple[str, str], _Holder], keys: list[tuple[str, str]]) -> None:
    """Add the journaled payloads of the stored interactions holding ``keys``."""
    wanted = sorted({key for key in keys if holders[key].stored is not None})
    for chunk in chunks(wanted):
        rows = state.conn.execute(
            select(Interaction.channel, Interaction.external_id, JournalEntry.payload)
            .join(JournalEntry, JournalEntry.id == Interaction.journal_id)
            .where(pairs_in(Interaction.channel, Interaction.external_id, chunk))
        )
        for channel, external_id, payload in rows:
            holders[(channel, external_id)] = replace(holders[(channel, external_id)], raw=bytes(payload))
