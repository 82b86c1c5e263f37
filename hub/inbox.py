"""The inbox: where, on SQLite, webhooks and the event API journal what they receive.

SQLite has one write lock per database file. The journal processor holds the
main file's lock while a batch goes onto the timeline (about 12 ms for 100
events), and a webhook whose journal insert waited for it held a web thread
all that time: under load every thread ended up waiting behind it, and the
web process sat idle for 13-15 % of a loaded run. So on SQLite, received
payloads are appended to a second file beside the database, the inbox
(``corridor.inbox.db`` beside ``corridor.db``), whose lock only these
appends, the processor's deletions and id allocations take, each for
microseconds. On PostgreSQL, row locks keep writers apart and received
entries go straight into the journal table.

The inbox is part of the journal, not a cache. An entry stays here from the
moment it is received until the journal processor has copied it, under the
same id, into the journal table, in the transaction that also writes the
timeline rows it made (``hub.journal.process_received``); only after that
commit is it deleted here. A crash in between leaves it in both files, and
the next pass finds it journaled already and only deletes it. Its columns
hold exactly what the journal table would (the journal columns' own bind
processors produced them), so the copy is a plain INSERT.

Ids: the inbox's AUTOINCREMENT sequence numbers every journal entry on
SQLite, including the ones written straight to the journal table (mail
intake, unparseable payloads: :meth:`Inbox.allocate`), so an id is never
given twice, and ``GET /api/journal/<id>`` answers for an entry wherever it
is. Back the two files up together.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The journal columns a received entry is written with, in this order (the
#: rest stay NULL until processing); tests/hub/test_inbox.py keeps them in
#: step with the journal table.
COLUMNS = (
    "source",
    "channel",
    "external_id",
    "received_at",
    "content_type",
    "payload",
    "context",
    "status",
    "attempts",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source VARCHAR(200) NOT NULL,
    channel VARCHAR(16),
    external_id VARCHAR(998),
    received_at DATETIME NOT NULL,
    content_type VARCHAR(255) NOT NULL,
    payload BLOB NOT NULL,
    context JSON NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL
)
"""


def inbox_path(database_path: Path) -> Path:
    """``corridor.inbox.db`` beside ``corridor.db``."""
    return database_path.with_name(f"{database_path.stem}.inbox{database_path.suffix or '.db'}")


class InboxCollision(RuntimeError):
    """An inbox entry's id is taken in the journal by another entry: never overwrite, never drop."""


@dataclass(frozen=True)
class Waiting:
    """A received entry in the inbox, its values as the journal table stores them."""

    id: int
    values: tuple[Any, ...]

    def value(self, column: str) -> Any:
        return self.values[COLUMNS.index(column)]

    @property
    def source(self) -> str:
        return str(self.value("source"))

    @property
    def payload(self) -> bytes:
        return bytes(self.value("payload"))

    @property
    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = json.loads(self.value("context"))
        return context


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (sqlite3's own cannot)."""


class Inbox:
    """The inbox file of one SQLite database; safe to share between threads."""

    #: How long a statement waits for the inbox's write lock (held for microseconds at a time).
    LOCK_TIMEOUT = 30.0
    #: How often the group commit's leader (hub/ingest/receiving.py) tries again for it (see :meth:`writer`).
    RETRY_EVERY = 0.0005

    def __init__(self, path: Path, database_path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.database_path = database_path
        self.synchronous = synchronous
        self._local = threading.local()
        self._insert: dict[int, str] = {}  # by number of rows
        # Every connection still open, so close() can end them; weakly held, so a
        # finished thread's connection is still collected with its storage.
        self._made: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._made_lock = threading.Lock()
        self._generation = 0

    # --- connections ---------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (made again after a fork); creates the inbox on first use."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        made_for = (os.getpid(), self.generation)
        if connection is None or getattr(self._local, "made_for", None) != made_for:
            connection = self._connect()
            self._local.connection, self._local.made_for = connection, made_for
        return connection

    @property
    def generation(self) -> int:
        """How many times :meth:`close` ran; a connection kept elsewhere is made again when it changes."""
        return self._generation

    def close(self) -> None:
        """Close every connection this inbox made (``Database.dispose``); a later use connects again."""
        with self._made_lock:
            made, self._made = list(self._made), weakref.WeakSet()
            self._generation += 1
        for connection in made:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=self.LOCK_TIMEOUT, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self.synchronous}")
        # Processed payloads are deleted here: overwrite them (see hub.erasure).
        connection.execute("PRAGMA secure_delete=ON")
        self._prepare(connection)
        with self._made_lock:
            self._made.add(connection)
        return connection

    def compact(self, *, vacuum: bool = False) -> None:
        """Leave no deleted payload in the inbox's files (an erasure, hub.erasure).

        The WAL still holds every payload as it was appended until a
        checkpoint copies the (zeroed) pages back and truncates it;
        ``vacuum`` also rewrites the file, for pages freed before
        secure_delete was on.
        """
        connection = sqlite3.connect(self.path, timeout=self.LOCK_TIMEOUT, isolation_level=None)
        try:
            connection.execute("PRAGMA secure_delete=ON")
            if vacuum:
                connection.execute("VACUUM")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """Create the table, and make its sequence start past every id the journal table holds.

        Done by every new connection (once per thread and process), so an
        inbox that was lost, or a database restored from a newer backup than
        its inbox, can never hand out an id the journal table already has.
        """
        journal_max = self._journal_max_id()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(_SCHEMA)
            updated = connection.execute(
                "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'received'", (journal_max,)
            ).rowcount
            if not updated:
                connection.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('received', ?)", (journal_max,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _journal_max_id(self) -> int:
        if not self.database_path.exists():
            return 0
        main = sqlite3.connect(self.database_path, timeout=self.LOCK_TIMEOUT)
        try:
            found = main.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal_entry'")
            if found.fetchone() is None:
                return 0
            return int(main.execute("SELECT coalesce(max(id), 0) FROM journal_entry").fetchone()[0])
        finally:
            main.close()

    def writer(self) -> sqlite3.Connection:
        """A connection of its own for the group commit's leader, built for the requests waiting on it.

        * It leaves checkpoints to the processor: a checkpoint copies the WAL
          into the file and syncs it, milliseconds a webhook would wait for
          whenever its commit crossed the mark. The processor's deletions
          commit just as often, on connections that checkpoint.
        * It does not wait in SQLite's busy handler, which sleeps 1, 2, 5 ...
          ms between tries, for a lock held for a fraction of one;
          :meth:`append` tries again every half millisecond (measured: 4 %
          more webhooks per second under load).
        """
        connection = self._connect()
        connection.execute("PRAGMA wal_autocheckpoint=0")
        connection.execute("PRAGMA busy_timeout=0")
        return connection

    # --- writing -------------------------------------------------------------------------------

    def append(self, connection: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> list[int]:
        """Store received entries (values in :data:`COLUMNS` order) and return their ids, in order.

        ``connection`` is the group commit leader's (:meth:`writer`). One
        statement in autocommit mode: the lock, the rows and the commit in one
        ``sqlite3_step``, one release of the GIL (a webhook server's threads
        switch at each, and the switches, not SQLite, were most of what a
        journal write cost). AUTOINCREMENT numbers one statement's
        rows consecutively after the sequence.
        """
        statement = self._insert.get(len(rows))
        if statement is None:
            marks = "(" + ", ".join("?" * len(COLUMNS)) + ")"
            statement = f"INSERT INTO received ({', '.join(COLUMNS)}) VALUES " + ", ".join([marks] * len(rows))
            self._insert[len(rows)] = statement
        parameters = [value for row in rows for value in row]
        deadline = time.monotonic() + self.LOCK_TIMEOUT
        while True:
            try:
                cursor = connection.execute(statement, parameters)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(self.RETRY_EVERY)
        last = cursor.lastrowid
        assert last is not None
        return list(range(last - len(rows) + 1, last + 1))

    def allocate(self, count: int) -> list[int]:
        """Ids for journal entries written straight to the journal table, from the inbox's sequence."""
        if count <= 0:
            return []
        [last] = (
            self._connection()
            .execute("UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'received' RETURNING seq", (count,))
            .fetchone()
        )
        return list(range(last - count + 1, last + 1))

    def forget(self, ids: Sequence[int]) -> None:
        """Delete entries the journal table now holds."""
        connection = self._connection()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            connection.execute(f"DELETE FROM received WHERE id IN ({', '.join('?' * len(chunk))})", chunk)

    # --- reading -------------------------------------------------------------------------------

    def oldest(self, limit: int) -> list[Waiting]:
        rows = self._connection().execute(
            f"SELECT id, {', '.join(COLUMNS)} FROM received ORDER BY id LIMIT ?", (limit,)
        )
        return [Waiting(row[0], tuple(row[1:])) for row in rows]

    def newest(self, limit: int) -> list[Waiting]:
        rows = self._connection().execute(
            f"SELECT id, {', '.join(COLUMNS)} FROM received ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [Waiting(row[0], tuple(row[1:])) for row in rows]

    def get(self, entry_id: int) -> Waiting | None:
        row = (
            self._connection()
            .execute(f"SELECT id, {', '.join(COLUMNS)} FROM received WHERE id = ?", (entry_id,))
            .fetchone()
        )
        return Waiting(row[0], tuple(row[1:])) if row is not None else None

    def backlog(self) -> tuple[int, str | None]:
        """How many entries wait, and the oldest one's received_at as stored."""
        count, oldest = self._connection().execute("SELECT count(*), min(received_at) FROM received").fetchone()
        return int(count), oldest
