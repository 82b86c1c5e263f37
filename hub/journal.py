"""The raw-event journal: what arrived, what became of it, and replay.

Every payload is here, processed or not. Entries that failed (a parser bug, a
database hiccup) or were deferred (a status callback that overtook its
message) are retried with backoff by the worker, or on demand with
``corridor journal replay``. A replay parses the raw payload again with its
source's parser, so a fixed parser repairs what an old one got wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.db import Database
from hub.ingest import IngestResult, process_journaled, retry_delay
from hub.models import JournalEntry, JournalStatus, utcnow
from hub.registry import Registry

log = logging.getLogger(__name__)

RETRYABLE = (JournalStatus.FAILED, JournalStatus.DEFERRED)
#: After this many attempts an entry waits for a person (``journal replay --id``).
MAX_ATTEMPTS = 12


@dataclass(frozen=True)
class ReplayOutcome:
    entry_id: int
    results: list[IngestResult]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not any(r.error or r.deferred for r in self.results)


def due_entries(session: Session, limit: int = 100) -> list[int]:
    return list(
        session.scalars(
            select(JournalEntry.id)
            .where(
                JournalEntry.status.in_(RETRYABLE),
                JournalEntry.attempts < MAX_ATTEMPTS,
                JournalEntry.next_attempt_at <= utcnow(),
            )
            .order_by(JournalEntry.next_attempt_at)
            .limit(limit)
        )
    )


def replay(database: Database, registry: Registry, entry_ids: Sequence[int]) -> list[ReplayOutcome]:
    """Parse and process journal entries again, each in its own transaction."""
    outcomes = []
    for entry_id in entry_ids:
        with database.write() as session:
            entry = session.get(JournalEntry, entry_id)
            if entry is None:
                outcomes.append(ReplayOutcome(entry_id, [], f"no journal entry {entry_id}"))
                continue
            parser = registry.parser_for(entry.source)
            attempts = entry.attempts + 1
            if parser is None:
                error = f"no parser for source {entry.source!r} (is its connector enabled?)"
                _fail(session, entry, attempts, error)
                outcomes.append(ReplayOutcome(entry_id, [], error))
                continue
            try:
                items = list(parser(entry.payload, dict(entry.context)))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                _fail(session, entry, attempts, error)
                outcomes.append(ReplayOutcome(entry_id, [], error))
                continue
            if not items:
                _fail(session, entry, attempts, "the parser found nothing to ingest")
                outcomes.append(ReplayOutcome(entry_id, [], "nothing to ingest"))
                continue
            session.execute(
                update(JournalEntry)
                .where(JournalEntry.id == entry.id)
                .values(status=JournalStatus.PROCESSED, error=None, attempts=attempts, next_attempt_at=None)
            )
            # One payload may hold several items; they share the entry.
            results = process_journaled(session, items, [entry.id] * len(items))
            outcomes.append(ReplayOutcome(entry_id, results))
            log.info("replayed journal #%d: %s", entry_id, results)
    return outcomes


def _fail(session: Session, entry: JournalEntry, attempts: int, error: str) -> None:
    entry.status = JournalStatus.FAILED
    entry.error = error
    entry.attempts = attempts
    entry.next_attempt_at = utcnow() + retry_delay(attempts)
