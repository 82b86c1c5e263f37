"""Receiving: what webhooks and the event API call, and the group commit behind it.

``receive(database, items, source=...)`` journals the items as *received*
and returns once they are durable, so a 2xx sent afterwards is never ahead
of the journal; concurrent requests share one commit. The journal processor
(``hub.journal``) then runs them through the pipeline (:mod:`hub.ingest.batch`)
in batches, its claim committing with the timeline rows.
"""

from __future__ import annotations

import collections
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hub.db import Database
from hub.events import Ingestible
from hub.inbox import COLUMNS as INBOX_COLUMNS
from hub.ingest.journal import Arrival, journal_row
from hub.ingest.statements import JOURNAL, insert_returning_ids
from hub.logs import request_id
from hub.metrics import instruments
from hub.models import JournalStatus, utcnow


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
    rid = request_id.get()
    if rid is not None:
        # Follows the entry to the batch that processes it (hub.logs).
        context = {**(context or {}), "request_id": rid}
    journal_ids = _group_commit(database).submit([Arrival(item, source, context or {}) for item in items])
    instruments().journal_received.labels(source).inc(len(items))
    return journal_ids


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
                connection, JOURNAL, [journal_row(a, now, JournalStatus.RECEIVED) for a in arrivals]
            )

    return write


class _SqliteJournalWriter:
    """The received-journal insert on SQLite: rows appended to the database's inbox (hub.inbox).

    This is the one statement every webhook and API request waits for, so it
    is built for that. Through SQLAlchemy (session or Core) its fixed
    per-transaction cost was most of a request's budget (measured: 38 % of a
    bare Flask endpoint's rate against 53 % this way, tests/bench/webhook.py),
    so it goes straight through a DB-API connection; the rows are still built
    by ``journal_row`` and bound with the journal columns' own SQLAlchemy type
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
        self._made_for = (0, 0)

    def __call__(self, arrivals: Sequence[Arrival]) -> list[int]:
        now = utcnow()
        rows = [self._bind(journal_row(a, now, JournalStatus.RECEIVED)) for a in arrivals]
        # Its own connection, opened again after a fork or the inbox's close().
        # The group commit's leader is its only user at any time.
        made_for = (os.getpid(), self.inbox.generation)
        if self._connection is None or self._made_for != made_for:
            self._connection, self._made_for = self.inbox.writer(), made_for
        return self.inbox.append(self._connection, rows)

    def _bind(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            processor(row[name]) if processor is not None else row[name]
            for name, processor in zip(INBOX_COLUMNS, self.processors, strict=True)
        )
