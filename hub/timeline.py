"""A customer's whole history across channels, newest first.

Keyset pagination on ``(occurred_at, id)``: a page is one index range scan on
``ix_interaction_customer_id_occurred_at_id`` however deep the agent scrolls,
and interactions that arrive while they scroll never shift the pages they have
not seen yet. Attachments and conversations of a page are loaded with one query
each, never one per interaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from hub.customers import NotFound, resolve
from hub.models import AttachmentRecord, Conversation, Interaction
from hub.pagination import decode_cursor, encode_cursor

MAX_PAGE = 200


@dataclass
class TimelinePage:
    customer_id: int
    interactions: list[Interaction]
    attachments: dict[int, list[AttachmentRecord]] = field(default_factory=dict)
    conversations: dict[int, Conversation] = field(default_factory=dict)
    next_cursor: str | None = None


def customer_timeline(
    session: Session, customer_id: int, *, limit: int = 50, cursor: str | None = None
) -> TimelinePage:
    """One page of a customer's timeline (merged customers redirect).

    The customer's own interactions, and the messages other people wrote into
    the customer's conversations (a colleague forwarding the customer's mail
    into the thread): a participant's message is filed on its writer, and
    shown here too, so the story of the conversation has no hole in it.
    """
    customer = resolve(session, customer_id)
    limit = max(1, min(limit, MAX_PAGE))
    newest_first = (Interaction.occurred_at.desc(), Interaction.id.desc())
    own = select(Interaction).where(Interaction.customer_id == customer.id).order_by(*newest_first).limit(limit + 1)
    guests = (
        select(Interaction)
        .join(Conversation, Conversation.id == Interaction.conversation_id)
        .where(Conversation.customer_id == customer.id, Interaction.customer_id != customer.id)
        .order_by(*newest_first)
        .limit(limit + 1)
    )
    if cursor:
        occurred_at, row_id = decode_cursor(cursor)
        before = tuple_(Interaction.occurred_at, Interaction.id) < (occurred_at, row_id)
        own, guests = own.where(before), guests.where(before)
    rows = list(session.scalars(own))
    if len(rows) > limit:
        # A full page of their own: only participants' messages within its time can join it, so the
        # second query reads one page's stretch of the conversations, however long the story is.
        guests = guests.where(Interaction.occurred_at >= rows[-1].occurred_at)
    rows = sorted([*rows, *session.scalars(guests)], key=lambda i: (i.occurred_at, i.id), reverse=True)
    page = rows[:limit]
    result = TimelinePage(customer_id=customer.id, interactions=page)
    if len(rows) > limit:
        last = page[-1]
        result.next_cursor = encode_cursor(last.occurred_at, last.id)
    load_page_details(session, result)
    return result


def cursor_showing(session: Session, customer_id: int, interaction_id: int, *, limit: int = 50,
                   context: int = 2) -> str | None:  # fmt: skip
    """A timeline cursor whose page holds ``interaction_id`` below ``context`` newer ones; None if the first page does.

    A search hit opens the conversation at the interaction it found, however
    far down the customer's story that is. The story is the one
    :func:`customer_timeline` pages through: the customer's own interactions
    and participants' messages in the customer's conversations. An
    interaction in neither, or none, is no reason to move: None.
    """
    customer = resolve(session, customer_id)
    target = session.get(Interaction, interaction_id)
    if target is None:
        return None
    conversation = session.get(Conversation, target.conversation_id) if target.conversation_id else None
    if target.customer_id != customer.id and (conversation is None or conversation.customer_id != customer.id):
        return None
    oldest_first = (Interaction.occurred_at, Interaction.id)
    newer = tuple_(Interaction.occurred_at, Interaction.id) > (target.occurred_at, target.id)
    own = select(Interaction.occurred_at, Interaction.id).where(Interaction.customer_id == customer.id, newer)
    guests = (
        select(Interaction.occurred_at, Interaction.id)
        .join(Conversation, Conversation.id == Interaction.conversation_id)
        .where(Conversation.customer_id == customer.id, Interaction.customer_id != customer.id, newer)
    )
    rows = sorted(
        [
            *session.execute(own.order_by(*oldest_first).limit(limit)),
            *session.execute(guests.order_by(*oldest_first).limit(limit)),
        ]
    )[:limit]
    if len(rows) < limit:
        return None  # fewer newer ones than a page: it is on the first
    anchor = rows[min(context, len(rows) - 1)]
    return encode_cursor(anchor[0], anchor[1])


def conversation_interactions(session: Session, conversation_id: int) -> TimelinePage:
    """Every interaction of one conversation, oldest first (a thread reads down)."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"no conversation {conversation_id}")
    rows = list(
        session.scalars(
            select(Interaction)
            .where(Interaction.conversation_id == conversation_id)
            .order_by(Interaction.occurred_at, Interaction.id)
        )
    )
    page = TimelinePage(customer_id=conversation.customer_id, interactions=rows)
    load_page_details(session, page)
    return page


def load_page_details(session: Session, page: TimelinePage) -> None:
    ids = [i.id for i in page.interactions]
    if not ids:
        return
    attachments: dict[int, list[AttachmentRecord]] = defaultdict(list)
    for attachment in session.scalars(
        select(AttachmentRecord).where(AttachmentRecord.interaction_id.in_(ids)).order_by(AttachmentRecord.id)
    ):
        attachments[attachment.interaction_id].append(attachment)
    page.attachments = dict(attachments)
    conversation_ids = {i.conversation_id for i in page.interactions if i.conversation_id is not None}
    if conversation_ids:
        page.conversations = {
            c.id: c for c in session.scalars(select(Conversation).where(Conversation.id.in_(conversation_ids)))
        }
