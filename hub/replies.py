"""Agents' replies: queued on the timeline, delivered after commit, retried with backoff.

A reply is first an outbound interaction (status ``queued``) committed through
the one write path, with an ``outbound_delivery`` row beside it. Only after the
commit is it handed to the channel's :class:`~hub.outbound.Sender`; the outcome
comes back as an InteractionUpdate through the same write path. Transient
failures are retried by the worker; permanent ones (an invalid number) fail the
interaction with the provider's words.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.db import Database, affected, without_sql
from hub.events import (
    Channel,
    ChannelEvent,
    DeliveryStatus,
    Direction,
    InteractionUpdate,
    Party,
)
from hub.ingest import ingest
from hub.metrics import instruments
from hub.models import Conversation, Customer, Identity, Interaction, OutboundDelivery, utcnow
from hub.outbound import OutboundMessage, Sender, SendError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
#: How long a claimed delivery is reserved for the process sending it.
CLAIM_LEASE = timedelta(minutes=2)
_IDENTITY_KIND_FOR = {Channel.EMAIL: "email", Channel.SMS: "phone", Channel.WHATSAPP: "phone", Channel.VOICE: "phone"}


class ReplyError(ValueError):
    """The reply cannot be queued; names the field at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 ... minutes, capped at an hour."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), timedelta(hours=1))


def queue_reply(
    session: Session,
    senders: Mapping[Channel, Sender],
    *,
    conversation_id: int,
    channel: Channel,
    text: str,
    subject: str | None,
    author_id: int | None,
    to: str | None = None,
) -> int:
    """Put an agent's reply on the timeline as queued; returns the interaction id.

    A conversation has one customer, and a reply goes to them: to the address
    the customer last used on ``channel`` in this conversation, else to their
    identity for that channel. A message someone else threaded into it (a
    colleague forwarding the customer's mail) does not change where replies
    go. ``to`` sends to another address the agent picked: one of the
    customer's, or one that wrote in this conversation on ``channel``
    (:func:`reply_recipients`).
    """
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise ReplyError("conversation_id", f"no conversation {conversation_id}")
    sender = senders.get(channel)
    if sender is None:
        enabled = ", ".join(sorted(c.value for c in senders)) or "none"
        raise ReplyError("channel", f"no connector sends {channel.value} replies (enabled: {enabled})")
    if not text.strip():
        raise ReplyError("text", "must not be empty")
    last = session.execute(
        select(
            Interaction.from_address,
            Interaction.to_address,
            Interaction.direction,
            Interaction.subject,
            Interaction.provider_metadata,
        )
        .where(
            Interaction.conversation_id == conversation_id,
            Interaction.channel == channel.value,
            # The customer's own messages and our replies to them, not a participant's.
            Interaction.customer_id == conversation.customer_id,
        )
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(1)
    ).first()
    customer_address: str | None = None
    previous_to: str | None = None
    if last is not None:
        inbound = last.direction == Direction.INBOUND.value
        customer_address = last.from_address if inbound else last.to_address
        previous_to = last.to_address if inbound else last.from_address
        # Web forms send from their own address and name the customer in
        # Reply-To; answering From would write to the form.
        reply_to = (last.provider_metadata or {}).get("reply_to") if inbound else None
        if isinstance(reply_to, list) and reply_to and isinstance(reply_to[0], str):
            customer_address = reply_to[0]
    if not customer_address:
        kind = _IDENTITY_KIND_FOR.get(channel)
        customer_address = session.scalar(
            select(Identity.raw_value)
            .where(Identity.customer_id == conversation.customer_id, Identity.kind == kind)
            .order_by(Identity.id.desc())
            .limit(1)
        )
    if not customer_address:
        raise ReplyError("channel", f"the customer has no {channel.value} address; add one first")
    if to is not None and to.strip():
        known = {r.address.lower(): r.address for r in reply_recipients(session, conversation, channel)}
        picked = known.get(to.strip().lower())
        if picked is None:
            raise ReplyError(
                "to", f"{to.strip()!r} is neither the customer's nor in this conversation on {channel.value}"
            )
        customer_address = picked
    if channel is Channel.WHATSAPP and not customer_address.startswith("whatsapp:"):
        customer_address = f"whatsapp:{customer_address}"
    try:
        from_address = sender.from_address(channel, customer_address, previous_to)
    except SendError as exc:
        # A setting is missing (no number serves the channel): nothing can
        # be sent until an admin sets it, and the message says which.
        raise ReplyError("channel", exc.message) from None
    if subject is None:
        base = (last.subject if last is not None and last.subject else conversation.subject) or ""
        subject = base if base.lower().startswith("re:") or not base else f"Re: {base}"
    event = ChannelEvent(
        channel=channel,
        external_id=f"corridor-{uuid.uuid4()}",
        occurred_at=utcnow(),
        direction=Direction.OUTBOUND,
        sender=Party(address=from_address),
        recipients=(Party(address=customer_address),),
        subject=subject if channel is Channel.EMAIL else "",
        text=text,
        raw=json.dumps(
            {"reply": {"conversation_id": conversation_id, "channel": channel.value, "text": text, "subject": subject}}
        ).encode(),
        raw_content_type="application/json",
        delivery_status=DeliveryStatus.QUEUED,
        conversation_id=conversation_id,
        author_id=author_id,
    )
    result = ingest(session, event, source="agent.reply")
    if result.error or result.interaction_id is None:
        raise ReplyError("text", f"the reply could not be stored: {without_sql(result.error or '')}")
    session.add(OutboundDelivery(interaction_id=result.interaction_id))
    session.flush()
    return result.interaction_id


@dataclass(frozen=True)
class Recipient:
    address: str
    #: "customer" (theirs) or "participant" (someone else who wrote in the conversation).
    role: str
    name: str = ""


def reply_recipients(session: Session, conversation: Conversation, channel: Channel) -> list[Recipient]:
    """Where a reply on ``channel`` may go: the customer's addresses first, then the conversation's participants."""
    kind = _IDENTITY_KIND_FOR.get(channel)
    found: dict[str, Recipient] = {}
    for value in session.scalars(
        select(Identity.raw_value)
        .where(Identity.customer_id == conversation.customer_id, Identity.kind == kind)
        .order_by(Identity.id.desc())
    ):
        found.setdefault(value.lower(), Recipient(value, "customer"))
    rows = session.execute(
        select(Interaction.from_address, Customer.display_name)
        .join(Customer, Customer.id == Interaction.customer_id)
        .where(
            Interaction.conversation_id == conversation.id,
            Interaction.channel == channel.value,
            Interaction.direction == Direction.INBOUND.value,
            Interaction.customer_id != conversation.customer_id,
        )
        .order_by(Interaction.occurred_at.desc())
        .limit(20)
    )
    for address, name in rows:
        if address:
            found.setdefault(address.lower(), Recipient(address, "participant", name or ""))
    return list(found.values())


@dataclass(frozen=True)
class DeliveryOutcome:
    interaction_id: int
    status: str
    error_code: str | None = None
    error_message: str | None = None
    will_retry: bool = False


def _message_for(session: Session, interaction: Interaction) -> OutboundMessage:
    refs = session.scalars(
        select(Interaction.external_id)
        .where(
            Interaction.conversation_id == interaction.conversation_id,
            Interaction.channel == interaction.channel,
            Interaction.id != interaction.id,
            Interaction.occurred_at <= interaction.occurred_at,
        )
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(20)
    ).all()
    return OutboundMessage(
        interaction_id=interaction.id,
        channel=Channel(interaction.channel),
        external_id=interaction.external_id,
        to_address=interaction.to_address,
        from_address=interaction.from_address,
        subject=interaction.subject,
        text=interaction.text,
        html=interaction.html,
        thread_refs=tuple(reversed(refs)),
    )


def deliver(database: Database, senders: Mapping[Channel, Sender], interaction_id: int) -> DeliveryOutcome | None:
    """Hand one queued reply to its sender; call after the reply committed.

    Returns None when another process holds the delivery or it is done.
    """
    now = utcnow()
    with database.write() as session:
        # Claim it: the row's next attempt moves past the lease, so a worker
        # and a request never both send the same reply.
        claimed = affected(
            session.execute(
                update(OutboundDelivery)
                .where(
                    OutboundDelivery.interaction_id == interaction_id,
                    OutboundDelivery.done.is_(False),
                    OutboundDelivery.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + CLAIM_LEASE, attempts=OutboundDelivery.attempts + 1)
            )
        )
        if not claimed:
            return None
        interaction = session.get(Interaction, interaction_id)
        assert interaction is not None
        attempts = (
            session.scalar(select(OutboundDelivery.attempts).where(OutboundDelivery.interaction_id == interaction_id))
            or 1
        )
        message = _message_for(session, interaction)
    sender = senders.get(message.channel)
    try:
        if sender is None:
            raise SendError(f"no connector sends {message.channel.value} replies", permanent=True)
        result = sender.send(message)
    except SendError as exc:
        instruments().sends.labels(message.channel.value, "permanent_error" if exc.permanent else "error").inc()
        return _record_failure(database, message, attempts, exc)
    except Exception as exc:  # a sender bug or a network error it did not wrap
        instruments().sends.labels(message.channel.value, "error").inc()
        log.exception("sending interaction %d failed", interaction_id)
        return _record_failure(database, message, attempts, SendError(str(exc) or type(exc).__name__))
    instruments().sends.labels(message.channel.value, "sent").inc()
    with database.write() as session:
        ingest(
            session,
            InteractionUpdate(
                channel=message.channel,
                external_id=message.external_id,
                update_id=f"send:{message.external_id}",
                occurred_at=utcnow(),
                status=result.status,
                new_external_id=result.provider_id,
                metadata=dict(result.metadata),
                raw=json.dumps({"sent": {"provider_id": result.provider_id, "status": result.status}}).encode(),
                raw_content_type="application/json",
            ),
            source="agent.reply.sent",
        )
        session.execute(
            update(OutboundDelivery)
            .where(OutboundDelivery.interaction_id == interaction_id)
            .values(done=True, last_error=None)
        )
    if result.after_recorded is not None:
        try:
            result.after_recorded()
        except Exception:  # the message went out and is recorded; nothing here may undo that
            log.exception("follow-up work after sending interaction %d failed", interaction_id)
    return DeliveryOutcome(interaction_id, result.status)


def _record_failure(database: Database, message: OutboundMessage, attempts: int, exc: SendError) -> DeliveryOutcome:
    final = exc.permanent or attempts >= MAX_ATTEMPTS
    log.warning(
        "reply %d on %s failed (attempt %d, %s): %s",
        message.interaction_id,
        message.channel.value,
        attempts,
        "giving up" if final else "will retry",
        exc.message,
    )
    with database.write() as session:
        values: dict[str, object] = {"last_error": f"{exc.code or ''} {exc.message}".strip()}
        if final:
            values["done"] = True
            ingest(
                session,
                InteractionUpdate(
                    channel=message.channel,
                    external_id=message.external_id,
                    update_id=f"send-failed:{message.external_id}",
                    occurred_at=utcnow(),
                    status=DeliveryStatus.FAILED.value,
                    error_code=exc.code,
                    error_message=exc.message,
                    raw=json.dumps({"send_failed": {"code": exc.code, "message": exc.message}}).encode(),
                    raw_content_type="application/json",
                ),
                source="agent.reply.failed",
            )
        else:
            values["next_attempt_at"] = utcnow() + backoff(attempts)
            session.execute(
                update(Interaction)
                .where(Interaction.id == message.interaction_id)
                .values(error_code=exc.code, error_message=f"{exc.message} (retrying)")
            )
        session.execute(
            update(OutboundDelivery).where(OutboundDelivery.interaction_id == message.interaction_id).values(**values)
        )
    return DeliveryOutcome(
        message.interaction_id,
        DeliveryStatus.FAILED.value if final else DeliveryStatus.QUEUED.value,
        exc.code,
        exc.message,
        will_retry=not final,
    )


def due_deliveries(database: Database, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Replies waiting for (another) attempt, oldest first."""
    with database.read() as session:
        return list(
            session.scalars(
                select(OutboundDelivery.interaction_id)
                .where(OutboundDelivery.done.is_(False), OutboundDelivery.next_attempt_at <= (now or utcnow()))
                .order_by(OutboundDelivery.next_attempt_at)
                .limit(limit)
            )
        )
