"""Listings integrators page through: conversations by filter, an interaction by its external id, the journal.

Conversations are paged by keyset on (last_activity_at, id), newest activity
first, like the timeline. A conversation that sees new activity while a
client pages moves to the front: a client syncing "what changed" passes
``since`` (activity at or after) and pages until ``next_cursor`` is null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, tuple_
from sqlalchemy.orm import Session

from hub.customers import resolve
from hub.models import Conversation, Interaction, JournalEntry
from hub.pagination import decode_cursor, encode_cursor
from hub.timeline import TimelinePage, load_page_details

#: ``assignee`` value meaning "nobody".
UNASSIGNED = "none"


@dataclass(frozen=True)
class ConversationFilter:
    """What ``GET /api/conversations`` narrows by; None is "any"."""

    statuses: Sequence[str] = ()
    customer_id: int | None = None
    #: An agent id, or :data:`UNASSIGNED`.
    assignee: int | str | None = None
    channel: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class ConversationPage:
    conversations: list[Conversation]
    next_cursor: str | None


def list_conversations(
    session: Session, where: ConversationFilter, *, limit: int, cursor: str | None
) -> ConversationPage:
    """One page of conversations, most recent activity first (merged customers redirect)."""
    query = select(Conversation)
    if where.statuses:
        query = query.where(Conversation.status.in_(list(where.statuses)))
    if where.customer_id is not None:
        query = query.where(Conversation.customer_id == resolve(session, where.customer_id).id)
    if where.assignee == UNASSIGNED:
        query = query.where(Conversation.assignee_id.is_(None))
    elif where.assignee is not None:
        query = query.where(Conversation.assignee_id == int(where.assignee))
    if where.channel is not None:
        # Conversations that continue across channels: any interaction on it counts.
        query = query.where(
            exists().where(Interaction.conversation_id == Conversation.id, Interaction.channel == where.channel)
        )
    if where.since is not None:
        query = query.where(Conversation.last_activity_at >= where.since)
    if cursor:
        last_activity_at, row_id = decode_cursor(cursor)
        query = query.where(tuple_(Conversation.last_activity_at, Conversation.id) < (last_activity_at, row_id))
    rows = list(
        session.scalars(query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit + 1))
    )
    page = rows[:limit]
    more = len(rows) > limit
    return ConversationPage(page, encode_cursor(page[-1].last_activity_at, page[-1].id) if more else None)


def interactions_by_external_id(session: Session, channel: str, external_id: str) -> TimelinePage:
    """The interaction a provider knows by ``external_id`` on ``channel`` (none or one: the pair is unique)."""
    rows = list(
        session.scalars(
            select(Interaction).where(Interaction.channel == channel, Interaction.external_id == external_id)
        )
    )
    page = TimelinePage(customer_id=rows[0].customer_id if rows else 0, interactions=rows)
    load_page_details(session, page)
    return page


@dataclass(frozen=True)
class JournalPage:
    entries: list[JournalEntry]
    next_cursor: str | None


def journal_entries(session: Session, status: str, *, limit: int, before: int | None) -> JournalPage:
    """Journal entries with ``status``, newest first; ``before`` (an entry id) is the cursor."""
    query = select(JournalEntry).where(JournalEntry.status == status)
    if before is not None:
        query = query.where(JournalEntry.id < before)
    rows = list(session.scalars(query.order_by(JournalEntry.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    return JournalPage(page, str(page[-1].id) if len(rows) > limit else None)
