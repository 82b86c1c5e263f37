"""The write path's notify step: each conversation's waiting clock, and the live announcements.

``hub.ingest`` calls :func:`on_written` last in its transaction (see the
README's "Live updates"); this module imports nothing of the write path, so
the write path can import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, select, update
from sqlalchemy.orm import Session

from hub import live
from hub.events import Direction, InteractionKind
from hub.models import Conversation, Interaction

#: What the customer says and waits for an answer to (a call is answered, or shows as missed).
_WAITING_KINDS = {InteractionKind.MESSAGE.value, InteractionKind.VOICEMAIL.value}


def on_written(session: Session, notifications: Sequence[Mapping[str, Any]]) -> None:
    """The write path's notify step: keep each conversation's waiting clock, then announce.

    ``notifications`` are the write path's records (``type``,
    ``interaction_id``). Call it in the write path's transaction, last.
    """
    record_waiting(session, notifications)
    live.announce_ingest(session, notifications)


#: Per conversation: whether an answer of ours came in this batch, and since when the customer waits.
Clocks = dict[int, tuple[bool, datetime | None]]


def record_waiting(session: Session, notifications: Sequence[Mapping[str, Any]]) -> None:
    """A customer's message starts their conversation's waiting clock; any reply of ours stops it."""
    set_clocks(session, waiting_clocks(session, notifications))


def waiting_clocks(session: Session, notifications: Sequence[Mapping[str, Any]]) -> Clocks:
    """What the interactions the write path created do to their conversations' clocks."""
    ids = sorted(
        {
            int(n["interaction_id"])
            for n in notifications
            if n.get("type") == "interaction.created" and n.get("interaction_id")
        }
    )
    if not ids:
        return {}
    rows = session.execute(
        select(Interaction.conversation_id, Interaction.direction, Interaction.kind, Interaction.occurred_at)
        .where(Interaction.id.in_(ids), Interaction.conversation_id.is_not(None))
        .order_by(Interaction.occurred_at, Interaction.id)
    ).all()
    clocks: Clocks = {}
    for row in rows:
        answered, since = clocks.get(row.conversation_id, (False, None))
        if row.direction == Direction.OUTBOUND.value and row.kind == InteractionKind.MESSAGE.value:
            clocks[row.conversation_id] = (True, None)
        elif row.direction == Direction.INBOUND.value and row.kind in _WAITING_KINDS:
            clocks[row.conversation_id] = (answered, since or row.occurred_at)
    return clocks


_CONVERSATION = cast(Table, Conversation.__table__)
#: An answer of ours in the batch: the clock is what the batch left it (stopped,
#: or restarted by a later message of the customer's).
_SET_CLOCK = (
    update(_CONVERSATION)
    .where(_CONVERSATION.c.id == bindparam("conversation_id"))
    .values(waiting_since=bindparam("since", type_=_CONVERSATION.c.waiting_since.type))
)
#: Only the customer wrote: a clock already running keeps its (earlier) start.
_START_CLOCK = (
    update(_CONVERSATION)
    .where(_CONVERSATION.c.id == bindparam("conversation_id"))
    .values(
        waiting_since=case(
            (_CONVERSATION.c.waiting_since.is_(None), bindparam("since", type_=_CONVERSATION.c.waiting_since.type)),
            (_CONVERSATION.c.waiting_since > bindparam("since"), bindparam("since")),
            else_=_CONVERSATION.c.waiting_since,
        )
    )
)


def set_clocks(session: Session, clocks: Clocks) -> None:
    """Write the batch's clocks: two statements, each executed once for all its conversations.

    A batch of visitors' chat messages touches as many conversations as it has
    messages; one UPDATE each (through the ORM) was most of the journal
    processor's time for them (tests/bench/bench_chat.py).
    """
    answered = [{"conversation_id": c, "since": since} for c, (done, since) in clocks.items() if done]
    started = [
        {"conversation_id": c, "since": since} for c, (done, since) in clocks.items() if not done and since is not None
    ]
    # Core statements on the session's connection: nothing loaded in the session
    # reads waiting_since after this step (it is the transaction's last but one).
    if answered:
        session.execute(_SET_CLOCK, answered)
    if started:
        session.execute(_START_CLOCK, started)
