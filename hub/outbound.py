"""Agents' replies: the sender protocol connectors implement, and dispatch.

A reply is first an outbound interaction on the timeline (status ``queued``),
committed like any other event. Only after the commit does the hub hand it to
the channel's :class:`Sender`; the outcome comes back as an
:class:`~hub.events.InteractionUpdate` through the one write path. A failed send
is retried with backoff by the worker unless the provider said it is permanent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.events import Attachment, Channel


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What a sender needs to deliver one reply."""

    interaction_id: int
    channel: Channel
    #: The interaction's external id. Stable across retries, so a sender can
    #: derive idempotency keys (an email's Message-ID) from it.
    external_id: str
    to_address: str
    from_address: str
    subject: str
    text: str
    html: str = ""
    #: External ids of earlier interactions in the conversation on this channel,
    #: oldest first (for an email's In-Reply-To and References).
    thread_refs: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """A provider accepted the message."""

    #: The provider's id for the message (Twilio's MessageSid) when it differs
    #: from the interaction's external id; later status callbacks name it.
    provider_id: str | None = None
    status: str = "sent"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: Work that must wait until the hub has recorded this outcome (the
    #: interaction known by ``provider_id``), e.g. filing a copy of an email
    #: in the mailbox's Sent folder, which the intake may read back at once.
    #: The hub runs it after that commit; its failure is logged and never
    #: fails or re-sends the message, which went out.
    after_recorded: Callable[[], None] | None = field(default=None, repr=False, compare=False)


class SendError(Exception):
    """A provider refused or could not be reached.

    ``permanent`` failures (an invalid number) are not retried; the agent sees
    ``code`` and ``message`` on the interaction and in the API's answer.
    """

    def __init__(self, message: str, *, code: str | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent


class Sender(Protocol):
    """Delivers replies on one channel. Implemented by connectors."""

    def from_address(self, message_channel: Channel, customer_address: str, previous_to: str | None) -> str:
        """The address a reply goes out from (a mailbox, a Twilio number).

        ``previous_to`` is the address the customer last wrote to on this
        channel, so a reply comes from the mailbox or number they used.
        """
        ...

    def send(self, message: OutboundMessage) -> SendResult:
        """Deliver ``message`` or raise :class:`SendError`. Called after commit."""
        ...
