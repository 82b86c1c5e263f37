"""The one write path: every channel's events reach the timeline through here.

``ingest_many(session, items, source=...)`` runs, inside the caller's
transaction:

1. **Journal**: every raw payload is inserted first. It commits with the rest,
   or, when processing fails, alone with its error; either way nothing the
   caller acknowledged is lost.
2. **Dedupe** on ``(channel, external_id)`` for events and ``(channel,
   update_id)`` for updates, also against concurrent writers (unique
   constraints, and on PostgreSQL a row lock on each customer).
3. **Identity**: normalise the customer's address and find or create the
   customer.
4. **Thread**: explicit references, then a provider session of the same
   customer, then the customer's open conversation within the continuation
   window (whatever the channel), else a new conversation.
5. **Append** the interactions; move conversations' last activity.
6. **Index**: the in-transaction search index, or an outbox row for an
   external one.
7. **Notify** after commit.

Entry points that answer a provider per request (webhooks, the event API)
call ``receive(database, items, source=...)`` instead: it journals the items
as *received* in a group commit and returns once they are durable; the
journal processor (``hub.journal``) then runs them through the same pipeline
in batches, its claim committing with the timeline rows.

The pipeline is batch-native: one event is a batch of one, and a backfill of a
thousand costs a handful of statements instead of thousands. When anything in a
batch fails, the batch's savepoint is rolled back and its items are retried one
by one, so one bad event never takes good ones down with it, and a failure
never leaves half an interaction behind.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.db import INBOX_KEY, Database, after_commit
from hub.events import (
    CallStatus,
    Channel,
    ChannelEvent,
    DeliveryStatus,
    Direction,
    IdentityKind,
    Ingestible,
    InteractionKind,
    InteractionUpdate,
    Party,
)
from hub.identity import InvalidAddress, NormalisedAddress, display_name_for, normalise
from hub.inbox import COLUMNS as INBOX_COLUMNS
from hub.inbox import Inbox
from hub.models import (
    AppliedUpdate,
    AttachmentBlob,
    AttachmentRecord,
    Conversation,
    ConversationStatus,
    Customer,
    Identity,
    Interaction,
    JournalEntry,
    JournalStatus,
    OutboxEntry,
    utcnow,
)
from hub.realtime import Notifier
from hub.sanitise import UnsanitisableHtml, html_to_text, sanitise_html
from hub.search import IndexDocument, SearchBackend

log = logging.getLogger(__name__)

# The tables, for Core statements on the hot path.
JOURNAL = cast(Table, JournalEntry.__table__)
CUSTOMER = cast(Table, Customer.__table__)
IDENTITY = cast(Table, Identity.__table__)
CONVERSATION = cast(Table, Conversation.__table__)
INTERACTION = cast(Table, Interaction.__table__)
ATTACHMENT = cast(Table, AttachmentRecord.__table__)
BLOB = cast(Table, AttachmentBlob.__table__)
OUTBOX = cast(Table, OutboxEntry.__table__)

PIPELINE_KEY = "corridor.pipeline"
#: What threading needs of a conversation, in _ConversationState's field order.
_CONVERSATION_STATE = (
    Conversation.id,
    Conversation.customer_id,
    Conversation.status,
    Conversation.opened_at,
    Conversation.last_activity_at,
    Conversation.subject,
)
#: Rows per IN (...) list: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 400
#: How long a deferred update waits before the worker tries it again.
DEFER_DELAY = timedelta(seconds=30)

_FINAL_DELIVERY = {DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED, DeliveryStatus.CANCELED}
_DELIVERY_ORDER = [
    DeliveryStatus.QUEUED,
    DeliveryStatus.ACCEPTED,
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.READ,
]
_FINAL_CALL = {
    CallStatus.COMPLETED,
    CallStatus.BUSY,
    CallStatus.NO_ANSWER,
    CallStatus.FAILED,
    CallStatus.CANCELED,
}
_CALL_ORDER = [CallStatus.QUEUED, CallStatus.RINGING, CallStatus.IN_PROGRESS]
FINAL_RANK = 100
_RANK: dict[str, int] = {
    **{s.value: i for i, s in enumerate(_DELIVERY_ORDER)},
    **{s.value: i for i, s in enumerate(_CALL_ORDER)},
    **{s.value: FINAL_RANK for s in _FINAL_DELIVERY | _FINAL_CALL},
    DeliveryStatus.RECEIVED.value: FINAL_RANK,
}


def status_rank(status: str | None) -> int:
    """Statuses only move forward; final ones (failed, completed...) never change."""
    if status is None:
        return -1
    return _RANK.get(status, 0)


def moves_forward(current: str | None, new: str) -> bool:
    return status_rank(current) < FINAL_RANK and status_rank(new) > status_rank(current)


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline needs from settings; attached to every write session."""

    default_region: str
    continuation_window: timedelta
    search: SearchBackend
    notifier: Notifier = field(default_factory=Notifier)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one ingested item."""

    journal_id: int
    interaction_id: int | None = None
    customer_id: int | None = None
    conversation_id: int | None = None
    #: The item was already on the timeline (a provider's retry).
    duplicate: bool = False
    #: An update whose interaction has not arrived yet; the worker retries it.
    deferred: bool = False
    #: Processing failed; the payload stays in the journal with this error.
    error: str | None = None


class InvalidEvent(ValueError):
    """A connector produced an event the hub cannot accept; names the field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def ingest(
    session: Session,
    item: Ingestible,
    *,
    source: str,
    context: Mapping[str, Any] | None = None,
) -> IngestResult:
    """Journal and process one event or update in the caller's transaction."""
    return ingest_many(session, [item], source=source, context=context)[0]


def ingest_many(
    session: Session,
    items: Sequence[Ingestible],
    *,
    source: str,
    context: Mapping[str, Any] | None = None,
    contexts: Sequence[Mapping[str, Any]] | None = None,
) -> list[IngestResult]:
    """Journal and process a batch in the caller's transaction, in order.

    ``source`` names who delivered the items ("api", "twilio.message",
    "email:support@example.com/INBOX"); ``context`` is what that source's
    parser needs, besides the raw payload, to parse it again on replay.
    ``contexts`` instead gives each item its own (each IMAP message has its
    own INTERNALDATE), so items that differ in it are still one batch.
    Failures are returned per item (``error``), never raised, so the caller
    can still commit the journal and answer the provider.
    """
    if not items:
        return []
    if contexts is not None and (context is not None or len(contexts) != len(items)):
        raise ValueError("ingest_many: give one context for every item, or contexts with one per item")
    per_item = contexts if contexts is not None else [context or {}] * len(items)
    arrivals = [Arrival(item, source, item_context) for item, item_context in zip(items, per_item, strict=True)]
    return process_journaled(session, items, _journal(session, arrivals, utcnow()))


@dataclass(frozen=True, slots=True)
class Arrival:
    """One item with who delivered it and what its parser needs to parse it again."""

    item: Ingestible
    source: str
    context: Mapping[str, Any]


class _Submission:
    __slots__ = ("_turn", "arrivals", "error", "journal_ids")

    def __init__(self, arrivals: list[Arrival]) -> None:
        self.arrivals = arrivals
        self.journal_ids: list[int] | None = None
        self.error: BaseException | None = None
        # Held until the caller's turn comes: its group committed, or it
        # leads the next one. A bare lock is the cheapest wait there is.
        self._turn = threading.Lock()
        self._turn.acquire()

    def wait_turn(self) -> None:
        self._turn.acquire()

    def give_turn(self) -> None:
        self._turn.release()

    @property
    def settled(self) -> bool:
        return self.journal_ids is not None or self.error is not None


class GroupCommit:
    """Concurrent entry points share one journal transaction (group commit).

    Each caller returns only after the transaction holding its payloads has
    committed, so "journaled before 2xx" holds for every webhook. While one
    transaction commits, the callers that arrive queue up and go together in
    the next: a commit per group, not per request. Under no load a group is
    one request and nothing waits. No thread of its own: the first caller to
    find no transaction in progress leads, and hands the lead to the first
    caller still queued when its group has committed.

    Each waiting caller is woken exactly once (its group committed, or it
    leads the next), never all of them at every commit: on a busy server the
    wake-ups, not the inserts, were most of what a journal write cost.
    """

    #: Bounds the latency a leader adds for the callers behind it.
    MAX_ITEMS = 256

    def __init__(self, database: Database) -> None:
        self.database = database
        self._writer = _journal_writer(database)
        self._lock = threading.Lock()
        self._pending: collections.deque[_Submission] = collections.deque()
        self._leading = False
        self.listeners: list[Callable[[], None]] = []

    def submit(self, arrivals: list[Arrival]) -> list[int]:
        submission = _Submission(arrivals)
        with self._lock:
            self._pending.append(submission)
            leads = not self._leading
            self._leading = True
        if not leads:
            submission.wait_turn()
            if submission.settled:
                return self._outcome(submission)
        # This caller leads: its own submission is the first still queued.
        with self._lock:
            group = [self._pending.popleft()]
            taken = len(group[0].arrivals)
            while self._pending and taken + len(self._pending[0].arrivals) <= self.MAX_ITEMS:
                taken += len(self._pending[0].arrivals)
                group.append(self._pending.popleft())
        try:
            self._commit(group)
        finally:
            for other in group[1:]:
                other.give_turn()
            with self._lock:
                if self._pending:
                    self._pending[0].give_turn()
                else:
                    self._leading = False
        for listener in self.listeners:
            listener()
        return self._outcome(submission)

    def _commit(self, group: list[_Submission]) -> None:
        arrivals = [a for submission in group for a in submission.arrivals]
        try:
            journal_ids = self._writer(arrivals)
        except BaseException as exc:
            # Nothing of the group committed: every caller answers with an
            # error and the providers retry.
            for submission in group:
                submission.error = exc
            raise
        start = 0
        for submission in group:
            submission.journal_ids = journal_ids[start : start + len(submission.arrivals)]
            start += len(submission.arrivals)

    @staticmethod
    def _outcome(submission: _Submission) -> list[int]:
        if submission.error is not None:
            raise submission.error
        assert submission.journal_ids is not None
        return submission.journal_ids


_group_commits: weakref.WeakKeyDictionary[Database, GroupCommit] = weakref.WeakKeyDictionary()
_group_commits_lock = threading.Lock()


def _group_commit(database: Database) -> GroupCommit:
    # Looked up without the lock first: every request comes here, and a lock
    # shared by all of them is one more place for server threads to queue.
    group_commit = _group_commits.get(database)
    if group_commit is not None:
        return group_commit
    with _group_commits_lock:
        group_commit = _group_commits.get(database)
        if group_commit is None:
            group_commit = _group_commits[database] = GroupCommit(database)
        return group_commit


def receive(
    database: Database,
    items: Sequence[Ingestible],
    *,
    source: str,
    context: Mapping[str, Any] | None = None,
) -> list[int]:
    """Journal ``items`` as received, commit, and return their journal ids.

    For entry points that answer a provider or client per request (webhooks,
    the event API): the payload is durable when this returns, so a 2xx sent
    afterwards is never ahead of the journal; concurrent requests share one
    group commit. The timeline work happens next, in batches, in a journal
    processor (``hub.journal``): a request pays for one journal row, not for
    identity, threading and indexing, and a burst is processed as a batch.
    Raises only when the commit itself failed (answer 5xx; the provider
    retries).
    """
    if not items:
        return []
    return _group_commit(database).submit([Arrival(item, source, context or {}) for item in items])


def on_received(database: Database, listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` (quickly, without blocking) after each commit of received items.

    How an in-process journal processor learns at once that there is work;
    one in another process polls instead. Returns what stops the calls.
    """
    listeners = _group_commit(database).listeners
    listeners.append(listener)
    return lambda: listeners.remove(listener)


JournalWriter = Callable[[Sequence[Arrival]], list[int]]


def _journal_writer(database: Database) -> JournalWriter:
    """How this database journals received items: one transaction, ids in order."""
    if database.is_sqlite:
        return _SqliteJournalWriter(database)

    def write(arrivals: Sequence[Arrival]) -> list[int]:
        now = utcnow()
        with database.write_engine.begin() as connection:
            return insert_returning_ids(
                connection, JOURNAL, [_journal_row(a, now, JournalStatus.RECEIVED) for a in arrivals]
            )

    return write


class _SqliteJournalWriter:
    """The received-journal insert on SQLite: rows appended to the database's inbox (hub.inbox).

    This is the one statement every webhook and API request waits for, so it
    is built for that. Through SQLAlchemy (session or Core) its fixed
    per-transaction cost was most of a request's budget (measured: 38 % of a
    bare Flask endpoint's rate against 53 % this way, tests/bench/webhook.py),
    so it goes straight through a DB-API connection; the rows are still built
    by ``_journal_row`` and bound with the journal columns' own SQLAlchemy type
    processors, so what is stored is exactly what the ORM would store.
    """

    def __init__(self, database: Database) -> None:
        assert database.inbox is not None
        self.inbox = database.inbox
        dialect = database.write_engine.dialect
        # Each column's type as this dialect stores it (for a TypeDecorator,
        # its own conversion and then the dialect's).
        columns = [JOURNAL.c[name] for name in INBOX_COLUMNS]
        self.processors = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
        self._connection: sqlite3.Connection | None = None
        self._pid = 0

    def __call__(self, arrivals: Sequence[Arrival]) -> list[int]:
        now = utcnow()
        rows = [self._bind(_journal_row(a, now, JournalStatus.RECEIVED)) for a in arrivals]
        # Its own connection, opened again after a fork. The group commit's
        # leader is its only user at any time.
        if self._connection is None or self._pid != os.getpid():
            self._connection, self._pid = self.inbox.writer(), os.getpid()
        return self.inbox.append(self._connection, rows)

    def _bind(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            processor(row[name]) if processor is not None else row[name]
            for name, processor in zip(INBOX_COLUMNS, self.processors, strict=True)
        )


def process_journaled(session: Session, items: Sequence[Ingestible], journal_ids: Sequence[int]) -> list[IngestResult]:
    """Process items whose payloads are already in the journal (ingest, and replay)."""
    config = pipeline_config(session)
    now = utcnow()
    try:
        with session.begin_nested():
            return _Batch(session, config, now).run(items, journal_ids)
    except Exception as exc:
        if len(items) == 1:
            return [_record_failure(session, journal_ids[0], exc)]
        log.warning("batch of %d failed (%s); retrying one by one", len(items), exc)
    results = []
    for item, journal_id in zip(items, journal_ids, strict=True):
        try:
            with session.begin_nested():
                results.extend(_Batch(session, config, now).run([item], [journal_id]))
        except Exception as exc:
            results.append(_record_failure(session, journal_id, exc))
    return results


def pipeline_config(session: Session) -> PipelineConfig:
    try:
        config: PipelineConfig = session.info[PIPELINE_KEY]
    except KeyError:
        raise RuntimeError("this session was not opened by hub.db.Database.write()") from None
    return config


def record_unparseable(
    session: Session,
    *,
    source: str,
    raw: bytes,
    content_type: str,
    error: str,
    context: Mapping[str, Any] | None = None,
) -> int:
    """Journal a payload whose parser failed, so an admin sees it and can replay it.

    Returns the journal id. The payload is kept whole; nothing is dropped.
    """
    row = {
        "source": source,
        "received_at": utcnow(),
        "content_type": content_type,
        "payload": raw,
        "context": dict(context or {}),
        "status": JournalStatus.FAILED,
        "error": error,
        "attempts": 1,
    }
    [entry_id] = _insert_journal_rows(session, [row])
    log.warning("unparseable payload from %s journaled as #%d: %s", source, entry_id, error)
    return entry_id


def _journal(session: Session, arrivals: Sequence[Arrival], now: datetime) -> list[int]:
    # Optimistic: the rows that end otherwise are updated later, so the
    # common case costs no second statement.
    return _insert_journal_rows(session, [_journal_row(arrival, now, JournalStatus.PROCESSED) for arrival in arrivals])


def _insert_journal_rows(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Rows written straight to the journal table in the caller's transaction; their ids, in order.

    On SQLite every journal id comes from the inbox's sequence (hub.inbox),
    so these never take an id a received entry waiting there already has.
    """
    inbox: Inbox | None = session.info.get(INBOX_KEY)
    if inbox is None:
        return insert_returning_ids(session.connection(), JOURNAL, rows)
    ids = inbox.allocate(len(rows))
    session.execute(insert(JOURNAL), [{**row, "id": row_id} for row, row_id in zip(rows, ids, strict=True)])
    return ids


def _journal_row(arrival: Arrival, now: datetime, status: JournalStatus) -> dict[str, Any]:
    item = arrival.item
    # A lookup aid only: the payload itself is kept whole, so an id too long
    # for an interaction must still be journaled.
    lookup = item.external_id if isinstance(item, ChannelEvent) else f"{item.external_id}#{item.update_id}"
    return {
        "source": arrival.source[:200],
        "channel": item.channel.value,
        "external_id": lookup[:998],
        "received_at": now,
        "content_type": item.raw_content_type,
        "payload": item.raw,
        "context": dict(arrival.context),
        "status": status,
        "attempts": 1,
    }


def insert_returning_ids(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` and return their new ids, in order, in as few statements as the database allows.

    PostgreSQL: one ordered ``INSERT ... RETURNING`` per few hundred rows. On
    SQLite, SQLAlchemy can only keep RETURNING in parameter order one row per
    statement, which made bulk ingest statement-bound; but a SQLite writer
    holds the database's write lock (BEGIN IMMEDIATE), so the ids after the
    current maximum are this transaction's to assign, and a plain executemany
    does the rest.
    """
    if not rows:
        return []
    if connection.dialect.name == "sqlite":
        start = connection.scalar(select(func.max(table.c.id))) or 0
        ids = list(range(start + 1, start + 1 + len(rows)))
        connection.execute(insert(table), [{**row, "id": row_id} for row, row_id in zip(rows, ids, strict=True)])
        return ids
    return list(connection.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).all())


def _record_failure(session: Session, journal_id: int, exc: Exception) -> IngestResult:
    error = f"{type(exc).__name__}: {exc}"
    log.error("journal #%d failed: %s", journal_id, error, exc_info=not isinstance(exc, InvalidEvent))
    attempts = session.scalar(select(JournalEntry.attempts).where(JournalEntry.id == journal_id)) or 1
    session.execute(
        update(JournalEntry)
        .where(JournalEntry.id == journal_id)
        .values(
            status=JournalStatus.FAILED,
            error=error[:4000],
            next_attempt_at=utcnow() + retry_delay(attempts),
        )
    )
    return IngestResult(journal_id=journal_id, error=error)


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff for journal replays: 30 s, 1 min, 2 min ... capped at 1 h."""
    return min(DEFER_DELAY * (1 << min(max(attempts - 1, 0), 16)), timedelta(hours=1))


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def pairs_in(first: Any, second: Any, pairs: Sequence[tuple[Any, Any]]) -> ColumnElement[bool]:
    """``(first, second) IN pairs``, written so that SQLite seeks instead of scanning.

    SQLite (3.40) plans a row-value ``IN`` of two or more pairs as a scan of
    the whole unique index: 0.1 ms for one pair, 93 ms for two on a
    million interactions. Grouped by the first column it becomes
    ``first = ? AND second IN (...)``: one index seek per group, on SQLite and
    PostgreSQL alike.
    """
    groups: dict[Any, list[Any]] = {}
    for a, b in pairs:
        groups.setdefault(a, []).append(b)
    return or_(*(and_(first == a, second.in_(bs)) for a, bs in groups.items()))


def _insert_ignoring_conflicts(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    session.connection().execute(module.insert(table).on_conflict_do_nothing(), rows)


@dataclass
class _ConversationState:
    id: int | None
    customer_id: int
    status: str
    opened_at: datetime
    last_activity_at: datetime
    subject: str
    is_new: bool = False
    changed: bool = False


@dataclass
class _Pending:
    """An event on its way to becoming an interaction."""

    index: int
    event: ChannelEvent
    journal_id: int
    address: NormalisedAddress
    defects: list[str]
    customer_id: int = 0
    identity_id: int | None = None
    conversation: _ConversationState | None = None


class _Batch:
    def __init__(self, session: Session, config: PipelineConfig, now: datetime) -> None:
        self.session = session
        # Core statements on the session's connection: the ORM's bulk
        # machinery costs more than the statements themselves on this path.
        self.conn = session.connection()
        self.config = config
        self.now = now
        self.notifications: list[dict[str, Any]] = []

    def run(self, items: Sequence[Ingestible], journal_ids: Sequence[int]) -> list[IngestResult]:
        results: list[IngestResult | None] = [None] * len(items)
        events = [(i, item, journal_ids[i]) for i, item in enumerate(items) if isinstance(item, ChannelEvent)]
        updates: list[tuple[int | None, InteractionUpdate, int]] = [
            (i, item, journal_ids[i]) for i, item in enumerate(items) if isinstance(item, InteractionUpdate)
        ]
        if events:
            for index, result in self._events(events).items():
                results[index] = result
        # Updates an event implies (a bounce failing the message it reports on)
        # are applied after the events, so they can name one from this batch.
        for _, item, journal_id in events:
            updates.extend((None, u, journal_id) for u in item.updates)
        if updates:
            for index, result in self._updates(updates).items():
                results[index] = result
        if self.notifications:
            notifier, notifications = self.config.notifier, self.notifications

            def publish() -> None:
                for notification in notifications:
                    notifier.publish(notification)

            after_commit(self.session, publish)
        final = [r for r in results if r is not None]
        assert len(final) == len(items)
        return final

    # -- events ---------------------------------------------------------------

    def _events(self, events: list[tuple[int, ChannelEvent, int]]) -> dict[int, IngestResult]:
        results: dict[int, IngestResult] = {}
        pending: list[_Pending] = []
        first_seen: dict[tuple[str, str], int] = {}
        for index, item, journal_id in events:
            _check_event(item)
            key = (item.channel.value, item.external_id)
            if key in first_seen:
                results[index] = IngestResult(journal_id=journal_id, duplicate=True)
                continue
            first_seen[key] = index
            address, defects = self._address_of(item)
            pending.append(_Pending(index, item, journal_id, address, list(item.defects) + defects))

        self._resolve_customers(pending)
        self._lock_customers({p.customer_id for p in pending})
        existing = self._existing_interactions([(p.event.channel.value, p.event.external_id) for p in pending])
        fresh = []
        for p in pending:
            found = existing.get((p.event.channel.value, p.event.external_id))
            if found is not None:
                results[p.index] = IngestResult(
                    journal_id=p.journal_id,
                    interaction_id=found[0],
                    customer_id=found[1],
                    conversation_id=found[2],
                    duplicate=True,
                )
            else:
                fresh.append(p)
        self._thread(fresh)
        ids = self._append(fresh)
        for p, interaction_id in zip(fresh, ids, strict=True):
            conversation_id = p.conversation.id if p.conversation else None
            results[p.index] = IngestResult(
                journal_id=p.journal_id,
                interaction_id=interaction_id,
                customer_id=p.customer_id,
                conversation_id=conversation_id,
            )
            self.notifications.append(
                {
                    "type": "interaction.created",
                    "interaction_id": interaction_id,
                    "customer_id": p.customer_id,
                    "conversation_id": conversation_id,
                    "channel": p.event.channel.value,
                    "kind": p.event.kind.value,
                }
            )
        duplicates = [
            {"row_id": r.journal_id, "interaction_id": r.interaction_id, "status": JournalStatus.DUPLICATE}
            for r in results.values()
            if r.duplicate
        ]
        if duplicates:
            self.conn.execute(
                update(JOURNAL).where(JOURNAL.c.id == bindparam("row_id")),
                duplicates,
            )
        return results

    def _address_of(self, event: ChannelEvent) -> tuple[NormalisedAddress, list[str]]:
        party = event.customer_party
        problem = "no customer address" if party is None else None
        if party is not None:
            try:
                return normalise(party, event.channel, self.config.default_region), []
            except InvalidAddress as exc:
                problem = str(exc)
        # Keep the event, under a customer of its own, with the problem shown:
        # a provider's message must never be dropped for a bad address.
        raw = party.address if party else ""
        placeholder = Party(
            address=f"unknown:{event.channel.value}:{event.external_id}",
            name=(party.name if party and party.name else raw) or "Unknown sender",
            kind=IdentityKind.WITHHELD,
        )
        address = normalise(placeholder, event.channel, self.config.default_region)
        return address, [f"unusable customer address {raw!r}: {problem}"]

    def _resolve_customers(self, pending: list[_Pending]) -> None:
        # A mail system's report (a bounce) is about the customer of the
        # message it references, and belongs on their timeline.
        system = [p for p in pending if p.address.kind is IdentityKind.SYSTEM and p.event.thread_refs]
        if system:
            owners = self._reference_owners(system)
            for p in system:
                channel = p.event.channel.value
                owner = next((owners[(channel, r)] for r in p.event.thread_refs if (channel, r) in owners), None)
                if owner is not None:
                    p.customer_id, p.identity_id = owner
            pending = [p for p in pending if not p.customer_id]
        keys = sorted({(p.address.kind.value, p.address.value) for p in pending})
        found = self._identities(keys)
        missing = [k for k in keys if k not in found]
        if missing:
            # The first event of a batch names a new customer, as it would one by one.
            by_key: dict[tuple[str, str], NormalisedAddress] = {}
            for p in pending:
                by_key.setdefault((p.address.kind.value, p.address.value), p.address)
            customer_ids = insert_returning_ids(
                self.conn,
                CUSTOMER,
                [{"display_name": display_name_for(by_key[k])[:200], "created_at": self.now} for k in missing],
            )
            _insert_ignoring_conflicts(
                self.session,
                IDENTITY,
                [
                    {
                        "customer_id": customer_id,
                        "kind": k[0],
                        "value": k[1],
                        "raw_value": by_key[k].raw[:320],
                        "created_at": self.now,
                    }
                    for k, customer_id in zip(missing, customer_ids, strict=True)
                ],
            )
            found.update(self._identities(missing))
            # A concurrent writer created some of these identities first; the
            # customers made for them here are orphans.
            orphans = [cid for k, cid in zip(missing, customer_ids, strict=True) if found[k][1] != cid]
            if orphans:
                self.conn.execute(delete(CUSTOMER).where(CUSTOMER.c.id.in_(orphans)))
        for p in pending:
            p.identity_id, p.customer_id = found[(p.address.kind.value, p.address.value)]

    def _reference_owners(self, pending: list[_Pending]) -> dict[tuple[str, str], tuple[int, int | None]]:
        keys = sorted({(p.event.channel.value, ref) for p in pending for ref in p.event.thread_refs})
        owners: dict[tuple[str, str], tuple[int, int | None]] = {}
        for chunk in _chunks(keys):
            rows = self.conn.execute(
                select(
                    Interaction.channel, Interaction.external_id, Interaction.customer_id, Interaction.identity_id
                ).where(pairs_in(Interaction.channel, Interaction.external_id, chunk))
            )
            for channel, external_id, customer_id, identity_id in rows:
                owners[(channel, external_id)] = (customer_id, identity_id)
        return owners

    def _identities(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
        found: dict[tuple[str, str], tuple[int, int]] = {}
        for chunk in _chunks(keys):
            rows = self.conn.execute(
                select(Identity.kind, Identity.value, Identity.id, Identity.customer_id).where(
                    pairs_in(Identity.kind, Identity.value, chunk)
                )
            )
            for kind, value, identity_id, customer_id in rows:
                found[(kind, value)] = (identity_id, customer_id)
        return found

    def _lock_customers(self, customer_ids: set[int]) -> None:
        # Serialises concurrent writers per customer on PostgreSQL, so two
        # deliveries of one event, or two first messages of a customer, cannot
        # both pass the duplicate check or both open a conversation. SQLite
        # serialises all writers already (BEGIN IMMEDIATE).
        if self.session.get_bind().dialect.name != "postgresql" or not customer_ids:
            return
        for chunk in _chunks(sorted(customer_ids)):
            self.conn.execute(
                select(Customer.id).where(Customer.id.in_(chunk)).order_by(Customer.id).with_for_update()
            ).all()

    def _existing_interactions(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, int, int | None]]:
        found: dict[tuple[str, str], tuple[int, int, int | None]] = {}
        for chunk in _chunks(list(keys)):
            rows = self.conn.execute(
                select(
                    Interaction.channel,
                    Interaction.external_id,
                    Interaction.id,
                    Interaction.customer_id,
                    Interaction.conversation_id,
                ).where(pairs_in(Interaction.channel, Interaction.external_id, chunk))
            )
            for channel, external_id, iid, cid, conv in rows:
                found[(channel, external_id)] = (iid, cid, conv)
        return found

    # -- threading ------------------------------------------------------------

    def _thread(self, fresh: list[_Pending]) -> None:
        if not fresh:
            return
        conversations: dict[int, _ConversationState] = {}

        def state_for(conversation_id: int) -> _ConversationState:
            # Named conversations are loaded in bulk below; this lookup is
            # left for step 4's latest conversation and for an id with no row.
            if conversation_id not in conversations:
                conversations.update(self._conversations_by_id([conversation_id]))
                if conversation_id not in conversations:
                    raise InvalidEvent("conversation_id", f"no conversation {conversation_id}")
            return conversations[conversation_id]

        by_reference = self._referenced_conversations(fresh)
        by_session = self._session_conversations(fresh)
        earliest = min(p.event.occurred_at for p in fresh)
        latest_open = self._open_conversations(
            {p.customer_id for p in fresh}, earliest - self.config.continuation_window
        )
        for state in latest_open.values():
            if state.id is not None:
                conversations[state.id] = state
        # Every existing conversation an event may name (by reference, session
        # or an agent's reply) in one statement per CHUNK: loaded one by one in
        # state_for(), a backfill of replies cost a query per conversation.
        # Loading one that ends up unchosen is harmless: it stays unchanged.
        named = {
            *by_reference.values(),
            *by_session.values(),
            *(p.event.conversation_id for p in fresh if p.event.conversation_id is not None),
        }
        conversations.update(self._conversations_by_id(sorted(named - conversations.keys())))
        window = self.config.continuation_window
        batch_refs: dict[tuple[str, str], _ConversationState] = {}

        for p in sorted(fresh, key=lambda p: (p.event.occurred_at, p.index)):
            event = p.event
            chosen: _ConversationState | None = None
            # 0. An agent's reply names its conversation.
            if event.conversation_id is not None:
                chosen = state_for(event.conversation_id)
            # 1. Explicit references win, even outside the window.
            for ref in event.thread_refs if chosen is None else ():
                key = (event.channel.value, ref)
                if key in batch_refs:
                    chosen = batch_refs[key]
                elif key in by_reference:
                    chosen = state_for(by_reference[key])
                if chosen is not None:
                    break
            # 2. A provider session (a chat) keeps its conversation, but only
            # the same customer's: a widget that reuses a session id for the
            # next visitor must not file one customer's words (or send an
            # agent's reply) into another customer's conversation.
            if chosen is None and event.session:
                key = (event.channel.value, f"session:{event.session}")
                if key in batch_refs:
                    chosen = batch_refs[key]
                elif (event.channel.value, event.session) in by_session:
                    chosen = state_for(by_session[(event.channel.value, event.session)])
                if chosen is not None and chosen.customer_id != p.customer_id:
                    p.defects.append(
                        f"session {event.session!r} is another customer's conversation; not continued there"
                    )
                    chosen = None
            # 3. The customer's open conversation continues, whatever the channel.
            # Non-personal senders have a customer of their own each, so the
            # same rule only ever continues that one sender's conversation.
            if chosen is None:
                candidate = latest_open.get(p.customer_id)
                if (
                    candidate is not None
                    and candidate.status != ConversationStatus.CLOSED
                    and candidate.opened_at - window <= event.occurred_at <= candidate.last_activity_at + window
                ):
                    chosen = candidate
            # 4. Auto-replies and bounces never open a conversation.
            if chosen is None and not event.opens_conversation:
                latest = self.conn.scalar(
                    select(Conversation.id)
                    .where(Conversation.customer_id == p.customer_id)
                    .order_by(Conversation.last_activity_at.desc())
                    .limit(1)
                )
                chosen = state_for(latest) if latest is not None else None
                p.conversation = chosen
                if chosen is not None:
                    self._touch(chosen, event)
                continue
            if chosen is None:
                chosen = _ConversationState(
                    id=None,
                    customer_id=p.customer_id,
                    status=ConversationStatus.OPEN,
                    opened_at=event.occurred_at,
                    last_activity_at=event.occurred_at,
                    subject=_conversation_subject(event),
                    is_new=True,
                )
            self._touch(chosen, event)
            p.conversation = chosen
            if chosen.customer_id == p.customer_id:
                current = latest_open.get(p.customer_id)
                if current is None or current.last_activity_at <= chosen.last_activity_at:
                    latest_open[p.customer_id] = chosen
            batch_refs[(event.channel.value, event.external_id)] = chosen
            if event.session:
                batch_refs[(event.channel.value, f"session:{event.session}")] = chosen

        new = [c for c in {id(p.conversation): p.conversation for p in fresh if p.conversation}.values() if c.is_new]
        if new:
            ids = insert_returning_ids(
                self.conn,
                CONVERSATION,
                [
                    {
                        "customer_id": c.customer_id,
                        "status": c.status,
                        "subject": c.subject,
                        "opened_at": c.opened_at,
                        "last_activity_at": c.last_activity_at,
                    }
                    for c in new
                ],
            )
            for c, conversation_id in zip(new, ids, strict=True):
                c.id = conversation_id
                c.changed = False
        # Every existing conversation an event chose passed through state_for()
        # or the open-conversation lookup, so it is in ``conversations``.
        changed = [c for c in conversations.values() if c.changed and not c.is_new]
        if changed:
            self.conn.execute(
                update(CONVERSATION).where(CONVERSATION.c.id == bindparam("row_id")),
                [
                    {
                        "row_id": c.id,
                        "status": c.status,
                        "last_activity_at": c.last_activity_at,
                        "closed_at": None if c.status != ConversationStatus.CLOSED else self.now,
                    }
                    for c in changed
                ],
            )

    def _touch(self, conversation: _ConversationState, event: ChannelEvent) -> None:
        if event.occurred_at > conversation.last_activity_at:
            conversation.last_activity_at = event.occurred_at
            conversation.changed = True
        if event.occurred_at < conversation.opened_at and conversation.is_new:
            conversation.opened_at = event.occurred_at
        # A customer writing into a closed conversation reopens it; an
        # auto-reply does not.
        if (
            event.direction is Direction.INBOUND
            and event.opens_conversation
            and conversation.status == ConversationStatus.CLOSED
        ):
            conversation.status = ConversationStatus.OPEN
            conversation.changed = True

    def _referenced_conversations(self, fresh: list[_Pending]) -> dict[tuple[str, str], int]:
        keys = sorted({(p.event.channel.value, ref) for p in fresh for ref in p.event.thread_refs})
        found: dict[tuple[str, str], int] = {}
        for chunk in _chunks(keys):
            rows = self.conn.execute(
                select(Interaction.channel, Interaction.external_id, Interaction.conversation_id).where(
                    pairs_in(Interaction.channel, Interaction.external_id, chunk),
                    Interaction.conversation_id.is_not(None),
                )
            )
            for channel, external_id, conversation_id in rows:
                if conversation_id is not None:
                    found[(channel, external_id)] = conversation_id
        return found

    def _conversations_by_id(self, conversation_ids: Sequence[int]) -> dict[int, _ConversationState]:
        """The named conversations, by primary key (an index seek on SQLite and PostgreSQL).

        An id with no row is left out, so that state_for() still looks it up
        itself and fails exactly as it always has.
        """
        found: dict[int, _ConversationState] = {}
        for chunk in _chunks(conversation_ids):
            rows = self.conn.execute(select(*_CONVERSATION_STATE).where(Conversation.id.in_(chunk)))
            for row in rows:
                state = _ConversationState(*row)
                assert state.id is not None
                found[state.id] = state
        return found

    def _session_conversations(self, fresh: list[_Pending]) -> dict[tuple[str, str], int]:
        keys = sorted({(p.event.channel.value, p.event.session) for p in fresh if p.event.session})
        found: dict[tuple[str, str], int] = {}
        for chunk in _chunks(keys):
            rows = self.conn.execute(
                select(Interaction.channel, Interaction.session_key, Interaction.conversation_id)
                .where(
                    pairs_in(Interaction.channel, Interaction.session_key, chunk),
                    Interaction.conversation_id.is_not(None),
                )
                .order_by(Interaction.id)
            )
            for channel, session_key, conversation_id in rows:
                if session_key is not None and conversation_id is not None:
                    found[(channel, session_key)] = conversation_id
        return found

    def _open_conversations(self, customer_ids: set[int], active_since: datetime) -> dict[int, _ConversationState]:
        """Each customer's most recent conversation that an event of this batch may continue.

        Only conversations active since the earliest event minus the window
        can be continued, so older ones are never loaded: a long-standing
        customer's history does not make every batch slower.
        """
        latest: dict[int, _ConversationState] = {}
        for chunk in _chunks(sorted(customer_ids)):
            rows = self.conn.execute(
                select(*_CONVERSATION_STATE).where(
                    Conversation.customer_id.in_(chunk),
                    Conversation.status.in_([ConversationStatus.OPEN, ConversationStatus.PENDING]),
                    Conversation.last_activity_at >= active_since,
                )
            )
            for row in rows:
                state = _ConversationState(*row)
                current = latest.get(state.customer_id)
                if current is None or current.last_activity_at < state.last_activity_at:
                    latest[state.customer_id] = state
        return latest

    # -- append ---------------------------------------------------------------

    def _append(self, fresh: list[_Pending]) -> list[int]:
        if not fresh:
            return []
        rows: list[dict[str, Any]] = []
        for p in fresh:
            event = p.event
            html: str
            try:
                html = sanitise_html(event.html)
            except UnsanitisableHtml as exc:
                html = ""
                p.defects.append(f"HTML dropped: {exc}")
            text = event.text or html_to_text(html or _tagless(event.html))
            sender = event.sender.address if event.sender else ""
            recipient = event.recipients[0].address if event.recipients else ""
            status = event.delivery_status.value if event.delivery_status else None
            if status is None and event.kind is InteractionKind.CALL:
                status = str(event.metadata.get("call_status") or CallStatus.RINGING.value)
            rows.append(
                {
                    "customer_id": p.customer_id,
                    "conversation_id": p.conversation.id if p.conversation else None,
                    "identity_id": p.identity_id,
                    "channel": event.channel.value,
                    "direction": event.direction.value,
                    "kind": event.kind.value,
                    "external_id": event.external_id,
                    "occurred_at": event.occurred_at,
                    "received_at": self.now,
                    "subject": event.subject,
                    "text": text,
                    "reply_text": event.reply_text,
                    "html": html,
                    "from_address": sender[:320],
                    "to_address": recipient[:320],
                    "session_key": event.session,
                    "status": status,
                    "provider_metadata": _jsonable(event.metadata),
                    "defects": p.defects,
                    "journal_id": p.journal_id,
                    "author_id": event.author_id,
                }
            )
        ids = insert_returning_ids(self.conn, INTERACTION, rows)
        self._attach([(interaction_id, p.event.attachments) for p, interaction_id in zip(fresh, ids, strict=True)])
        self._index(
            [
                IndexDocument(interaction_id, row["subject"], row["text"])
                for row, interaction_id in zip(rows, ids, strict=True)
            ]
        )
        return ids

    def _attach(self, attachments: list[tuple[int, Sequence[Any]]]) -> None:
        blobs: dict[str, bytes] = {}
        records = []
        for interaction_id, files in attachments:
            for a in files:
                digest = None
                if a.content is not None:
                    digest = hashlib.sha256(a.content).hexdigest()
                    blobs[digest] = a.content
                records.append(
                    {
                        "interaction_id": interaction_id,
                        "filename": (a.filename or "attachment")[:255],
                        "content_type": a.content_type[:255],
                        "size": a.size if a.content is None else len(a.content),
                        "sha256": digest,
                        "url": a.url,
                        "content_id": a.content_id,
                        "inline": a.inline,
                    }
                )
        if blobs:
            _insert_ignoring_conflicts(
                self.session,
                BLOB,
                [{"sha256": d, "content": c} for d, c in blobs.items()],
            )
        if records:
            self.conn.execute(insert(ATTACHMENT), records)

    def _index(self, documents: list[IndexDocument]) -> None:
        if not documents:
            return
        if self.config.search.in_transaction:
            self.config.search.index(self.session, documents)
        else:
            self.conn.execute(
                insert(OUTBOX),
                [{"interaction_id": d.interaction_id, "created_at": self.now} for d in documents],
            )

    # -- updates --------------------------------------------------------------

    def _updates(self, updates: list[tuple[int | None, InteractionUpdate, int]]) -> dict[int, IngestResult]:
        results: dict[int, IngestResult] = {}
        for _, item, _ in updates:
            _check_update(item)
        keys = sorted({(u.channel.value, u.update_id) for _, u, _ in updates})
        applied: set[tuple[str, str]] = set()
        for chunk in _chunks(keys):
            rows = self.session.execute(
                select(AppliedUpdate.channel, AppliedUpdate.update_id).where(
                    pairs_in(AppliedUpdate.channel, AppliedUpdate.update_id, chunk)
                )
            )
            applied.update((channel, update_id) for channel, update_id in rows)
        targets = self._update_targets(updates)
        journal_changes: list[dict[str, Any]] = []
        for index, item, journal_id in updates:
            key = (item.channel.value, item.update_id)
            target = targets.get((item.channel.value, item.external_id))
            if key in applied:
                if index is not None:
                    results[index] = IngestResult(
                        journal_id=journal_id,
                        interaction_id=target.id if target else None,
                        duplicate=True,
                    )
                    journal_changes.append(
                        {
                            "id": journal_id,
                            "status": JournalStatus.DUPLICATE,
                            "interaction_id": target.id if target else None,
                        }
                    )
                continue
            if target is None:
                if index is not None:
                    # The interaction it is about has not arrived yet (a status
                    # callback overtaking its message): kept and retried.
                    results[index] = IngestResult(journal_id=journal_id, deferred=True)
                    journal_changes.append(
                        {
                            "id": journal_id,
                            "status": JournalStatus.DEFERRED,
                            "error": f"no {item.channel.value} interaction {item.external_id!r} yet",
                            "next_attempt_at": self.now + DEFER_DELAY,
                        }
                    )
                continue
            self._apply(target, item)
            applied.add(key)
            self.session.execute(
                insert(AppliedUpdate),
                {"channel": key[0], "update_id": key[1], "interaction_id": target.id, "applied_at": self.now},
            )
            if index is not None:
                results[index] = IngestResult(
                    journal_id=journal_id,
                    interaction_id=target.id,
                    customer_id=target.customer_id,
                    conversation_id=target.conversation_id,
                )
                journal_changes.append(
                    {"id": journal_id, "status": JournalStatus.PROCESSED, "interaction_id": target.id}
                )
        for change in journal_changes:
            self.session.execute(update(JournalEntry).where(JournalEntry.id == change.pop("id")).values(**change))
        return results

    def _update_targets(
        self, updates: list[tuple[int | None, InteractionUpdate, int]]
    ) -> dict[tuple[str, str], Interaction]:
        keys = sorted({(u.channel.value, u.external_id) for _, u, _ in updates})
        found: dict[tuple[str, str], Interaction] = {}
        for chunk in _chunks(keys):
            for interaction in self.session.scalars(
                select(Interaction).where(pairs_in(Interaction.channel, Interaction.external_id, chunk))
            ):
                found[(interaction.channel, interaction.external_id)] = interaction
        return found

    def _apply(self, interaction: Interaction, item: InteractionUpdate) -> None:
        old_document = IndexDocument(interaction.id, interaction.subject, interaction.text)
        if item.status and moves_forward(interaction.status, item.status):
            interaction.status = item.status
            if item.error_code or item.error_message:
                interaction.error_code = item.error_code
                interaction.error_message = item.error_message
        elif item.status and status_rank(item.status) >= FINAL_RANK and item.error_code:
            # A late failure report for a message already final: keep the
            # details without moving the status.
            interaction.error_code = interaction.error_code or item.error_code
            interaction.error_message = interaction.error_message or item.error_message
        if item.duration_seconds is not None:
            interaction.duration_seconds = item.duration_seconds
        if item.kind is not None:
            interaction.kind = item.kind
        if item.metadata:
            interaction.provider_metadata = {**interaction.provider_metadata, **_jsonable(item.metadata)}
        text_changed = False
        if item.text_append:
            interaction.text = f"{interaction.text}\n\n{item.text_append}".strip()
            text_changed = True
        if item.new_external_id and item.new_external_id != interaction.external_id:
            interaction.external_id = item.new_external_id
        if item.attachments:
            self._attach([(interaction.id, item.attachments)])
        self.session.flush()
        if text_changed:
            if self.config.search.in_transaction:
                self.config.search.delete(self.session, [old_document])
            self._index([IndexDocument(interaction.id, interaction.subject, interaction.text)])
        self.notifications.append(
            {
                "type": "interaction.updated",
                "interaction_id": interaction.id,
                "customer_id": interaction.customer_id,
                "conversation_id": interaction.conversation_id,
                "status": interaction.status,
            }
        )


def _check_event(event: ChannelEvent) -> None:
    if not isinstance(event.channel, Channel):
        raise InvalidEvent("channel", f"unknown channel {event.channel!r}")
    if not event.external_id or len(event.external_id) > 998:
        raise InvalidEvent("external_id", "must be 1 to 998 characters")
    if event.occurred_at.tzinfo is None:
        raise InvalidEvent("occurred_at", "must include a time zone")


def _check_update(item: InteractionUpdate) -> None:
    if not item.external_id:
        raise InvalidEvent("external_id", "must name the interaction to update")
    if not item.update_id:
        raise InvalidEvent("update_id", "must be given so retries are recognised")


def _conversation_subject(event: ChannelEvent) -> str:
    if event.subject.strip():
        return event.subject.strip()[:500]
    first_line = next((line.strip() for line in event.text.splitlines() if line.strip()), "")
    if first_line:
        return first_line[:80] + ("…" if len(first_line) > 80 else "")
    return f"{event.channel.value.capitalize()} {event.kind.value.replace('_', ' ')}"


def _tagless(html: str) -> str:
    """Text of HTML the sanitiser refused: tags out, so no markup reaches anyone."""
    return re.sub(r"<[^>]*>", " ", html)


def _jsonable(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Provider metadata as stored (the engines' JSON serializer writes unknown types as text)."""
    return dict(metadata)
