"""The tables, and the batch-sized statements every step of the write path is made of.

Each step runs Core statements on the session's connection (the ORM's bulk
machinery costs more than the statements themselves on this path) and looks
up a whole batch's keys at once, ``CHUNK`` at a time: a backfill of a
thousand events costs a handful of statements, not thousands.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Table, and_, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.models import (
    AttachmentBlob,
    AttachmentRecord,
    Conversation,
    Customer,
    Identity,
    Interaction,
    JournalEntry,
    OutboxEntry,
)

# The tables, for Core statements on the hot path.
JOURNAL = cast(Table, JournalEntry.__table__)
CUSTOMER = cast(Table, Customer.__table__)
IDENTITY = cast(Table, Identity.__table__)
CONVERSATION = cast(Table, Conversation.__table__)
INTERACTION = cast(Table, Interaction.__table__)
ATTACHMENT = cast(Table, AttachmentRecord.__table__)
BLOB = cast(Table, AttachmentBlob.__table__)
OUTBOX = cast(Table, OutboxEntry.__table__)

#: Rows per IN (...) list: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 400


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """``values`` in slices of at most ``size``, one statement's worth each."""
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


def insert_ignoring_conflicts(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, leaving out those a unique constraint already holds (a concurrent writer's)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    session.connection().execute(module.insert(table).on_conflict_do_nothing(), rows)
