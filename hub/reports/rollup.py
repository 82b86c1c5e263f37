"""The rollups the KPIs read: one row of facts per conversation, contacts per day, closes.

The timeline is the source of truth; these tables are derived from it so the
dashboard reads a row per conversation instead of every interaction. What
counts as what (:func:`is_contact`, :func:`is_response`) is decided here, once,
and the README states it.

``refresh`` is incremental: it recomputes the facts of every conversation that
gained an interaction (interaction ids above a watermark) or whose interaction
changed (applied updates above a second watermark: a reply that bounced stops
being a response), adds the new interactions to the daily volume, and records
new closes. The watermarks are saved in the same transaction as the rows they
cover, so a crash repeats nothing and skips nothing. ``rebuild`` starts over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from hub.events import CallStatus, DeliveryStatus, Direction, InteractionKind
from hub.models import (
    AppliedUpdate,
    Conversation,
    ConversationClosure,
    ConversationFacts,
    CsatSurvey,
    CustomerContact,
    DailyVolume,
    Interaction,
)
from hub.state import load_state, save_state

log = logging.getLogger(__name__)

STATE_CONNECTOR = "reports"
STATE_KEY = "rollup"
#: Conversations whose facts are recomputed per statement.
CHUNK = 400
#: Most steps of a channel path kept; longer paths end in "…".
PATH_STEPS = 6

CONTACT_KINDS = frozenset({InteractionKind.MESSAGE.value, InteractionKind.CALL.value, InteractionKind.VOICEMAIL.value})
RESPONSE_KINDS = frozenset({InteractionKind.MESSAGE.value, InteractionKind.CALL.value})
#: An outbound message or call in one of these states never reached the customer.
UNDELIVERED = frozenset(
    {
        DeliveryStatus.FAILED.value,
        DeliveryStatus.UNDELIVERED.value,
        DeliveryStatus.CANCELED.value,
        CallStatus.BUSY.value,
        CallStatus.NO_ANSWER.value,
        CallStatus.FAILED.value,
        CallStatus.CANCELED.value,
    }
)
#: provider_metadata flags of messages no person wrote (the email parser sets them).
AUTOMATIC_FLAGS = ("auto_reply", "bounce")


@dataclass(frozen=True, slots=True)
class Row:
    """What the definitions read of one interaction."""

    id: int
    conversation_id: int
    occurred_at: datetime
    channel: str
    direction: str
    kind: str
    status: str | None
    author_id: int | None
    metadata: dict[str, Any]


def is_automatic(metadata: dict[str, Any] | None) -> bool:
    """An auto-reply or a bounce: on the timeline, but nobody wrote it."""
    return bool(metadata) and any(bool(metadata.get(flag)) for flag in AUTOMATIC_FLAGS)  # type: ignore[union-attr]


def is_contact(row: Row, survey_ids: frozenset[int] = frozenset()) -> bool:
    """The customer reached out: an inbound message, call or voicemail a person sent.

    Auto-replies, bounces and answers to a satisfaction survey are not contacts.
    """
    return (
        row.direction == Direction.INBOUND.value
        and row.kind in CONTACT_KINDS
        and not is_automatic(row.metadata)
        and row.id not in survey_ids
    )


def is_response(row: Row, survey_ids: frozenset[int] = frozenset()) -> bool:
    """Someone answered the customer: an outbound message or call that was not automatic and not undelivered.

    A reply that bounced or failed, a call nobody picked up, an auto-reply and a
    satisfaction survey never stop the clock.
    """
    return (
        row.direction == Direction.OUTBOUND.value
        and row.kind in RESPONSE_KINDS
        and (row.status or "") not in UNDELIVERED
        and not is_automatic(row.metadata)
        and row.id not in survey_ids
    )


@dataclass
class Facts:
    """One conversation's facts, as :class:`ConversationFacts` stores them."""

    conversation_id: int
    started_at: datetime | None = None
    first_channel: str | None = None
    first_response_at: datetime | None = None
    first_response_by: int | None = None
    contacts: int = 0
    channels: set[str] = field(default_factory=set)
    steps: list[str] = field(default_factory=list)
    last_contact_at: datetime | None = None
    last_response_at: datetime | None = None
    waiting_since: datetime | None = None

    def row(self) -> dict[str, Any]:
        path = self.steps[:PATH_STEPS]
        return {
            "conversation_id": self.conversation_id,
            "started_at": self.started_at,
            "first_channel": self.first_channel,
            "first_response_at": self.first_response_at,
            "first_response_by": self.first_response_by,
            "first_response_seconds": (self.first_response_at - self.started_at).total_seconds()
            if self.first_response_at is not None and self.started_at is not None
            else None,
            "contacts": self.contacts,
            "channel_count": len(self.channels),
            "switches": max(len(self.steps) - 1, 0),
            "path": ">".join(path) + (">…" if len(self.steps) > PATH_STEPS else ""),
            "last_contact_at": self.last_contact_at,
            "last_response_at": self.last_response_at,
            "waiting_since": self.waiting_since,
        }


def conversation_facts(conversation_id: int, rows: Iterable[Row], survey_ids: frozenset[int]) -> Facts:
    """The facts of one conversation from its interactions in (occurred_at, id) order."""
    facts = Facts(conversation_id)
    for row in rows:
        if is_contact(row, survey_ids):
            if facts.started_at is None:
                facts.started_at = row.occurred_at
                facts.first_channel = row.channel
            facts.contacts += 1
            facts.channels.add(row.channel)
            if not facts.steps or facts.steps[-1] != row.channel:
                facts.steps.append(row.channel)
            facts.last_contact_at = row.occurred_at
            if facts.waiting_since is None:
                facts.waiting_since = row.occurred_at
        elif is_response(row, survey_ids):
            # Only an answer after the first contact stops the clock; a message
            # we sent before the customer wrote is not a response to them.
            if facts.started_at is not None and facts.first_response_at is None:
                facts.first_response_at = row.occurred_at
                facts.first_response_by = row.author_id
            facts.last_response_at = row.occurred_at
            facts.waiting_since = None
    return facts


def _rows(session: Session, conversation_ids: Sequence[int]) -> Iterable[Row]:
    result = session.execute(
        select(
            Interaction.id,
            Interaction.conversation_id,
            Interaction.occurred_at,
            Interaction.channel,
            Interaction.direction,
            Interaction.kind,
            Interaction.status,
            Interaction.author_id,
            Interaction.provider_metadata,
        )
        .where(Interaction.conversation_id.in_(conversation_ids))
        .order_by(Interaction.conversation_id, Interaction.occurred_at, Interaction.id)
    )
    for r in result:
        yield Row(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] or {})


def survey_interaction_ids(session: Session, conversation_ids: Sequence[int] | None = None) -> frozenset[int]:
    """Interactions that are satisfaction surveys or their answers (never contacts or responses)."""
    query = select(CsatSurvey.survey_interaction_id, CsatSurvey.answer_interaction_id)
    if conversation_ids is not None:
        # An SMS answer may have landed in a conversation of its own; both are
        # looked up by the interactions' conversations below.
        query = query.where(
            CsatSurvey.conversation_id.in_(conversation_ids)
            | CsatSurvey.answer_interaction_id.in_(
                select(Interaction.id).where(Interaction.conversation_id.in_(conversation_ids))
            )
        )
    return frozenset(i for pair in session.execute(query) for i in pair if i is not None)


def recompute(session: Session, conversation_ids: Iterable[int]) -> int:
    """Replace the facts of these conversations with ones computed from their interactions."""
    ids = sorted(set(conversation_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        surveys = survey_interaction_ids(session, chunk)
        by_conversation: dict[int, list[Row]] = {}
        for row in _rows(session, chunk):
            by_conversation.setdefault(row.conversation_id, []).append(row)
        session.execute(delete(ConversationFacts).where(ConversationFacts.conversation_id.in_(chunk)))
        rows = [conversation_facts(cid, by_conversation[cid], surveys).row() for cid in chunk if cid in by_conversation]
        if rows:
            session.execute(insert(ConversationFacts), rows)
    return len(ids)


def _volume(session: Session, after_id: int, up_to_id: int) -> None:
    """Add interactions (after_id, up_to_id] to the daily volume and the contacts."""
    counts: dict[tuple[str, str, str], int] = {}
    contacts: list[dict[str, Any]] = []
    surveys = survey_interaction_ids(session)
    result = session.execute(
        select(
            Interaction.id,
            Interaction.conversation_id,
            Interaction.occurred_at,
            Interaction.channel,
            Interaction.direction,
            Interaction.kind,
            Interaction.customer_id,
            Interaction.author_id,
            Interaction.provider_metadata,
        ).where(Interaction.id > after_id, Interaction.id <= up_to_id)
    )
    for r in result:
        row = Row(r[0], r[1] or 0, r[2], r[3], r[4], r[5], None, r[7], r[8] or {})
        # Volume counts what was sent, whatever became of it later (status left out).
        contact = is_contact(row, surveys)
        if contact or is_response(row, surveys):
            key = (row.occurred_at.date().isoformat(), row.channel, row.direction)
            counts[key] = counts.get(key, 0) + 1
        if contact:
            contacts.append({"interaction_id": row.id, "customer_id": r[6], "occurred_at": row.occurred_at})
    if contacts:
        session.execute(insert(CustomerContact), contacts)
    if not counts:
        return
    existing = {
        (d, c, di): n
        for d, c, di, n in session.execute(
            select(DailyVolume.day, DailyVolume.channel, DailyVolume.direction, DailyVolume.count).where(
                DailyVolume.day.in_(sorted({k[0] for k in counts}))
            )
        )
    }
    for key, n in counts.items():
        if key in existing:
            session.execute(
                update(DailyVolume)
                .where(DailyVolume.day == key[0], DailyVolume.channel == key[1], DailyVolume.direction == key[2])
                .values(count=DailyVolume.count + n)
            )
        else:
            session.add(DailyVolume(day=key[0], channel=key[1], direction=key[2], count=n))
    session.flush()


def record_closure(session: Session, conversation_id: int, closed_at: datetime) -> None:
    """Remember that the conversation was closed at ``closed_at`` (once per close)."""
    found = session.scalar(
        select(ConversationClosure.id).where(
            ConversationClosure.conversation_id == conversation_id, ConversationClosure.closed_at == closed_at
        )
    )
    if found is None:
        session.add(ConversationClosure(conversation_id=conversation_id, closed_at=closed_at))
        session.flush()


def _closures(session: Session, since: datetime | None) -> datetime | None:
    """Record closes the conversation table shows that are not recorded yet; the newest close seen."""
    query = select(Conversation.id, Conversation.closed_at).where(Conversation.closed_at.is_not(None))
    if since is not None:
        query = query.where(Conversation.closed_at >= since)
    newest = since
    known = {
        (cid, at)
        for cid, at in session.execute(
            select(ConversationClosure.conversation_id, ConversationClosure.closed_at).where(
                ConversationClosure.closed_at >= since
            )
            if since is not None
            else select(ConversationClosure.conversation_id, ConversationClosure.closed_at)
        )
    }
    new = []
    for cid, closed_at in session.execute(query):
        if closed_at is None:
            continue
        if (cid, closed_at) not in known:
            new.append({"conversation_id": cid, "closed_at": closed_at})
            known.add((cid, closed_at))
        newest = closed_at if newest is None or closed_at > newest else newest
    if new:
        session.execute(insert(ConversationClosure), new)
    return newest


@dataclass(frozen=True)
class RefreshResult:
    conversations: int
    interactions: int


def refresh(session: Session, *, limit: int = 50_000) -> RefreshResult:
    """Bring the rollups up to date with the timeline, at most ``limit`` new interactions at a time."""
    state = load_state(session, STATE_CONNECTOR, STATE_KEY) or {}
    after = int(state.get("interaction_id", 0))
    after_update = int(state.get("update_id", 0))
    closed_since = datetime.fromisoformat(state["closed_at"]) if state.get("closed_at") else None
    # The limit-th new id, not after + limit: ids may have gaps wider than that.
    up_to = session.scalar(
        select(Interaction.id).where(Interaction.id > after).order_by(Interaction.id).offset(limit - 1).limit(1)
    ) or session.scalar(select(func.max(Interaction.id)).where(Interaction.id > after))
    up_to = int(up_to) if up_to is not None else after
    latest_update = session.scalar(select(func.max(AppliedUpdate.id))) or after_update
    touched: set[int] = {
        cid
        for cid in session.scalars(
            select(Interaction.conversation_id)
            .where(Interaction.id > after, Interaction.id <= up_to, Interaction.conversation_id.is_not(None))
            .distinct()
        )
        if cid is not None
    }
    if latest_update > after_update:
        touched.update(
            cid
            for cid in session.scalars(
                select(Interaction.conversation_id)
                .join(AppliedUpdate, AppliedUpdate.interaction_id == Interaction.id)
                .where(AppliedUpdate.id > after_update, AppliedUpdate.id <= latest_update)
                .distinct()
            )
            if cid is not None
        )
    recompute(session, touched)
    if up_to > after:
        _volume(session, after, up_to)
    newest_close = _closures(session, closed_since)
    save_state(
        session,
        STATE_CONNECTOR,
        STATE_KEY,
        {
            "interaction_id": up_to,
            "update_id": int(latest_update),
            "closed_at": newest_close.isoformat() if newest_close else None,
        },
    )
    return RefreshResult(conversations=len(touched), interactions=up_to - after)


def rebuild(session: Session) -> RefreshResult:
    """Forget every rollup and compute them again from the timeline."""
    session.execute(delete(ConversationFacts))
    session.execute(delete(DailyVolume))
    session.execute(delete(CustomerContact))
    save_state(session, STATE_CONNECTOR, STATE_KEY, {})
    total = RefreshResult(0, 0)
    while True:
        step = refresh(session)
        total = RefreshResult(total.conversations + step.conversations, total.interactions + step.interactions)
        if step.interactions == 0:
            return total


def refresh_conversations(session: Session, conversation_ids: Sequence[int]) -> None:
    """Recompute named conversations now (a survey answer, a close), without waiting for the worker."""
    recompute(session, conversation_ids)
