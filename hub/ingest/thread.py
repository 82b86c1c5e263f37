"""Step 4, threading: which conversation each new interaction joins.

The rule, as the README states it (**Threading across channels**):

    Explicit references win (email ``In-Reply-To``/``References``, a call's
    parent call, a chat session — the same customer's only: a session id a
    widget reuses for the next visitor starts that visitor's own
    conversation, with a defect note). Otherwise the customer's open
    conversation with activity in the last 72 hours (configurable) continues,
    whatever the channel. Otherwise a new conversation starts. A subject
    alone never joins threads; auto-replies and bounces never open one.

In code, for each event of the batch in the order it occurred, the first
rule that gives a conversation decides:

0. an agent's reply names its conversation;
1. an explicit reference (email ``In-Reply-To``/``References``, a call's
   parent call) to an interaction already threaded, on the timeline or
   earlier in this batch, even outside the window;
2. a provider session (a chat) continues its conversation, the same
   customer's only; another customer's gets a defect note and is not joined;
3. the customer's open conversation continues, whatever the channel, when
   the event is within the continuation window of it;
4. an auto-reply or a bounce joins the customer's latest conversation, or
   none, and never opens one;
5. otherwise a new conversation starts.

The subject is never looked at, except to name a new conversation. A chosen
conversation is *touched*: its last activity moves forward, and a customer
writing into a closed one reopens it, so later events of the same batch
thread against the state the earlier ones left. Step 5
(:mod:`hub.ingest.append`) writes the new and changed conversations.

Every conversation an event may join is loaded before the rules run, in one
statement per ``CHUNK`` for each kind of lookup, never one per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from hub.events import ChannelEvent, Direction
from hub.ingest.pipeline import BatchState, ConversationState, InvalidEvent, Pending
from hub.ingest.statements import chunks, pairs_in
from hub.models import Conversation, ConversationStatus, Interaction

#: What threading needs of a conversation, in ConversationState's field order.
_CONVERSATION_STATE = (
    Conversation.id,
    Conversation.customer_id,
    Conversation.status,
    Conversation.opened_at,
    Conversation.last_activity_at,
    Conversation.subject,
)


def choose_conversations(state: BatchState, fresh: list[Pending]) -> list[ConversationState]:
    """Set each new event's conversation (``Pending.conversation``) by the rules above, in time order.

    Returns the existing conversations that were loaded for it, for step 5 to
    save those that changed.
    """
    if not fresh:
        return []
    threading = _Threading(state, fresh)
    for p in sorted(fresh, key=lambda p: (p.event.occurred_at, p.index)):
        threading.choose(p)
    return list(threading.conversations.values())


class _Threading:
    """One batch's threading: the conversations its events may join, and the rules."""

    def __init__(self, state: BatchState, fresh: list[Pending]) -> None:
        self.state = state
        self.window = state.config.continuation_window
        self.conversations: dict[int, ConversationState] = {}
        self.by_reference = _referenced_conversations(state, fresh)
        self.by_session = _session_conversations(state, fresh)
        earliest = min(p.event.occurred_at for p in fresh)
        self.latest_open = _open_conversations(state, {p.customer_id for p in fresh}, earliest - self.window)
        for conversation in self.latest_open.values():
            if conversation.id is not None:
                self.conversations[conversation.id] = conversation
        # Every existing conversation an event may name (by reference, session
        # or an agent's reply) in one statement per CHUNK: loaded one by one in
        # state_for(), a backfill of replies cost a query per conversation.
        # Loading one that ends up unchosen is harmless: it stays unchanged.
        named = {
            *self.by_reference.values(),
            *self.by_session.values(),
            *(p.event.conversation_id for p in fresh if p.event.conversation_id is not None),
        }
        self.conversations.update(_conversations_by_id(state, sorted(named - self.conversations.keys())))
        #: What this batch's earlier events chose, by their external id and session.
        self.batch_refs: dict[tuple[str, str], ConversationState] = {}

    def state_for(self, conversation_id: int) -> ConversationState:
        # Named conversations are loaded in bulk above; this lookup is
        # left for rule 4's latest conversation and for an id with no row.
        if conversation_id not in self.conversations:
            self.conversations.update(_conversations_by_id(self.state, [conversation_id]))
            if conversation_id not in self.conversations:
                raise InvalidEvent("conversation_id", f"no conversation {conversation_id}")
        return self.conversations[conversation_id]

    def choose(self, p: Pending) -> None:
        event = p.event
        chosen: ConversationState | None = None
        # 0. An agent's reply names its conversation.
        if event.conversation_id is not None:
            chosen = self.state_for(event.conversation_id)
        # 1. Explicit references win, even outside the window.
        for ref in event.thread_refs if chosen is None else ():
            key = (event.channel.value, ref)
            if key in self.batch_refs:
                chosen = self.batch_refs[key]
            elif key in self.by_reference:
                chosen = self.state_for(self.by_reference[key])
            if chosen is not None:
                break
        # 2. A provider session (a chat) keeps its conversation, but only
        # the same customer's: a widget that reuses a session id for the
        # next visitor must not file one customer's words (or send an
        # agent's reply) into another customer's conversation.
        if chosen is None and event.session:
            key = (event.channel.value, f"session:{event.session}")
            if key in self.batch_refs:
                chosen = self.batch_refs[key]
            elif (event.channel.value, event.session) in self.by_session:
                chosen = self.state_for(self.by_session[(event.channel.value, event.session)])
            if chosen is not None and chosen.customer_id != p.customer_id:
                p.defects.append(f"session {event.session!r} is another customer's conversation; not continued there")
                chosen = None
        # 3. The customer's open conversation continues, whatever the channel.
        # Non-personal senders have a customer of their own each, so the
        # same rule only ever continues that one sender's conversation.
        if chosen is None:
            candidate = self.latest_open.get(p.customer_id)
            if (
                candidate is not None
                and candidate.status != ConversationStatus.CLOSED
                and candidate.opened_at - self.window <= event.occurred_at <= candidate.last_activity_at + self.window
            ):
                chosen = candidate
        # 4. Auto-replies and bounces never open a conversation.
        if chosen is None and not event.opens_conversation:
            latest = self.state.conn.scalar(
                select(Conversation.id)
                .where(Conversation.customer_id == p.customer_id)
                .order_by(Conversation.last_activity_at.desc())
                .limit(1)
            )
            chosen = self.state_for(latest) if latest is not None else None
            p.conversation = chosen
            if chosen is not None:
                touch(chosen, event)
            return
        # 5. Otherwise a new conversation starts.
        if chosen is None:
            chosen = ConversationState(
                id=None,
                customer_id=p.customer_id,
                status=ConversationStatus.OPEN,
                opened_at=event.occurred_at,
                last_activity_at=event.occurred_at,
                subject=conversation_subject(event),
                is_new=True,
            )
        touch(chosen, event)
        p.conversation = chosen
        if chosen.customer_id == p.customer_id:
            current = self.latest_open.get(p.customer_id)
            if current is None or current.last_activity_at <= chosen.last_activity_at:
                self.latest_open[p.customer_id] = chosen
        self.batch_refs[(event.channel.value, event.external_id)] = chosen
        if event.session:
            self.batch_refs[(event.channel.value, f"session:{event.session}")] = chosen


def touch(conversation: ConversationState, event: ChannelEvent) -> None:
    """Move a chosen conversation's state by the event that joins it."""
    if event.occurred_at > conversation.last_activity_at:
        conversation.last_activity_at = event.occurred_at
        conversation.changed = True
    if event.occurred_at < conversation.opened_at and conversation.is_new:
        conversation.opened_at = event.occurred_at
    # A customer writing into a closed conversation reopens it; an
    # auto-reply does not.
    if (
        event.direction is Direction.INBOUND
        and event.opens_conversation
        and conversation.status == ConversationStatus.CLOSED
    ):
        conversation.status = ConversationStatus.OPEN
        conversation.changed = True


def conversation_subject(event: ChannelEvent) -> str:
    """A new conversation's subject: the event's, else its first line, else what it is."""
    if event.subject.strip():
        return event.subject.strip()[:500]
    first_line = next((line.strip() for line in event.text.splitlines() if line.strip()), "")
    if first_line:
        return first_line[:80] + ("…" if len(first_line) > 80 else "")
    return f"{event.channel.value.capitalize()} {event.kind.value.replace('_', ' ')}"


def _referenced_conversations(state: BatchState, fresh: list[Pending]) -> dict[tuple[str, str], int]:
    keys = sorted({(p.event.channel.value, ref) for p in fresh for ref in p.event.thread_refs})
    found: dict[tuple[str, str], int] = {}
    for chunk in chunks(keys):
        rows = state.conn.execute(
            select(Interaction.channel, Interaction.external_id, Interaction.conversation_id).where(
                pairs_in(Interaction.channel, Interaction.external_id, chunk),
                Interaction.conversation_id.is_not(None),
            )
        )
        for channel, external_id, conversation_id in rows:
            if conversation_id is not None:
                found[(channel, external_id)] = conversation_id
    return found


def _conversations_by_id(state: BatchState, conversation_ids: Sequence[int]) -> dict[int, ConversationState]:
    """The named conversations, by primary key (an index seek on SQLite and PostgreSQL).

    An id with no row is left out, so that state_for() still looks it up
    itself and fails exactly as it always has.
    """
    found: dict[int, ConversationState] = {}
    for chunk in chunks(conversation_ids):
        rows = state.conn.execute(select(*_CONVERSATION_STATE).where(Conversation.id.in_(chunk)))
        for row in rows:
            conversation = ConversationState(*row)
            assert conversation.id is not None
            found[conversation.id] = conversation
    return found


def _session_conversations(state: BatchState, fresh: list[Pending]) -> dict[tuple[str, str], int]:
    keys = sorted({(p.event.channel.value, p.event.session) for p in fresh if p.event.session})
    found: dict[tuple[str, str], int] = {}
    for chunk in chunks(keys):
        rows = state.conn.execute(
            select(Interaction.channel, Interaction.session_key, Interaction.conversation_id)
            .where(
                pairs_in(Interaction.channel, Interaction.session_key, chunk),
                Interaction.conversation_id.is_not(None),
            )
            .order_by(Interaction.id)
        )
        for channel, session_key, conversation_id in rows:
            if session_key is not None and conversation_id is not None:
                found[(channel, session_key)] = conversation_id
    return found


def _open_conversations(
    state: BatchState, customer_ids: set[int], active_since: datetime
) -> dict[int, ConversationState]:
    """Each customer's most recent conversation that an event of this batch may continue.

    Only conversations active since the earliest event minus the window
    can be continued, so older ones are never loaded: a long-standing
    customer's history does not make every batch slower.
    """
    latest: dict[int, ConversationState] = {}
    for chunk in chunks(sorted(customer_ids)):
        rows = state.conn.execute(
            select(*_CONVERSATION_STATE).where(
                Conversation.customer_id.in_(chunk),
                Conversation.status.in_([ConversationStatus.OPEN, ConversationStatus.PENDING]),
                Conversation.last_activity_at >= active_since,
            )
        )
        for row in rows:
            conversation = ConversationState(*row)
            current = latest.get(conversation.customer_id)
            if current is None or current.last_activity_at < conversation.last_activity_at:
                latest[conversation.customer_id] = conversation
    return latest
