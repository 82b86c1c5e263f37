"""What agents do with a conversation, and the inbox of those that need someone.

Services in the house style: they check, change, flush, write an audit
record and announce the change on the live feed (hub.live) in the caller's
transaction; they never commit and never send. Replies are queued through
hub.replies and sent by the entry point after the commit.

Every failure is an :class:`ActionError` naming the field and saying, in
words a person understands, what to do; nothing has changed when one is
raised (the entry point's transaction rolls back).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, exists, func, select, tuple_
from sqlalchemy.orm import Session

from hub import live
from hub.auth import AgentView
from hub.customers import audit
from hub.events import Channel, ChannelEvent, Direction, IdentityKind, InteractionKind, Party
from hub.ingest import ingest
from hub.models import Agent, Conversation, ConversationStatus, Customer, Identity, Interaction, utcnow
from hub.outbound import Sender
from hub.replies import ReplyError, queue_reply
from hub.reports.csat import on_conversation_closed
from hub.runtime import current_runtime

#: Which identities a reply on each channel can go to.
_REPLY_IDENTITY = {
    Channel.EMAIL: {IdentityKind.EMAIL.value},
    Channel.SMS: {IdentityKind.PHONE.value},
    Channel.WHATSAPP: {IdentityKind.PHONE.value},
    Channel.CHAT: {"chat"},
}
MAX_PAGE = 100
#: Sorts after every real time: where the answered phase of the inbox starts.
_END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)


class ActionError(ValueError):
    """An action that cannot be done; ``status`` is the HTTP status an API answers with."""

    def __init__(self, status: int, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.status = status
        self.field = field_name
        self.message = message


def get_conversation(session: Session, conversation_id: int) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise ActionError(404, "conversation_id", f"there is no conversation {conversation_id}")
    return conversation


# -- actions ---------------------------------------------------------------------------------------


def add_note(session: Session, conversation_id: int, *, text: str, author: AgentView) -> int:
    """An internal note on the conversation, shown with its author; customers never see it."""
    conversation = get_conversation(session, conversation_id)
    if not text.strip():
        raise ActionError(400, "text", "write the note first")
    party = _customer_party(session, conversation.customer_id)
    note_id = f"note-{uuid.uuid4()}"
    event = ChannelEvent(
        channel=Channel.OTHER,
        external_id=note_id,
        occurred_at=utcnow(),
        direction=Direction.INTERNAL,
        sender=party,
        kind=InteractionKind.NOTE,
        text=text.strip(),
        metadata={"agent": author.name},
        raw=json.dumps({"note": {"conversation_id": conversation_id, "agent_id": author.id, "text": text}}).encode(),
        raw_content_type="application/json",
        conversation_id=conversation_id,
        author_id=author.id,
    )
    result = ingest(session, event, source="agent.note")
    if result.error or result.interaction_id is None:
        raise ActionError(400, "text", "the note could not be stored; try again")
    audit(
        session, author.id, "conversation.note", "conversation", conversation_id, interaction_id=result.interaction_id
    )
    return result.interaction_id


def assign(session: Session, conversation_id: int, assignee_id: int | None, *, actor: AgentView) -> Conversation:
    """Give the conversation to an agent (``None``: to nobody)."""
    conversation = get_conversation(session, conversation_id)
    assignee: Agent | None = None
    if assignee_id is not None:
        assignee = session.get(Agent, assignee_id)
        if assignee is None or not assignee.active:
            raise ActionError(400, "assignee_id", f"there is no active agent {assignee_id}")
    previous = conversation.assignee_id
    if previous == assignee_id:
        return conversation
    conversation.assignee_id = assignee_id
    session.flush()
    audit(session, actor.id, "conversation.assign", "conversation", conversation_id, before=previous, after=assignee_id)
    live.publish(
        session,
        live.AGENTS,
        "conversation.assigned",
        {
            "conversation_id": conversation_id,
            "assignee_id": assignee_id,
            "assignee_name": assignee.name if assignee else None,
            "by": actor.name,
        },
    )
    return conversation


def set_status(session: Session, conversation_id: int, status: str, *, actor: AgentView) -> Conversation:
    """Open, pending (waiting on the customer or a third party) or closed; any may follow any."""
    try:
        new = ConversationStatus(status)
    except ValueError:
        raise ActionError(400, "status", "must be open, pending or closed") from None
    conversation = get_conversation(session, conversation_id)
    previous = conversation.status
    if previous == new:
        return conversation
    conversation.status = new
    if new is ConversationStatus.CLOSED:
        conversation.closed_at = utcnow()
        # Closed is answered: if the customer writes again, the write path
        # reopens it and the clock starts from that message.
        conversation.waiting_since = None
    else:
        conversation.closed_at = None
    session.flush()
    if new is ConversationStatus.CLOSED:
        # The reports record the close, and a satisfaction survey goes out
        # when one is due ([csat]); it is sent after this transaction commits.
        on_conversation_closed(session, current_runtime(), conversation_id)
    audit(session, actor.id, "conversation.status", "conversation", conversation_id, before=previous, after=new.value)
    data = {"conversation_id": conversation_id, "status": new.value, "by": actor.name}
    live.publish_many(
        session,
        [
            live.Announcement(live.AGENTS, "conversation.status", data),
            live.Announcement(live.conversation_topic(conversation_id), "conversation.status", {"status": new.value}),
        ],
    )
    return conversation


@dataclass(frozen=True)
class ReplyChannels:
    """The channels a reply to this conversation can go out on, and the one to offer first."""

    available: list[Channel]
    default: Channel | None


def reply_channels(session: Session, conversation: Conversation, senders: Mapping[Channel, Sender]) -> ReplyChannels:
    """Channels with a sender and an address of the customer's; the default is the one they last used."""
    kinds = set(
        session.scalars(select(Identity.kind).where(Identity.customer_id == conversation.customer_id).distinct())
    )
    used = list(
        session.scalars(
            select(Interaction.channel)
            .where(Interaction.conversation_id == conversation.id, Interaction.direction == Direction.INBOUND.value)
            .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
            .limit(20)
        )
    )
    available = [c for c in _REPLY_IDENTITY if c in senders and (kinds & _REPLY_IDENTITY[c] or c.value in used)]
    # A call is answered by text on the same number: SMS.
    preferred = [Channel.SMS.value if u == Channel.VOICE.value else u for u in used]
    default = next((Channel(u) for u in preferred if Channel(u) in available), available[0] if available else None)
    return ReplyChannels(available, default)


def reply(
    session: Session,
    senders: Mapping[Channel, Sender],
    conversation_id: int,
    *,
    text: str,
    channel: str | None,
    subject: str | None,
    author: AgentView,
    to: str | None = None,
) -> int:
    """Queue an agent's reply (sent after the commit by the caller); returns the interaction id.

    It goes to the conversation's customer unless ``to`` picks another of
    :func:`hub.replies.reply_recipients` (see the README's threading rules).
    """
    conversation = get_conversation(session, conversation_id)
    options = reply_channels(session, conversation, senders)
    if channel is None or channel == "":
        if options.default is None:
            raise ActionError(422, "channel", "the customer has no address Corridor can reply to; add one first")
        chosen = options.default
    else:
        try:
            chosen = Channel(channel)
        except ValueError:
            raise ActionError(400, "channel", f"must be one of {', '.join(c.value for c in Channel)}") from None
    if not text.strip():
        raise ActionError(400, "text", "write the reply first")
    try:
        interaction_id = queue_reply(
            session, senders, conversation_id=conversation_id, channel=chosen, text=text, subject=subject,
            author_id=author.id, to=to,
        )  # fmt: skip
    except ReplyError as exc:
        status = 404 if exc.field == "conversation_id" else 422 if exc.field == "channel" else 400
        # "to": an address the conversation does not know is the caller's mistake (400).
        raise ActionError(status, exc.field, _reply_words(exc)) from None
    audit(
        session, author.id, "conversation.reply", "conversation", conversation_id,
        interaction_id=interaction_id, channel=chosen.value,
    )  # fmt: skip
    return interaction_id


def _reply_words(exc: ReplyError) -> str:
    if exc.message.startswith("no connector sends"):
        return f"{exc.message.split(' ')[3]} replies are not set up on this Corridor ({exc.message.split('(')[-1]}"
    return exc.message


def _customer_party(session: Session, customer_id: int) -> Party:
    # Prefer a real address: the write path finds the customer by it.
    identities = list(session.scalars(select(Identity).where(Identity.customer_id == customer_id)))
    order = {IdentityKind.EMAIL.value: 0, IdentityKind.PHONE.value: 1}
    identities.sort(key=lambda i: (order.get(i.kind, 2), i.id))
    if not identities:
        raise ActionError(422, "conversation_id", "the customer has no identity to file the note under")
    first = identities[0]
    return Party(address=first.raw_value or first.value, kind=IdentityKind(first.kind))


# -- the inbox ----------------------------------------------------------------------------------

VIEWS = ("mine", "unassigned", "all")
ORDERS = ("waiting", "activity")


@dataclass
class InboxRow:
    conversation: Conversation
    customer_name: str
    channels: list[str]
    last_text: str
    last_direction: str | None
    last_channel: str | None
    assignee_name: str | None


@dataclass
class InboxPage:
    rows: list[InboxRow]
    next_cursor: str | None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def _cursor(phase: str, when: datetime, row_id: int) -> str:
    raw = f"{phase}|{when.astimezone(UTC).isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[str, datetime, int]:
    try:
        phase, when, row_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
        moment = datetime.fromisoformat(when)
        if phase not in {"w", "a", "l"} or moment.tzinfo is None:
            raise ValueError
        return phase, moment, int(row_id)
    except ValueError:
        raise ActionError(400, "cursor", "not a cursor this server issued") from None


def inbox(
    session: Session,
    *,
    agent_id: int,
    status: str = "open",
    view: str = "all",
    order: str = "waiting",
    channel: str | None = None,
    assignee_id: int | None = None,
    customer_id: int | None = None,
    cursor: str | None = None,
    limit: int = 25,
) -> InboxPage:
    """One page of conversations in ``status``.

    ``order="waiting"``: customers waiting for an answer first, the longest
    waiting on top, then the answered ones by latest activity;
    ``"activity"``: latest activity first. Keyset pagination: each phase is
    one range scan of an index on (status[, assignee], sort key, id).
    """
    if status not in {s.value for s in ConversationStatus}:
        raise ActionError(400, "status", "must be open, pending or closed")
    if view not in VIEWS:
        raise ActionError(400, "view", "must be mine, unassigned or all")
    if order not in ORDERS:
        raise ActionError(400, "order", "must be waiting or activity")
    if channel is not None and channel not in {c.value for c in Channel}:
        raise ActionError(400, "channel", f"must be one of {', '.join(c.value for c in Channel)}")
    limit = max(1, min(limit, MAX_PAGE))
    base = select(Conversation).where(Conversation.status == status)
    if view == "mine":
        base = base.where(Conversation.assignee_id == agent_id)
    elif view == "unassigned":
        base = base.where(Conversation.assignee_id.is_(None))
    if assignee_id is not None:
        base = base.where(Conversation.assignee_id == assignee_id)
    if customer_id is not None:
        base = base.where(Conversation.customer_id == customer_id)
    if channel is not None:
        base = base.where(
            exists().where(Interaction.conversation_id == Conversation.id, Interaction.channel == channel)
        )
    phase, when, after = _read_cursor(cursor) if cursor else ("w" if order == "waiting" else "l", None, None)
    found: list[Conversation] = []
    next_cursor: str | None = None

    def take(query: Select[Conversation], phase_name: str, key: str) -> None:
        nonlocal next_cursor
        rows = list(session.scalars(query.limit(limit - len(found) + 1)))
        room = limit - len(found)
        found.extend(rows[:room])
        if len(rows) > room and found:
            last = found[-1]
            next_cursor = _cursor(phase_name, getattr(last, key), last.id)

    answered_order = (Conversation.last_activity_at.desc(), Conversation.id.desc())
    if order == "waiting" and phase == "w":
        query = base.where(Conversation.waiting_since.is_not(None)).order_by(
            Conversation.waiting_since, Conversation.id
        )
        if when is not None and after is not None:
            query = query.where(tuple_(Conversation.waiting_since, Conversation.id) > (when, after))
        take(query, "w", "waiting_since")
        when = after = None
        if len(found) == limit and next_cursor is None:
            # The page ends exactly with the last waiting customer: the next
            # page starts the answered ones.
            more = session.scalar(
                base.where(Conversation.waiting_since.is_(None)).with_only_columns(Conversation.id).limit(1)
            )
            if more is not None:
                next_cursor = _cursor("a", _END_OF_TIME, 2**62)
    if len(found) < limit and next_cursor is None:
        query = base.order_by(*answered_order)
        if order == "waiting":
            query = query.where(Conversation.waiting_since.is_(None))
        if when is not None and after is not None:
            query = query.where(tuple_(Conversation.last_activity_at, Conversation.id) < (when, after))
        take(query, "a" if order == "waiting" else "l", "last_activity_at")
    return InboxPage(rows=_rows(session, found), next_cursor=next_cursor, counts=inbox_counts(session, agent_id))


def _rows(session: Session, conversations: list[Conversation]) -> list[InboxRow]:
    if not conversations:
        return []
    ids = [c.id for c in conversations]
    names = dict(
        session.execute(
            select(Customer.id, Customer.display_name).where(Customer.id.in_({c.customer_id for c in conversations}))
        ).all()
    )
    channels: dict[int, list[str]] = {}
    for conversation_id, used in session.execute(
        select(Interaction.conversation_id, Interaction.channel)
        .where(Interaction.conversation_id.in_(ids), Interaction.direction != Direction.INTERNAL.value)
        .distinct()
    ):
        if conversation_id is not None:
            channels.setdefault(conversation_id, []).append(used)
    latest = (
        select(Interaction.id)
        .where(Interaction.conversation_id == Conversation.id, Interaction.direction != Direction.INTERNAL.value)
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    last_ids: dict[int, int | None] = {}
    for conversation_id, interaction_id in session.execute(
        select(Conversation.id, latest).where(Conversation.id.in_(ids))
    ):
        last_ids[conversation_id] = interaction_id
    last: dict[int, Any] = {
        row.id: row
        for row in session.execute(
            select(
                Interaction.id, Interaction.subject, Interaction.text, Interaction.reply_text,
                Interaction.direction, Interaction.channel, Interaction.kind,
            ).where(Interaction.id.in_([i for i in last_ids.values() if i is not None]))
        )
    }  # fmt: skip
    assignees = dict(
        session.execute(
            select(Agent.id, Agent.name).where(Agent.id.in_({c.assignee_id for c in conversations if c.assignee_id}))
        ).all()
    )
    rows = []
    for conversation in conversations:
        message = last.get(last_ids.get(conversation.id) or 0)
        rows.append(
            InboxRow(
                conversation=conversation,
                customer_name=names.get(conversation.customer_id, ""),
                channels=sorted(channels.get(conversation.id, [])),
                last_text=first_line(message) if message is not None else "",
                last_direction=message.direction if message is not None else None,
                last_channel=message.channel if message is not None else None,
                assignee_name=assignees.get(conversation.assignee_id) if conversation.assignee_id else None,
            )
        )
    return rows


def first_line(message: Any) -> str:
    """The first line of what was said: the new part of a reply, else the text, else the subject."""
    text = (message.reply_text or message.text or message.subject or "").strip()
    if not text and message.kind == InteractionKind.CALL.value:
        return "Phone call"
    line = text.splitlines()[0] if text else ""
    return line[:160]


def inbox_counts(session: Session, agent_id: int) -> dict[str, dict[str, int]]:
    """How many open and pending conversations each view holds (closed ones grow without end: not counted)."""
    counts = {s: {"all": 0, "mine": 0, "unassigned": 0} for s in ("open", "pending")}
    for status, assignee, number in session.execute(
        select(Conversation.status, Conversation.assignee_id, func.count())
        .where(Conversation.status.in_(["open", "pending"]))
        .group_by(Conversation.status, Conversation.assignee_id)
    ):
        view = counts[status]
        view["all"] += number
        if assignee is None:
            view["unassigned"] += number
        elif assignee == agent_id:
            view["mine"] += number
    return counts
