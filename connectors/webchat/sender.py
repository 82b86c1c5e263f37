"""Agents' chat replies: published to the visitor's live topic; by email or SMS once they left.

The hub calls :meth:`ChatSender.send` after the reply committed as a queued
chat interaction. The reply is published (with its text: this topic is the
visitor's alone) on :func:`chat_topic` of the visitor whose chat it answers,
so their open widget shows it and a reconnect replays it. When the visitor
has left (no sign of life from the widget for ``[webchat]
away_after_seconds``, or the page was closed), the same text is also queued
as an email (else an SMS) in the same conversation, to the address the
customer has, so the answer reaches them and their reply threads back
(the email's Message-ID is the interaction's; see connectors/email/sender).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from connectors.webchat.settings import WebchatSettings
from connectors.webchat.visitors import STATE_CONNECTOR
from hub.contract import (
    Channel,
    Database,
    Direction,
    Interaction,
    OutboundMessage,
    ReplyError,
    Sender,
    SendError,
    SendResult,
    chat_topic,
    deliver,
    load_state,
    publish,
    queue_reply,
)
from hub.contract import Identity as IdentityRecord

log = logging.getLogger(__name__)


def visitor_state_key(session: str) -> str:
    return f"visitor:{session}"


def is_away(state: Mapping[str, Any] | None, now: datetime, away_after: timedelta) -> bool:
    """Whether the visitor has left: the page closed, or silent for ``away_after``."""
    if not state:
        return True
    if state.get("left"):
        return True
    seen = state.get("last_seen")
    if not isinstance(seen, str):
        return True
    return now - datetime.fromisoformat(seen) > away_after


class ChatSender:
    """Delivers chat replies (implements ``hub.outbound.Sender``)."""

    def __init__(self, database: Database, settings: WebchatSettings, senders: Mapping[Channel, Sender]) -> None:
        """``senders`` is the registry's map, read at send time (other connectors register later)."""
        self.database = database
        self.settings = settings
        self.senders = senders

    def from_address(self, message_channel: Channel, customer_address: str, previous_to: str | None) -> str:
        """The site the visitor wrote to (the chat's own "address")."""
        return previous_to or "webchat"

    def send(self, message: OutboundMessage) -> SendResult:
        """Publish the reply to the visitor's widget; continue by email or SMS if they left."""
        from hub.contract import utcnow

        if message.channel is not Channel.CHAT:
            raise SendError(
                f"the web chat sends chat, not {message.channel}", code="unsupported_channel", permanent=True
            )
        now = utcnow()
        with self.database.write() as session:
            reply = session.execute(
                select(Interaction.conversation_id, Interaction.author_id).where(
                    Interaction.id == message.interaction_id
                )
            ).one()
            # The visitor who wrote last in this conversation's chat. Not through
            # thread_refs: those are the newest twenty, all replies after a long answer.
            chat = session.execute(
                select(Interaction.session_key, Interaction.conversation_id, Interaction.customer_id)
                .where(
                    Interaction.conversation_id == reply.conversation_id,
                    Interaction.channel == Channel.CHAT.value,
                    Interaction.direction == Direction.INBOUND.value,
                    Interaction.session_key.is_not(None),
                )
                .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
                .limit(1)
            ).first()
            if chat is None or not chat.session_key:
                raise SendError("no visitor's chat in this conversation to answer", code="no_chat", permanent=True)
            visitor_session = str(chat.session_key)
            author = reply.author_id
            publish(
                session,
                chat_topic(visitor_session),
                "chat.message",
                {
                    "interaction_id": message.interaction_id,
                    "direction": "outbound",
                    "text": message.text,
                    "author": _agent_name(session, author),
                    "at": now.isoformat(),
                },
            )
            state = load_state(session, STATE_CONNECTOR, visitor_state_key(visitor_session))
            away = is_away(state, now, timedelta(seconds=self.settings.away_after_seconds))
            continued: tuple[str, int] | None = None
            if away and chat.conversation_id is not None:
                continued = self._continue_elsewhere(session, chat.conversation_id, chat.customer_id, message.text)
        metadata: dict[str, Any] = {"webchat_session": visitor_session}
        if continued is not None:
            channel, interaction_id = continued
            # After the chat reply's own commit: the continuation is a reply of its
            # own, retried by the worker like any other if this attempt fails.
            deliver(self.database, self.senders, interaction_id)
            metadata.update(continued_on=channel, continued_as=interaction_id)
        return SendResult(status="sent", metadata=metadata)

    def _continue_elsewhere(
        self, session: Any, conversation_id: int, customer_id: int, text: str
    ) -> tuple[str, int] | None:
        kinds = set(session.scalars(select(IdentityRecord.kind).where(IdentityRecord.customer_id == customer_id)))
        for channel, kind in ((Channel.EMAIL, "email"), (Channel.SMS, "phone")):
            if kind not in kinds or channel not in self.senders:
                continue
            try:
                interaction_id = queue_reply(
                    session,
                    self.senders,
                    conversation_id=conversation_id,
                    channel=channel,
                    text=text,
                    subject=None,
                    author_id=None,
                )
            except ReplyError as exc:
                log.warning("continuing chat %d by %s failed: %s", conversation_id, channel, exc)
                continue
            return channel.value, interaction_id
        return None


def _agent_name(session: Any, agent_id: int | None) -> str:
    from hub.contract import Agent

    if agent_id is None:
        return ""
    agent = session.get(Agent, agent_id)
    # First name only: visitors see who answers, not the staff directory.
    return agent.name.split()[0] if agent is not None and agent.name else ""
