"""The relational model: customers, their identities, conversations and interactions.

Times are stored in UTC and come back timezone-aware. Constraint names follow one
convention so that Alembic's autogenerate output stays stable across databases.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hub.events import Channel, Direction, IdentityKind, InteractionKind

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored in UTC, returned timezone-aware.

    SQLite has no time zones: values are stored naive-in-UTC so that string
    order is time order, which keyset pagination relies on.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Corridor stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"
    CLOSED = "closed"


class Role(enum.StrEnum):
    """What an agent user may do; each role includes the ones before it."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class JournalStatus(enum.StrEnum):
    #: Durable, answered, not processed yet: a journal processor takes it next.
    RECEIVED = "received"
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    #: Processing failed; retried by the worker, shown to admins.
    FAILED = "failed"
    #: An update for an interaction that has not arrived yet; retried.
    DEFERRED = "deferred"


def _enum_column(enum_cls: type[enum.StrEnum], length: int = 16) -> Any:
    # Plain strings, not native enums: adding a channel must not need an
    # ALTER TYPE on PostgreSQL. The Python enums guard the values.
    return mapped_column(String(length), nullable=False)


class Customer(Base):
    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Set when this customer was merged into another: a redirect, kept so old
    #: links and API ids keep working and so the merge can be undone.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True, default=None)

    identities: Mapped[list[Identity]] = relationship(back_populates="customer", order_by="Identity.id")


class Identity(Base):
    """One way to reach a customer: an email address, a phone number, a chat visitor."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    kind: Mapped[IdentityKind] = _enum_column(IdentityKind)
    #: Normalised: casefolded email with IDNA domain, E.164 phone.
    value: Mapped[str] = mapped_column(String(320))
    #: As the customer or provider wrote it.
    raw_value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities")


class Agent(Base):
    """A person who works in Corridor (agent, supervisor or admin)."""

    __tablename__ = "agent"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = _enum_column(Role)
    password_hash: Mapped[str] = mapped_column(String(256), default="")
    #: SHA-256 of the API token; the token itself is shown once, at creation.
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    __tablename__ = "conversation"
    __table_args__ = (
        # The threading lookup: a customer's most recent conversation that is
        # not closed.
        Index(None, "customer_id", "status", "last_activity_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    status: Mapped[ConversationStatus] = _enum_column(ConversationStatus)
    subject: Mapped[str] = mapped_column(String(500), default="")
    opened_at: Mapped[datetime]
    last_activity_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"), index=True, default=None)


class Interaction(Base):
    """One thing on a customer's timeline: a message, a call, a voicemail, a note."""

    __tablename__ = "interaction"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        # The timeline: newest first, keyset on (occurred_at, id).
        Index(None, "customer_id", "occurred_at", "id"),
        # Search, newest first, for common words walks interactions in time
        # order and stops at the page; channel and direction are filters it
        # can then test without reading rows (hub/search/sqlite_fts.py).
        Index(None, "occurred_at", "id", "channel", "direction"),
        Index(None, "conversation_id", "occurred_at"),
        Index(None, "channel", "session_key"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identity.id"), index=True)
    channel: Mapped[Channel] = _enum_column(Channel)
    direction: Mapped[Direction] = _enum_column(Direction)
    kind: Mapped[InteractionKind] = _enum_column(InteractionKind)
    external_id: Mapped[str] = mapped_column(String(998))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    subject: Mapped[str] = mapped_column(Text, default="")
    #: The whole plain text (what search indexes).
    text: Mapped[str] = mapped_column(Text, default="")
    #: The new part of a reply, for display; empty when it is all of ``text``.
    reply_text: Mapped[str] = mapped_column(Text, default="")
    #: Sanitised HTML, safe to put in an agent's page.
    html: Mapped[str] = mapped_column(Text, default="")
    from_address: Mapped[str] = mapped_column(String(320), default="")
    to_address: Mapped[str] = mapped_column(String(320), default="")
    session_key: Mapped[str | None] = mapped_column(String(200), default=None)
    #: DeliveryStatus for messages, CallStatus for calls.
    status: Mapped[str | None] = mapped_column(String(16), default=None)
    error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    duration_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    provider_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: What the parser had to repair; shown beside the interaction.
    defects: Mapped[list[str]] = mapped_column(default=list)
    #: The content's SHA-256 where the sender assigns the id (an email's
    #: Message-ID), so that a different message reusing the id is not taken
    #: for a re-delivery (hub/ingest/dedupe.py). None where the id alone
    #: decides, and on rows stored before fingerprints were.
    fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    journal_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entry.id"), default=None)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"), default=None)

    attachments: Mapped[list[AttachmentRecord]] = relationship(order_by="AttachmentRecord.id")


class AttachmentRecord(Base):
    """A file that came with an interaction; the bytes live in ``attachment_blob``."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interaction.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(ForeignKey("attachment_blob.sha256"), index=True, default=None)
    url: Mapped[str | None] = mapped_column(Text, default=None)
    content_id: Mapped[str | None] = mapped_column(String(255), default=None)
    inline: Mapped[bool] = mapped_column(Boolean, default=False)


class AttachmentBlob(Base):
    """Attachment bytes, stored once per distinct content (content-addressed).

    Kept in the database so that an interaction and its files commit together.
    """

    __tablename__ = "attachment_blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class JournalEntry(Base):
    """A raw payload exactly as it arrived, stored before anything else happens."""

    __tablename__ = "journal_entry"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    #: Who delivered it: "api", "twilio.message", "email:support@example.com/INBOX".
    source: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(16), default=None)
    external_id: Mapped[str | None] = mapped_column(String(998), default=None)
    received_at: Mapped[datetime]
    content_type: Mapped[str] = mapped_column(String(255))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    #: What the source's parser needs besides the payload to parse it again.
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[JournalStatus] = _enum_column(JournalStatus)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    interaction_id: Mapped[int | None] = mapped_column(Id, default=None)


class AppliedUpdate(Base):
    """An InteractionUpdate that has been applied; a retry of it changes nothing."""

    __tablename__ = "applied_update"
    __table_args__ = (UniqueConstraint("channel", "update_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    update_id: Mapped[str] = mapped_column(String(300))
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interaction.id"), index=True)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEntry(Base):
    """A change the external search index has yet to see; written in the same transaction."""

    __tablename__ = "search_outbox"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(Id, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboundDelivery(Base):
    """An agent's reply still to be handed to its channel's sender."""

    __tablename__ = "outbound_delivery"
    __table_args__ = (Index(None, "done", "next_attempt_at"),)

    interaction_id: Mapped[int] = mapped_column(ForeignKey("interaction.id"), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    done: Mapped[bool] = mapped_column(Boolean, default=False)


class CustomerMerge(Base):
    """A merge of ``source`` into ``target``, with exactly what moved, so it can be undone."""

    __tablename__ = "customer_merge"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    merged_at: Mapped[datetime] = mapped_column(default=utcnow)
    merged_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"), default=None)
    #: {"identity": [...ids], "conversation": [...], "interaction": [...]}
    moved: Mapped[dict[str, Any]] = mapped_column(default=dict)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditRecord(Base):
    """Who changed what, for the changes agents make by hand."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"), default=None)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int] = mapped_column(Id)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ConnectorState(Base):
    """A connector's cursor (a mailbox folder's last UID), saved with the data it covers."""

    __tablename__ = "connector_state"

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Lease(Base):
    """One owner at a time for work any process could do (a mailbox folder's intake): hub.leases."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(500), primary_key=True)
    #: Who holds it: host, process and a random part, so a restarted process is someone else.
    owner: Mapped[str] = mapped_column(String(200))
    #: Renewed while the owner works; after it, anyone may take the lease over.
    expires_at: Mapped[datetime]
