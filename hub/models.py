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
    Float,
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
    #: Every login cookie carries the epoch it was issued in; raising it
    #: (logout, a new password, deactivation) ends all of them at once.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: When a console of theirs last said it was open (hub.auth.mark_seen): "an agent is online" for the chat.
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginThrottle(Base):
    """Recent failed logins for one account or one client address (``key``).

    In the database, not in memory, so every web process counts the same
    failures and a restart does not reset them.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime]
    blocked_until: Mapped[datetime | None] = mapped_column(default=None)


class Conversation(Base):
    __tablename__ = "conversation"
    __table_args__ = (
        # The threading lookup: a customer's most recent conversation that is
        # not closed.
        Index(None, "customer_id", "status", "last_activity_at"),
        # The inbox (hub.conversations.inbox): one view (status, and for
        # mine/unassigned the assignee) read in its sort order, longest
        # waiting or latest activity, keyset on the id.
        Index(None, "status", "waiting_since", "id"),
        Index(None, "status", "last_activity_at", "id"),
        Index(None, "status", "assignee_id", "waiting_since", "id"),
        Index(None, "status", "assignee_id", "last_activity_at", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    status: Mapped[ConversationStatus] = _enum_column(ConversationStatus)
    subject: Mapped[str] = mapped_column(String(500), default="")
    opened_at: Mapped[datetime]
    last_activity_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"), index=True, default=None)
    #: When the customer's oldest message that nobody has answered arrived;
    #: None when the last word was ours. The inbox sorts by it.
    waiting_since: Mapped[datetime | None] = mapped_column(default=None)


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
    #: When the worker should next try to download a file the provider keeps
    #: (``url`` without ``sha256``; hub.media); NULL: nothing left to download,
    #: or given up. Set at ingest; the index is the prefetch's queue.
    fetch_due_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    fetch_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Why the last download failed, in words for the agent; NULL once stored.
    fetch_error: Mapped[str | None] = mapped_column(Text, default=None)


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


class OutboxState(enum.StrEnum):
    #: Written with the change; the indexer sends it next.
    PENDING = "pending"
    #: In the index. Kept while a rebuild needs to replay it, then purged.
    DONE = "done"
    #: The engine refused the document; ``error`` says why (`corridor search status`).
    FAILED = "failed"


class OutboxEntry(Base):
    """A change the external search index has yet to see; written in the same transaction.

    Its id is the version the document is indexed with (external versioning):
    ids grow with every change, so an older state can never overwrite a newer one.
    """

    __tablename__ = "search_outbox"
    # AUTOINCREMENT: SQLite would otherwise number a row one past the highest
    # there is, and start again from 1 once the indexer has purged them all;
    # these ids are versions, which must only grow.
    __table_args__ = (Index(None, "state", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(Id, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[OutboxState] = mapped_column(String(8), default=OutboxState.PENDING, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    indexed_at: Mapped[datetime | None] = mapped_column(default=None)


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
    __table_args__ = (
        # The audit trail's filters, each newest first with (at, id) as the
        # keyset (hub/reports/audit.py).
        Index(None, "actor_id", "at", "id"),
        Index(None, "action", "at", "id"),
        Index(None, "target_type", "target_id", "at", "id"),
    )

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


class LiveEvent(Base):
    """One change announced to open consoles and chat widgets (hub.live).

    Written in the transaction of the change it announces, so a subscriber
    never hears of data a rollback took back, and never misses data that
    committed. The id is the server-sent event id a reconnecting client
    replays from; ``sqlite_autoincrement`` keeps SQLite from giving an id
    twice after pruning emptied the table's tail.
    """

    __tablename__ = "live_event"
    __table_args__ = (
        # Replay after a reconnect: one topic's (or a few topics') events after an id.
        Index(None, "topic", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    #: "agents" (everything the console shows) or "conversation:<id>" (what
    #: one chat visitor may see); see hub.live.
    topic: Mapped[str] = mapped_column(String(200))
    #: What happened: "interaction.created", "conversation.assigned", ...
    kind: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Pruning removes events older than [live] retention_hours by this.
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class WebhookSubscription(Base):
    """An integrator's endpoint and the event types it is sent (hub.integrations)."""

    __tablename__ = "webhook_subscription"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    #: Event types sent, e.g. ["interaction.created", "conversation.assigned"].
    event_types: Mapped[list[str]] = mapped_column(default=list)
    #: Signs every delivery (HMAC-SHA256); kept because every attempt signs anew.
    secret: Mapped[str] = mapped_column(String(128))
    #: "active" or "paused" (by an admin, or after failing too often).
    status: Mapped[str] = mapped_column(String(16), default="active")
    paused_reason: Mapped[str | None] = mapped_column(Text, default=None)
    paused_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Failed attempts in a row; an acknowledged delivery resets it.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"), default=None)


class WebhookDelivery(Base):
    """One event for one subscription: the outbox row, and its log (status, latency, response, next retry)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        # The dispatcher writes each event once per subscription, whatever happens to it.
        UniqueConstraint("subscription_id", "event_id"),
        # Due deliveries, and the earlier ones of the same conversation they wait for.
        Index(None, "status", "next_attempt_at"),
        Index(None, "subscription_id", "ordering_key", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscription.id", ondelete="CASCADE"))
    #: The body's id: "evt_<live event id>" (or "test_<random>"); receivers dedupe by it.
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    #: "conversation:<id>" or "customer:<id>": deliveries with the same key go out in id order.
    ordering_key: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The exact JSON body sent on every attempt.
    body: Mapped[str] = mapped_column(Text)
    #: "pending" (due at next_attempt_at), "delivered" (2xx: never sent again) or "failed" (gave up).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    #: Retried until then ([webhooks] retry_hours after it was written, or after a resume).
    expires_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    response_code: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class ConversationFacts(Base):
    """What the KPIs need of one conversation, derived from its interactions (hub/reports/rollup.py).

    A rollup, not a source of truth: ``corridor reports rebuild`` recomputes
    every row from the timeline; the worker keeps it current.
    """

    __tablename__ = "report_conversation"
    __table_args__ = (Index(None, "started_at", "first_channel"),)

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), primary_key=True)
    #: The customer's first contact: the clock of every time figure starts here.
    #: None when the conversation holds no contact (we wrote first, and nobody answered).
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    first_channel: Mapped[str | None] = mapped_column(String(16), default=None)
    first_response_at: Mapped[datetime | None] = mapped_column(default=None)
    first_response_by: Mapped[int | None] = mapped_column(Id, default=None)
    #: first_response_at - started_at, kept so percentiles need no date arithmetic per row.
    first_response_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    contacts: Mapped[int] = mapped_column(Integer, default=0)
    channel_count: Mapped[int] = mapped_column(Integer, default=0)
    switches: Mapped[int] = mapped_column(Integer, default=0)
    #: The channels of the customer's contacts in order, repeats collapsed: "email>voice>chat".
    path: Mapped[str] = mapped_column(String(200), default="")
    last_contact_at: Mapped[datetime | None] = mapped_column(default=None)
    last_response_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The first contact no response has followed yet; None when the customer is answered.
    waiting_since: Mapped[datetime | None] = mapped_column(default=None)


class CustomerContact(Base):
    """Each customer contact (hub.reports.rollup.is_contact), for repeat contacts after a close."""

    __tablename__ = "report_contact"
    __table_args__ = (Index(None, "customer_id", "occurred_at"),)

    interaction_id: Mapped[int] = mapped_column(ForeignKey("interaction.id"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(Id)
    occurred_at: Mapped[datetime]


class DailyVolume(Base):
    """Customer contacts (inbound) and responses (outbound) per UTC day and channel."""

    __tablename__ = "report_volume"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    direction: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class ConversationClosure(Base):
    """Each time a conversation was closed: a reopened conversation keeps its earlier closes."""

    __tablename__ = "report_closure"
    __table_args__ = (UniqueConstraint("conversation_id", "closed_at"), Index(None, "closed_at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    closed_at: Mapped[datetime]


class CsatSurvey(Base):
    """A one-question satisfaction survey sent when a conversation closed, and its answer."""

    __tablename__ = "csat_survey"
    __table_args__ = (Index(None, "customer_id", "sent_at"), Index(None, "sent_at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    channel: Mapped[str] = mapped_column(String(16))
    #: In the email link; random, so answers cannot be guessed or forged.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    sent_at: Mapped[datetime]
    #: The outbound survey on the timeline.
    survey_interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interaction.id"), default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    score: Mapped[int | None] = mapped_column(Integer, default=None)
    comment: Mapped[str] = mapped_column(Text, default="")
    #: The answer on the timeline.
    answer_interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interaction.id"), default=None)
    #: A low score waiting for a supervisor to look ([csat] low_score_action).
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)


class Lease(Base):
    """One owner at a time for work any process could do (a mailbox folder's intake): hub.leases."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(500), primary_key=True)
    #: Who holds it: host, process and a random part, so a restarted process is someone else.
    owner: Mapped[str] = mapped_column(String(200))
    #: Renewed while the owner works; after it, anyone may take the lease over.
    expires_at: Mapped[datetime]


class SavedSearch(Base):
    """A search an agent named to run again: the search page's arguments, as its query string (hub.console.search)."""

    __tablename__ = "saved_search"
    __table_args__ = (UniqueConstraint("agent_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id"))
    name: Mapped[str] = mapped_column(String(200))
    #: The search page's query string ("q=refund&channel=sms&preset=30d"), without a cursor.
    arguments: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedResponse(Base):
    """A reply snippet the team shares, its placeholders filled in when inserted (hub.canned)."""

    __tablename__ = "canned_response"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    #: Typed as ``/shortcut`` in a reply, then Tab: lower-case letters, digits, - and _.
    shortcut: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    #: The text with ``{{customer.first_name}}``-style placeholders.
    text: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
