"""Forgetting a person (GDPR erasure) and forgetting old data (retention).

:func:`erase_customer` removes everything Corridor holds about one person: the
customer and every customer merged into them (a merge says they are one
person), their identities, conversations, interactions, attachments (bytes
other customers' attachments share stay), the journal entries that carried
their messages, merge records, search documents in every backend, agents'
saved searches for them (by customer, or naming an address of theirs),
outgoing webhook deliveries about them, and the personal details of audit
records about them. Webhook subscribers are sent ``customer.erased`` (ids
and counts) so that they can forget the person too. It leaves one audit record
that says an erasure happened, by whom, and how much it removed: counts and
ids, nothing personal.

Deleted rows must not survive in the files either. On SQLite every
connection runs with ``PRAGMA secure_delete=ON`` (hub.db), so deleted content
and freed pages are overwritten with zeros; :func:`compact` then merges the
full-text index (FTS5 keeps deleted tokens in old segments until a merge),
and checkpoints the write-ahead log so no earlier page image remains in it.
``corridor customer erase`` also VACUUMs both files, which rewrites them and
so covers pages freed before secure_delete was on. On PostgreSQL the rows
are deleted and the index entries go with them; their space is reclaimed by
VACUUM (autovacuum, or ``VACUUM FULL`` to rewrite the tables at once).

An external search engine is told through the outbox: a row whose
interaction no longer exists is a deletion for the indexer to apply.

:func:`apply_retention` deletes journal payloads and interactions older than
the ``[retention]`` settings, in batches; the worker runs it on a schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus

import phonenumbers
from sqlalchemy import delete, or_, select, text, update
from sqlalchemy.orm import Session

from hub.customers import NotFound, audit, resolve
from hub.db import Database, affected
from hub.events import IdentityKind
from hub.identity import InvalidAddress, normalise_email, normalise_phone
from hub.live import AGENTS, publish
from hub.models import (
    AppliedUpdate,
    AttachmentBlob,
    AttachmentRecord,
    AuditRecord,
    Conversation,
    ConversationClosure,
    ConversationFacts,
    CsatSurvey,
    Customer,
    CustomerContact,
    CustomerMerge,
    Identity,
    Interaction,
    JournalEntry,
    JournalStatus,
    OutboundDelivery,
    OutboxEntry,
    SavedSearch,
    WebhookDelivery,
    utcnow,
)
from hub.search import IndexDocument, InvalidQuery, SearchBackend
from hub.search.query import parse_terms

log = logging.getLogger(__name__)

#: Ids per statement: well below SQLite's bound-parameter limit.
CHUNK = 500


@dataclass
class Erasure:
    """What an erasure removed, in counts (this is what the audit record keeps)."""

    customer_ids: list[int] = field(default_factory=list)
    interactions: int = 0
    identities: int = 0
    conversations: int = 0
    attachments: int = 0
    attachment_blobs: int = 0
    journal_entries: int = 0
    merges: int = 0
    audit_records_scrubbed: int = 0
    saved_searches: int = 0
    webhook_deliveries: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "customers": len(self.customer_ids),
            "interactions": self.interactions,
            "identities": self.identities,
            "conversations": self.conversations,
            "attachments": self.attachments,
            "attachment_blobs": self.attachment_blobs,
            "journal_entries": self.journal_entries,
            "merges": self.merges,
            "audit_records_scrubbed": self.audit_records_scrubbed,
            "saved_searches": self.saved_searches,
            "webhook_deliveries": self.webhook_deliveries,
        }


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def _person(session: Session, customer_id: int) -> list[int]:
    """The customer behind ``customer_id`` and every customer merged into them, at any depth."""
    live = resolve(session, customer_id)
    found, frontier = [live.id], [live.id]
    while frontier:
        frontier = list(session.scalars(select(Customer.id).where(Customer.merged_into_id.in_(frontier))))
        found.extend(i for i in frontier if i not in found)
    return found


def erase_customer(session: Session, customer_id: int, *, search: SearchBackend, actor_id: int | None) -> Erasure:
    """Remove one person from Corridor (see the module docstring); raises NotFound for an unknown id."""
    if session.get(Customer, customer_id) is None:
        raise NotFound(f"no customer {customer_id}")
    customer_ids = _person(session, customer_id)
    erased = Erasure(customer_ids=customer_ids)
    identities = list(session.scalars(select(Identity).where(Identity.customer_id.in_(customer_ids))))
    interaction_ids = list(
        session.scalars(
            select(Interaction.id).where(Interaction.customer_id.in_(customer_ids)).order_by(Interaction.id)
        )
    )
    erased.journal_entries = _erase_journal(session, interaction_ids, identities)
    erased.interactions, erased.attachments, erased.attachment_blobs = _erase_interactions(
        session, interaction_ids, search
    )
    identity_ids = [i.id for i in identities]
    for chunk in _chunks(identity_ids):
        # Another customer's interaction may name this identity (after an undone merge).
        session.execute(update(Interaction).where(Interaction.identity_id.in_(chunk)).values(identity_id=None))
    erased.identities = affected(session.execute(delete(Identity).where(Identity.customer_id.in_(customer_ids))))
    conversation_ids = list(session.scalars(select(Conversation.id).where(Conversation.customer_id.in_(customer_ids))))
    erased.webhook_deliveries = _erase_webhook_deliveries(session, customer_ids, conversation_ids, identities)
    for chunk in _chunks(conversation_ids):
        # A colleague's message threaded into the person's conversation is the colleague's: it stays.
        session.execute(update(Interaction).where(Interaction.conversation_id.in_(chunk)).values(conversation_id=None))
        _erase_conversation_rollups(session, chunk)
        erased.conversations += affected(session.execute(delete(Conversation).where(Conversation.id.in_(chunk))))
    erased.merges = affected(
        session.execute(
            delete(CustomerMerge).where(
                or_(CustomerMerge.source_id.in_(customer_ids), CustomerMerge.target_id.in_(customer_ids))
            )
        )
    )
    # Audit records about the person keep who did what and when, not the addresses they name.
    erased.audit_records_scrubbed = affected(
        session.execute(
            update(AuditRecord)
            .where(AuditRecord.target_type == "customer", AuditRecord.target_id.in_(customer_ids))
            .values(details={"erased": True})
        )
    )
    erased.saved_searches = _erase_saved_searches(session, customer_ids, identities)
    session.execute(update(Customer).where(Customer.id.in_(customer_ids)).values(merged_into_id=None))
    session.execute(delete(Customer).where(Customer.id.in_(customer_ids)))
    session.flush()
    audit(session, actor_id, "customer.erase", "customer", customer_ids[0], **erased.counts())
    # Integrations that copied the person elsewhere learn to forget them too: ids and counts, nothing personal.
    publish(session, AGENTS, "customer.erased",
            {"customer_id": customer_ids[0], "customer_ids": customer_ids, "erased": erased.counts()})  # fmt: skip
    log.info("erased customer %d: %s", customer_ids[0], erased.counts())
    return erased


def _needles(identities: Sequence[Identity]) -> set[bytes]:
    """How the person's addresses appear in raw payloads: as written, normalised, form-encoded."""
    found: set[bytes] = set()
    for identity in identities:
        for value in {identity.value, identity.raw_value}:
            value = value.strip()
            if len(value) < 5:  # too short to name anyone; would match unrelated payloads
                continue
            for form in {value, quote(value, safe=""), quote_plus(value), value.lstrip("+")}:
                if len(form) >= 5:
                    found.add(form.encode())
    return found


def _erase_webhook_deliveries(
    session: Session, customer_ids: Sequence[int], conversation_ids: Sequence[int], identities: Sequence[Identity]
) -> int:
    """Outgoing webhook bodies about the person, sent or waiting: they hold the texts and addresses.

    Deliveries are ordered by conversation or by customer, so the key finds
    nearly all of them; a body that names an address of theirs under another
    key (a merge event) is found by reading the bodies, a full scan, but
    erasure is rare. What is waiting is never sent: the person is gone.
    """
    keys = [f"customer:{i}" for i in customer_ids] + [f"conversation:{i}" for i in conversation_ids]
    doomed: set[int] = set()
    for start in range(0, len(keys), CHUNK):
        doomed.update(
            session.scalars(
                select(WebhookDelivery.id).where(WebhookDelivery.ordering_key.in_(keys[start : start + CHUNK]))
            )
        )
    for needle in {needle.decode() for needle in _needles(identities)}:
        # autoescape: a %-encoded needle must not be a LIKE pattern matching other people's deliveries.
        matching = WebhookDelivery.body.contains(needle, autoescape=True)
        doomed.update(session.scalars(select(WebhookDelivery.id).where(matching)))
    ordered = sorted(doomed)
    for chunk in _chunks(ordered):
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(chunk)))
    return len(ordered)


def _typed_addresses(arguments: str, regions: set[str]) -> set[str]:
    """The whole numbers and addresses a saved search's words name, normalised as the search reads them.

    An agent types "030 2312 5042" or "Maria.Keller@Example.COM"; the stored
    forms of the person's addresses are not in that text, but the search
    finds the person with it. A number is read in the regions of the
    person's own numbers, so no other number can be taken for theirs.
    """
    found: set[str] = set()
    for typed in parse_qs(arguments).get("q", []):
        try:
            terms = parse_terms(typed)
        except InvalidQuery:
            continue
        for term in terms:
            try:
                if term.kind == "phone":
                    found.update(normalise_phone(term.value, region) for region in regions)
                elif term.kind == "address":
                    found.add(normalise_email(term.value))
            except InvalidAddress:
                continue
    return found


def _erase_saved_searches(session: Session, customer_ids: Sequence[int], identities: Sequence[Identity]) -> int:
    """Agents' saved searches for the person: by their customer id, or naming one of their addresses in any form."""
    needles = {needle.decode() for needle in _needles(identities)}
    addresses = {i.value for i in identities if i.kind in (IdentityKind.PHONE, IdentityKind.EMAIL)}
    regions = {
        region
        for i in identities
        if i.kind == IdentityKind.PHONE and (region := phonenumbers.region_code_for_number(phonenumbers.parse(i.value)))
    }
    doomed = [
        saved.id
        for saved in session.scalars(select(SavedSearch))  # a few per agent: read them all
        if any(f"customer={customer_id}" in saved.arguments.split("&") for customer_id in customer_ids)
        or any(needle.lower() in saved.arguments.lower() for needle in needles)
        or addresses & _typed_addresses(saved.arguments, regions)
    ]
    if doomed:
        session.execute(delete(SavedSearch).where(SavedSearch.id.in_(doomed)))
    return len(doomed)


def _erase_journal(session: Session, interaction_ids: Sequence[int], identities: Sequence[Identity]) -> int:
    """Journal entries that carried the person's data: theirs by id, and any whose payload names them."""
    entry_ids: set[int] = set()
    for chunk in _chunks(interaction_ids):
        entry_ids.update(session.scalars(select(JournalEntry.id).where(JournalEntry.interaction_id.in_(chunk))))
        pairs = session.execute(select(Interaction.channel, Interaction.external_id).where(Interaction.id.in_(chunk)))
        for channel, external_id in pairs:
            entry_ids.update(
                session.scalars(
                    select(JournalEntry.id).where(
                        JournalEntry.channel == channel, JournalEntry.external_id == external_id
                    )
                )
            )
        entry_ids.update(
            session.scalars(
                select(JournalEntry.id)
                .join(Interaction, Interaction.journal_id == JournalEntry.id)
                .where(Interaction.id.in_(chunk))
            )
        )
    # Payloads that never became one of their interactions (failed, deferred,
    # a duplicate) still name them; a full scan, but erasure is rare.
    contains = (
        "instr(payload, :needle) > 0"
        if session.get_bind().dialect.name == "sqlite"
        else ("position(CAST(:needle AS bytea) IN payload) > 0")
    )
    for needle in _needles(identities):
        entry_ids.update(session.scalars(text(f"SELECT id FROM journal_entry WHERE {contains}"), {"needle": needle}))
    ordered = sorted(entry_ids)
    for chunk in _chunks(ordered):
        session.execute(update(Interaction).where(Interaction.journal_id.in_(chunk)).values(journal_id=None))
        session.execute(delete(JournalEntry).where(JournalEntry.id.in_(chunk)))
    return len(ordered)


def _erase_interactions(
    session: Session, interaction_ids: Sequence[int], search: SearchBackend
) -> tuple[int, int, int]:
    """Delete interactions with their attachments, deliveries, updates and search documents."""
    interactions = attachments = blobs = 0
    for chunk in _chunks(interaction_ids):
        documents = [
            IndexDocument(row.id, row.subject, row.text)
            for row in session.execute(
                select(Interaction.id, Interaction.subject, Interaction.text).where(Interaction.id.in_(chunk))
            )
        ]
        if search.in_transaction:
            search.delete(session, documents)
            session.execute(delete(OutboxEntry).where(OutboxEntry.interaction_id.in_(chunk)))
        else:
            # The indexer finds no interaction for these ids and deletes their documents.
            session.add_all(OutboxEntry(interaction_id=i) for i in chunk)
        hashes = set(
            session.scalars(
                select(AttachmentRecord.sha256).where(
                    AttachmentRecord.interaction_id.in_(chunk), AttachmentRecord.sha256.is_not(None)
                )
            )
        )
        attachments += affected(
            session.execute(delete(AttachmentRecord).where(AttachmentRecord.interaction_id.in_(chunk)))
        )
        if hashes:
            shared = set(session.scalars(select(AttachmentRecord.sha256).where(AttachmentRecord.sha256.in_(hashes))))
            unshared = sorted(h for h in hashes if h not in shared and h is not None)
            if unshared:
                blobs += affected(session.execute(delete(AttachmentBlob).where(AttachmentBlob.sha256.in_(unshared))))
        session.execute(delete(AppliedUpdate).where(AppliedUpdate.interaction_id.in_(chunk)))
        session.execute(delete(OutboundDelivery).where(OutboundDelivery.interaction_id.in_(chunk)))
        # The reports' rollups are derived from these interactions: they go with them.
        session.execute(delete(CustomerContact).where(CustomerContact.interaction_id.in_(chunk)))
        session.execute(
            delete(CsatSurvey).where(
                CsatSurvey.survey_interaction_id.in_(chunk) | CsatSurvey.answer_interaction_id.in_(chunk)
            )
        )
        interactions += affected(session.execute(delete(Interaction).where(Interaction.id.in_(chunk))))
    session.flush()
    return interactions, attachments, blobs


def compact(database: Database, *, vacuum: bool = False) -> None:
    """After an erasure has committed: leave nothing of the deleted rows in the database files.

    SQLite: merge the full-text index into one segment (deleted documents'
    tokens live on in older segments until then) and checkpoint the WAL into
    the file, truncating it; the same for the inbox. ``vacuum`` also rewrites
    both files, for pages freed before secure_delete was on; it
    takes the write lock for as long as it runs. PostgreSQL: nothing here.
    """
    if not database.is_sqlite:
        return
    from hub.search.sqlite_fts import FTS_TABLE

    with database.write() as session:
        session.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('optimize')"))
    with database.write_engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        if vacuum:
            raw.execute("VACUUM")
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if database.inbox is not None:
        database.inbox.compact(vacuum=vacuum)


@dataclass(frozen=True, slots=True)
class Retention:
    """What retention deleted in one pass."""

    journal_entries: int
    interactions: int


def apply_retention(
    session: Session,
    *,
    search: SearchBackend,
    journal_days: int,
    interaction_days: int,
    now: datetime | None = None,
    batch: int = 1000,
) -> Retention:
    """Delete processed journal entries and interactions older than the limits (0: keep forever).

    At most ``batch`` of each per call, so one transaction stays short; the
    worker calls again while there is more. Journal entries that were never
    processed (received, failed, deferred) are kept: they are data not yet
    on any timeline, and deleting them would lose it.
    """
    now = now or utcnow()
    journal = interactions = 0
    if journal_days > 0:
        cutoff = now - timedelta(days=journal_days)
        ids = list(
            session.scalars(
                select(JournalEntry.id)
                .where(
                    JournalEntry.received_at < cutoff,
                    JournalEntry.status.in_([JournalStatus.PROCESSED, JournalStatus.DUPLICATE]),
                )
                .order_by(JournalEntry.id)
                .limit(batch)
            )
        )
        for chunk in _chunks(ids):
            session.execute(update(Interaction).where(Interaction.journal_id.in_(chunk)).values(journal_id=None))
            journal += affected(session.execute(delete(JournalEntry).where(JournalEntry.id.in_(chunk))))
    if interaction_days > 0:
        cutoff = now - timedelta(days=interaction_days)
        ids = list(
            session.scalars(
                select(Interaction.id).where(Interaction.occurred_at < cutoff).order_by(Interaction.id).limit(batch)
            )
        )
        for chunk in _chunks(ids):
            session.execute(
                update(JournalEntry).where(JournalEntry.interaction_id.in_(chunk)).values(interaction_id=None)
            )
        interactions, _, _ = _erase_interactions(session, ids, search)
        if ids:
            # Conversations left with nothing on them go too.
            empty = select(Conversation.id).where(
                ~select(Interaction.id).where(Interaction.conversation_id == Conversation.id).exists()
            )
            _erase_conversation_rollups(session, empty)
            session.execute(delete(Conversation).where(Conversation.id.in_(empty)))
    session.flush()
    if journal or interactions:
        log.info("retention: deleted %d journal entries and %d interactions", journal, interactions)
    return Retention(journal, interactions)


def _erase_conversation_rollups(session: Session, conversation_ids: Any) -> None:
    """The reports' rows about these conversations (facts, closes, surveys): derived data goes with its source."""
    for table in (ConversationFacts, ConversationClosure, CsatSurvey):
        session.execute(delete(table).where(table.conversation_id.in_(conversation_ids)))
