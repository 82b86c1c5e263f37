"""The connector contract: what a channel hands to the hub.

A connector turns a provider's payload (a MIME message, a Twilio webhook, a chat
frame, a JSON event from another system) into one of two immutable values and
passes it to :func:`hub.ingest.ingest`:

* :class:`ChannelEvent` -- something new on a customer's timeline (a message, a
  call, a voicemail, a note). Deduplicated on ``(channel, external_id)``.
* :class:`InteractionUpdate` -- something that happened to an interaction that
  is already on the timeline (a delivery receipt, a call's outcome, a recording,
  a transcript). Deduplicated on ``(channel, update_id)``.

Both carry the raw payload exactly as it arrived, which the hub journals before
anything else so that nothing accepted is ever lost. Parsers that build these
values are pure functions: bytes in, values out, no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class Channel(enum.StrEnum):
    """Where an interaction happened. Threading continues across all of them."""

    EMAIL = "email"
    VOICE = "voice"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    CHAT = "chat"
    #: Anything a third-party system pushes through the generic event API that
    #: is none of the above (a form, a social post, a shop's order note).
    OTHER = "other"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    #: Between agents only (notes); the customer never sees it.
    INTERNAL = "internal"


class InteractionKind(enum.StrEnum):
    MESSAGE = "message"
    CALL = "call"
    VOICEMAIL = "voicemail"
    NOTE = "note"
    STATUS_CHANGE = "status_change"


class IdentityKind(enum.StrEnum):
    """How a customer can be addressed. ``(kind, normalised value)`` is unique."""

    EMAIL = "email"
    #: A real phone number in E.164. SMS, voice and WhatsApp numbers are all
    #: phones: a customer who texts and later calls from the same number is one
    #: customer.
    PHONE = "phone"
    #: A WhatsApp user id that is not a phone number.
    WHATSAPP = "whatsapp"
    CHAT_VISITOR = "chat_visitor"
    #: Senders that are not a person: they get a customer record of their own
    #: and never cause two customers to be joined.
    SHORT_CODE = "short_code"
    ALPHANUMERIC = "alphanumeric"
    WITHHELD = "withheld"
    #: Mail systems (MAILER-DAEMON, postmaster): an event from one that
    #: references an earlier interaction (a bounce) belongs to that
    #: interaction's customer.
    SYSTEM = "system"


#: How far after the hub's own clock (or a mailbox's received time) a provider
#: may say something happened. Clocks drift; a time further ahead is a broken
#: clock or a wrong field, and would pin the interaction to the top of the
#: customer's timeline until then.
FUTURE_TOLERANCE = timedelta(days=1)

#: Identity kinds that name a sender rather than a person.
NON_PERSONAL_KINDS = frozenset(
    {IdentityKind.SHORT_CODE, IdentityKind.ALPHANUMERIC, IdentityKind.WITHHELD, IdentityKind.SYSTEM}
)


class DeliveryStatus(enum.StrEnum):
    """Where an outbound message is. Statuses only move forward (see RANK)."""

    QUEUED = "queued"
    ACCEPTED = "accepted"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    CANCELED = "canceled"
    #: Inbound messages: received by us; nothing further will happen.
    RECEIVED = "received"


class CallStatus(enum.StrEnum):
    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class Party:
    """One end of an interaction, as the provider wrote it.

    ``kind`` is a connector's hint where it knows better than the address can
    say (a Twilio caller of ``anonymous`` is withheld; a ``whatsapp:`` sender is
    a phone). ``None`` lets the hub infer the kind from the channel.
    """

    address: str
    name: str = ""
    kind: IdentityKind | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with an interaction.

    ``content`` is stored content-addressed when given; ``url`` is recorded when
    the provider keeps the file (Twilio media, recordings).
    """

    filename: str
    content_type: str
    size: int
    content: bytes | None = None
    url: str | None = None
    #: ``Content-ID`` of an inline image, without angle brackets.
    content_id: str | None = None
    inline: bool = False


JSONValue = Any  # JSON-serialisable provider metadata


@dataclass(frozen=True, slots=True)
class InteractionUpdate:
    """A change to an interaction that is already on the timeline.

    ``update_id`` makes the update idempotent: a provider's retry of the same
    callback carries the same id and changes nothing the second time.
    """

    channel: Channel
    #: The external id of the interaction this update is about.
    external_id: str
    update_id: str
    occurred_at: datetime
    raw: bytes = b""
    raw_content_type: str = "application/octet-stream"
    #: A DeliveryStatus (messages) or CallStatus (calls). Applied only when it
    #: moves the interaction forward.
    status: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    duration_seconds: int | None = None
    #: Text added to the interaction (a voicemail transcript); searchable.
    text_append: str | None = None
    #: Turns a call into a voicemail once a recording is left, for example.
    kind: InteractionKind | None = None
    attachments: tuple[Attachment, ...] = ()
    metadata: Mapping[str, JSONValue] = field(default_factory=dict)
    #: The provider's id once it is known (an outbound message's MessageSid).
    #: Later updates may name the interaction by either id.
    new_external_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """Something new on a customer's timeline, as one connector saw it.

    The customer is ``sender`` for inbound events and ``recipients[0]`` for
    outbound ones. ``occurred_at`` must be timezone-aware.
    """

    channel: Channel
    external_id: str
    occurred_at: datetime
    direction: Direction
    sender: Party | None
    recipients: tuple[Party, ...] = ()
    kind: InteractionKind = InteractionKind.MESSAGE
    subject: str = ""
    #: The whole plain text; this is what search indexes.
    text: str = ""
    #: The new part of a reply without its quoted history, for display.
    #: Empty when the whole text is new.
    reply_text: str = ""
    #: Provider HTML. The hub sanitises it before storing; never trust it.
    html: str = ""
    #: External ids of earlier interactions on this channel that this one
    #: answers (In-Reply-To and References, a call's parent call).
    thread_refs: tuple[str, ...] = ()
    #: A provider session that groups interactions (a chat session).
    session: str | None = None
    attachments: tuple[Attachment, ...] = ()
    metadata: Mapping[str, JSONValue] = field(default_factory=dict)
    raw: bytes = b""
    raw_content_type: str = "application/octet-stream"
    delivery_status: DeliveryStatus | None = None
    #: Problems the parser recovered from ("charset uft-8 decoded as utf-8").
    #: Stored with the interaction so nothing is silently dropped.
    defects: tuple[str, ...] = ()
    #: False for auto-replies and bounces: they join the customer's latest
    #: conversation but never start one.
    opens_conversation: bool = True
    #: Changes this event implies for other interactions (a bounce fails the
    #: message it reports on).
    updates: tuple[InteractionUpdate, ...] = ()
    #: Set by the hub for an agent's reply: the conversation it answers and the
    #: agent who wrote it. Connectors leave both None.
    conversation_id: int | None = None
    author_id: int | None = None

    @property
    def customer_party(self) -> Party | None:
        """The end of the interaction that is the customer."""
        if self.direction is Direction.OUTBOUND:
            return self.recipients[0] if self.recipients else None
        return self.sender


Ingestible = ChannelEvent | InteractionUpdate
