"""Step 1, the journal: what arrived, from where and when, stored before anything else.

The rows of a batch processed in the caller's transaction are written as
*processed* and commit with the timeline rows; those that end otherwise (a
duplicate, a deferred update, a failure) are updated later, so the common
case costs no second statement. When processing fails, the batch's savepoint
is rolled back and the journal row commits alone with its error, to be
replayed: nothing the caller acknowledged is lost. What webhooks and the API
journal as *received* is written by :mod:`hub.ingest.receiving`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from hub.db import INBOX_KEY, failure_text
from hub.events import ChannelEvent, Ingestible
from hub.inbox import Inbox
from hub.ingest.pipeline import BatchState, IngestResult, InvalidEvent
from hub.ingest.statements import JOURNAL, insert_returning_ids
from hub.models import JournalEntry, JournalStatus, utcnow

log = logging.getLogger(__name__)

#: How long a deferred update waits before the worker tries it again.
DEFER_DELAY = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Arrival:
    """One item with who delivered it and what its parser needs to parse it again."""

    item: Ingestible
    source: str
    context: Mapping[str, Any]


def journal_processed(session: Session, arrivals: Sequence[Arrival], now: datetime) -> list[int]:
    """Journal a batch about to be processed in the caller's transaction; the ids, in order."""
    # Optimistic: the rows that end otherwise are updated later, so the
    # common case costs no second statement.
    return insert_journal_rows(session, [journal_row(arrival, now, JournalStatus.PROCESSED) for arrival in arrivals])


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
    [entry_id] = insert_journal_rows(session, [row])
    log.warning("unparseable payload from %s journaled as #%d: %s", source, entry_id, error)
    return entry_id


def insert_journal_rows(session: Session, rows: list[dict[str, Any]]) -> list[int]:
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


def journal_row(arrival: Arrival, now: datetime, status: JournalStatus) -> dict[str, Any]:
    """The journal row of one arrival, in ``status``."""
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


def record_duplicates(state: BatchState, results: Iterable[IngestResult]) -> None:
    """Mark the journal rows of events already on the timeline as duplicates, in one statement."""
    duplicates = [
        {"row_id": r.journal_id, "interaction_id": r.interaction_id, "status": JournalStatus.DUPLICATE}
        for r in results
        if r.duplicate
    ]
    if duplicates:
        state.conn.execute(
            update(JOURNAL).where(JOURNAL.c.id == bindparam("row_id")),
            duplicates,
        )


def record_failure(session: Session, journal_id: int, exc: Exception) -> IngestResult:
    """Keep a failed item's journal row with its error, due for a replay with backoff.

    The error is stored as admins and agents may read it: a database error
    without its SQL and bound values, which hold customers' data.
    """
    error = failure_text(exc)
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
