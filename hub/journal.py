"""The raw-event journal: what arrived, what became of it, processing and replay.

Every payload is here, processed or not. Webhooks and the event API journal
what they accept as *received* (``hub.ingest.receive``, a group commit in
``hub/ingest/receiving.py``; on SQLite into the inbox file, ``hub.inbox``)
and answer; a journal processor then takes
received entries in arrival order, a batch per transaction, parses each
again with its source's parser and runs the batch through the pipeline
(``process_received``). It runs as a thread in the web
process or in ``corridor worker`` (``[journal] processor``); on SQLite the
write lock, on PostgreSQL ``FOR UPDATE SKIP LOCKED``, keeps two processors
from taking the same entry, and the claim commits with the timeline rows,
so a crash in between leaves the entry received, to be processed again.

Entries that failed (a parser bug, a database hiccup) or were deferred (a
status callback that overtook its message) are retried with backoff by the
worker, or on demand with ``corridor journal replay``. A replay parses the
raw payload again with its source's parser, so a fixed parser repairs what an
old one got wrong.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.db import Database, failure_text
from hub.events import Ingestible
from hub.inbox import COLUMNS as INBOX_COLUMNS
from hub.inbox import InboxCollision, Waiting
from hub.ingest import CHUNK, IngestResult, on_received, process_journaled, retry_delay
from hub.metrics import instruments
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


def replay(
    database: Database, registry: Registry, entry_ids: Sequence[int], *, due_only: bool = False
) -> list[ReplayOutcome]:
    """Parse and process journal entries again, each in its own transaction.

    ``due_only`` (the workers' retries): an entry is replayed only if it is
    still due when its transaction has it locked, so of several workers that
    found it due one replays it and the others skip it (on PostgreSQL a row
    another worker is replaying is skipped, not waited for).
    """
    outcomes = []
    for entry_id in entry_ids:
        with database.write() as session:
            lock = {"skip_locked": True} if due_only and not database.is_sqlite else None
            entry = session.get(JournalEntry, entry_id, with_for_update=lock, populate_existing=True)
            if due_only and (entry is None or not _still_due(entry)):
                continue
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
                error = failure_text(exc)
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


def _still_due(entry: JournalEntry) -> bool:
    return (
        entry.status in RETRYABLE
        and entry.attempts < MAX_ATTEMPTS
        and entry.next_attempt_at is not None
        and entry.next_attempt_at <= utcnow()
    )


def _fail(session: Session, entry: JournalEntry, attempts: int, error: str) -> None:
    entry.status = JournalStatus.FAILED
    entry.error = error
    entry.attempts = attempts
    entry.next_attempt_at = utcnow() + retry_delay(attempts)


def process_received(database: Database, registry: Registry, *, limit: int = 200) -> int:
    """Process up to ``limit`` received entries, oldest first, in one transaction.

    Returns how many entries it took (0: nothing was waiting). An entry whose
    payload no longer parses (its connector was disabled, a parser bug) is
    marked failed with the reason, for the worker's retries and an admin; the
    others in the batch go on. On SQLite, received entries wait in the inbox
    (hub.inbox): they are copied into the journal table in the transaction
    that processes them, and deleted from the inbox once it has committed.
    """
    inbox = database.inbox
    waiting = inbox.oldest(limit) if inbox is not None else []
    # Read and parse before the write transaction: on SQLite every other
    # writer waits for the lock this batch holds, so it holds it for the
    # pipeline only. Payloads never change once written.
    rows = [(w.id, w.source, w.payload, w.context) for w in waiting]
    if len(rows) < limit:
        with database.read() as session:
            rows += [
                (row.id, row.source, row.payload, row.context)
                for row in session.execute(
                    select(JournalEntry.id, JournalEntry.source, JournalEntry.payload, JournalEntry.context)
                    .where(JournalEntry.status == JournalStatus.RECEIVED, JournalEntry.next_attempt_at.is_(None))
                    .order_by(JournalEntry.id)
                    .limit(limit - len(rows))
                )
            ]
    if not rows:
        return 0
    parsed: dict[int, list[Ingestible] | str] = {
        entry_id: _parse(registry, source, payload, context) for entry_id, source, payload, context in rows
    }
    with database.write() as session:
        if waiting:
            _copy_from_inbox(session, waiting)
        # Still received: another processor may have taken some meanwhile (on
        # PostgreSQL, SKIP LOCKED leaves it the ones it is taking now).
        taken = list(
            session.scalars(
                select(JournalEntry.id)
                .where(JournalEntry.id.in_(list(parsed)), JournalEntry.status == JournalStatus.RECEIVED)
                .order_by(JournalEntry.id)
                .with_for_update(skip_locked=True)
            )
        )
        items: list[Ingestible] = []
        journal_ids: list[int] = []
        processed: list[int] = []
        for entry_id in taken:
            found = parsed[entry_id]
            if isinstance(found, str):
                _fail_received(session, entry_id, found)
                continue
            processed.append(entry_id)
            # One payload may hold several items; they share the entry.
            items.extend(found)
            journal_ids.extend([entry_id] * len(found))
        for start in range(0, len(processed), CHUNK):
            # Optimistic, as for ingest_many's journal rows (hub/ingest/journal.py):
            # the pipeline marks the entries that end otherwise (duplicate,
            # deferred, failed).
            session.execute(
                update(JournalEntry)
                .where(JournalEntry.id.in_(processed[start : start + CHUNK]))
                .values(status=JournalStatus.PROCESSED)
            )
        if items:
            process_journaled(session, items, journal_ids)
    metrics = instruments()
    metrics.journal_processed.inc(len(processed))
    if len(taken) > len(processed):
        metrics.journal_failed.inc(len(taken) - len(processed))
    if taken:
        # One line a batch, naming the requests it served (hub.logs), so an
        # event can be followed from its webhook to the timeline.
        contexts = {entry_id: context for entry_id, _source, _payload, context in rows}
        log.info(
            "processed %d journal entries",
            len(taken),
            extra={
                "journal_ids": taken,
                "request_ids": sorted({str(c["request_id"]) for i in taken if "request_id" in (c := contexts[i])}),
            },
        )
    if inbox is not None and waiting:
        # Committed: the journal table holds them now.
        inbox.forget([w.id for w in waiting])
    return len(rows)


def _copy_from_inbox(session: Session, waiting: Sequence[Waiting]) -> None:
    """Copy inbox entries into the journal table under their ids, still received.

    One already there was copied by a pass that committed and then stopped
    before it could delete it from the inbox (or by another processor just
    now): it is left as it is. One whose id holds a different entry means the
    inbox and the database do not belong together (restored apart): stop
    rather than overwrite or drop anything.
    """
    connection = session.connection()
    marks = ", ".join("?" * len(waiting))
    already = {
        row[0]: (row[1], row[2])
        for row in connection.exec_driver_sql(
            f"SELECT id, source, received_at FROM journal_entry WHERE id IN ({marks})",
            tuple(w.id for w in waiting),
        )
    }
    for w in waiting:
        if w.id in already and already[w.id] != (w.value("source"), w.value("received_at")):
            raise InboxCollision(
                f"inbox entry #{w.id} ({w.source}) has an id the journal gives another entry; "
                "were the database and its inbox restored from different backups?"
            )
    fresh = [(w.id, *w.values) for w in waiting if w.id not in already]
    if fresh:
        columns = ", ".join(("id", *INBOX_COLUMNS))
        connection.exec_driver_sql(
            f"INSERT INTO journal_entry ({columns}) VALUES ({', '.join('?' * (len(INBOX_COLUMNS) + 1))})", fresh
        )


def find_entry(database: Database, entry_id: int) -> JournalEntry | None:
    """A journal entry wherever it is: the journal table, or (received, on SQLite) the inbox."""
    with database.read() as session:
        entry = session.get(JournalEntry, entry_id)
    if entry is None and database.inbox is not None:
        waiting = database.inbox.get(entry_id)
        if waiting is not None:
            return _entry_of(database, waiting)
        # Moved between the two reads: it is in the journal table now.
        with database.read() as session:
            entry = session.get(JournalEntry, entry_id)
    return entry


def received_entries(database: Database, limit: int) -> list[JournalEntry]:
    """Entries still waiting for a processor, newest first (inbox and journal table)."""
    entries: list[JournalEntry] = []
    if database.inbox is not None:
        entries += [_entry_of(database, w) for w in database.inbox.newest(limit)]
    with database.read() as session:
        entries += session.scalars(
            select(JournalEntry)
            .where(JournalEntry.status == JournalStatus.RECEIVED)
            .order_by(JournalEntry.id.desc())
            .limit(limit)
        )
    return sorted(entries, key=lambda entry: entry.id, reverse=True)[:limit]


def failed_count(database: Database) -> int:
    """How many entries failed and wait for a retry or a person."""
    with database.read() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(JournalEntry).where(JournalEntry.status == JournalStatus.FAILED)
            )
            or 0
        )


def received_backlog(database: Database) -> tuple[int, datetime | None]:
    """How many entries wait for a processor, and since when the oldest has."""
    with database.read() as session:
        count, oldest = session.execute(
            select(func.count(), func.min(JournalEntry.received_at)).where(
                JournalEntry.status == JournalStatus.RECEIVED
            )
        ).one()
    if database.inbox is not None:
        waiting, stored = database.inbox.backlog()
        count += waiting
        if stored is not None:
            inbox_oldest = _result_value(database, "received_at", stored)
            oldest = inbox_oldest if oldest is None else min(oldest, inbox_oldest)
    return count, oldest


def _entry_of(database: Database, waiting: Waiting) -> JournalEntry:
    """A detached JournalEntry for an inbox entry, its values read as the journal table's would be."""
    stored = zip(INBOX_COLUMNS, waiting.values, strict=True)
    return JournalEntry(id=waiting.id, **{name: _result_value(database, name, value) for name, value in stored})


def _result_value(database: Database, column: str, stored: Any) -> Any:
    dialect = database.read_engine.dialect
    processor = JournalEntry.__table__.c[column].type.dialect_impl(dialect).result_processor(dialect, None)
    return processor(stored) if processor is not None else stored


def _parse(registry: Registry, source: str, payload: bytes, context: dict[str, Any]) -> list[Ingestible] | str:
    """The items in a journaled payload, or why there are none."""
    parser = registry.parser_for(source)
    if parser is None:
        return f"no parser for source {source!r} (is its connector enabled?)"
    try:
        found = list(parser(payload, dict(context)))
    except Exception as exc:
        return failure_text(exc)
    return found or "the parser found nothing to ingest"


def _fail_received(session: Session, entry_id: int, error: str) -> None:
    log.error("journal #%d could not be processed: %s", entry_id, error)
    session.execute(
        update(JournalEntry)
        .where(JournalEntry.id == entry_id)
        .values(status=JournalStatus.FAILED, error=error[:4000], next_attempt_at=utcnow() + retry_delay(1))
    )


class JournalProcessor:
    """Takes received journal entries through the pipeline until stopped.

    In the web process (``[journal] processor = "web"``) it is woken the
    moment a request commits received entries, and started by the first one,
    so a process that never receives anything (a CLI command) never runs it.
    In ``corridor worker`` it polls every ``poll_interval`` seconds, because
    the entries are committed by another process. Under load it never sleeps:
    whatever arrived while a batch was processed is the next batch, so batches
    grow with the load and the pipeline's per-batch cost is shared.
    """

    def __init__(
        self, database: Database, registry: Registry, *, batch_size: int = 200, poll_interval: float = 0.05
    ) -> None:
        self.database = database
        self.registry = registry
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._detach: Callable[[], None] | None = None

    def attach(self) -> None:
        """Run in this process: start with the first received entry, then wake with each."""
        if self._detach is None:
            self._detach = on_received(self.database, self.wake)

    def detach(self) -> None:
        """Leave received entries to another process (``corridor run`` with its worker)."""
        if self._detach is not None:
            self._detach()
            self._detach = None
        self.stop()

    def wake(self) -> None:
        self._wakeup.set()
        thread = self._thread
        # After a fork (a pre-forking server) the thread is the parent's.
        if thread is None or not thread.is_alive() or self._pid != os.getpid():
            with self._lock:
                if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                    self._stop.clear()
                    self._pid = os.getpid()
                    self._thread = threading.Thread(
                        target=self.run, args=(self._stop,), name="journal processor", daemon=True
                    )
                    self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wakeup.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout)

    def run(self, stop: threading.Event) -> None:
        """Process until ``stop`` is set; errors are logged and retried after a pause."""
        while not stop.is_set():
            # Cleared before draining: an entry committed while this batch
            # runs sets it again, and the next wait returns at once.
            self._wakeup.clear()
            try:
                self.drain(stop)
            except Exception:
                log.exception("journal processing failed; retrying in %s s", max(self.poll_interval, 1.0))
                stop.wait(max(self.poll_interval, 1.0))
                continue
            self._wakeup.wait(self.poll_interval)

    def drain(self, stop: threading.Event | None = None) -> int:
        """Process received entries until none is left; returns how many."""
        done = 0
        while stop is None or not stop.is_set():
            taken = process_received(self.database, self.registry, limit=self.batch_size)
            done += taken
            if taken < self.batch_size:
                break
        return done


def wait_processed(database: Database, entry_id: int, timeout: float) -> JournalEntry | None:
    """The entry once a processor has taken it, or None if it is still received after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        with database.read() as session:
            entry = session.get(JournalEntry, entry_id)
            if entry is not None and entry.status != JournalStatus.RECEIVED:
                return entry
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)
