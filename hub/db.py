"""Engines, sessions and the one transaction scope.

Entry points (API views, webhooks, CLI commands, worker loops) own the
transaction: they open ``database.write()``, call services, and the scope
commits once on exit. Services flush but never commit. Work that must only
happen once the data is durable (live notifications, sending a reply) is queued
with :func:`after_commit` and runs after the commit, never after a rollback.

SQLite gets two engines on the same file. Writers start with ``BEGIN
IMMEDIATE`` so that two writers queue on the lock instead of one failing with
"database is locked" when it upgrades a read; readers use a plain ``BEGIN`` and,
thanks to WAL, never wait for a writer.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from hub.inbox import Inbox, inbox_path

log = logging.getLogger(__name__)

AFTER_COMMIT_KEY = "corridor.after_commit"
#: A write session's ``info`` entry for the database's inbox (SQLite only; see hub.inbox).
INBOX_KEY = "corridor.inbox"


def json_dumps(value: Any) -> str:
    """JSON columns: provider metadata may hold values JSON has no type for; store them as text."""
    return json.dumps(value, default=str, ensure_ascii=False)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current transaction has committed."""
    session.info.setdefault(AFTER_COMMIT_KEY, []).append(callback)


def _sqlite_engine(url: str, *, immediate: bool, synchronous: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, json_serializer=json_dumps)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions
        # begin; otherwise SAVEPOINTs and BEGIN IMMEDIATE do not work.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Deleted rows are overwritten with zeros, and so are freed pages: an
        # erased customer (hub.erasure) must not survive in the file's free
        # space. It costs writes only where something is deleted.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The database Corridor runs on: SQLite (embedded) or PostgreSQL."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL", pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        #: Where received entries are journaled on SQLite (hub.inbox); None on PostgreSQL.
        self.inbox: Inbox | None = None
        if self.dialect == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                # Each connection would get a database of its own.
                raise ValueError(f"Corridor keeps a SQLite database in a file, not {url!r}")
            path = Path(parsed.database)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.inbox = Inbox(inbox_path(path), path, synchronous=sqlite_synchronous)
            self.write_engine = _sqlite_engine(url, immediate=True, synchronous=sqlite_synchronous)
            self.read_engine = _sqlite_engine(url, immediate=False, synchronous=sqlite_synchronous)
        else:
            self.write_engine = create_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, json_serializer=json_dumps
            )
            self.read_engine = self.write_engine
        #: Copied into every write session's ``info`` (the ingest pipeline's
        #: configuration lives here, so connectors need only a session).
        self.session_info: dict[str, Any] = {INBOX_KEY: self.inbox} if self.inbox is not None else {}
        self._write_sessions = sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commits on success, rolls back on error."""
        session = self._write_sessions()
        session.info.update(self.session_info)
        try:
            with session.begin():
                yield session
            callbacks = session.info.pop(AFTER_COMMIT_KEY, [])
        finally:
            session.close()
        for callback in callbacks:
            try:
                callback()
            except Exception:
                # The data is committed; a failed notification must not turn a
                # successful request into an error.
                log.exception("after-commit callback %r failed", callback)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only snapshot; anything written is rolled back.

        Closing (not rolling back explicitly) keeps what was loaded readable
        after the block, detached.
        """
        session = self._read_sessions()
        try:
            yield session
        finally:
            session.close()

    def dispose(self) -> None:
        """Close the database's connections, the inbox's too."""
        if self.inbox is not None:
            self.inbox.close()
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()


_SQL_DETAIL = re.compile(r"\s*(\[SQL: |\[parameters: |\(Background on this error at: ).*", re.DOTALL)


def failure_text(exc: BaseException) -> str:
    """An exception as a person may see it: for a database error, without its SQL or parameters.

    SQLAlchemy's message carries the statement and its bound values (a
    customer's text, addresses): stored as a journal error and shown to
    agents, that leaked customer data to whoever could read the journal.
    The log keeps the whole exception.
    """
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        diag = getattr(exc.orig, "diag", None)
        if diag is not None:
            # PostgreSQL quotes values even in its first line ('invalid input
            # syntax for type integer: "<the value>"'): name only the schema.
            where = ".".join(p for p in (diag.table_name, diag.column_name) if p)
            named = ", ".join(p for p in (where, diag.constraint_name and f"constraint {diag.constraint_name}") if p)
            kind = f"{type(exc).__name__}: {type(exc.orig).__name__} (SQLSTATE {diag.sqlstate})"
            return f"{kind}: {named}" if named else kind
        # SQLite's messages name the schema, never values.
        lines = str(exc.orig).strip().splitlines() or [""]
        return f"{type(exc).__name__}: {type(exc.orig).__name__}: {lines[0]}"
    return without_sql(f"{type(exc).__name__}: {exc}")


def without_sql(error: str) -> str:
    """A stored error message with any SQL statement and parameters cut off (errors stored before this rule)."""
    return _SQL_DETAIL.sub("", error)


def affected(result: Result[Any]) -> int:
    """Rows an INSERT, UPDATE or DELETE touched."""
    return int(cast(CursorResult[Any], result).rowcount)
