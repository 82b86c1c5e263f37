"""Outbox rows for changes to interactions made outside the ingest pipeline's own inserts.

The pipeline writes an outbox row for every interaction it appends. Other
changes alter a document too: a merge or unmerge moves interactions to
another customer, unlinking an identity takes its address off them, a
delivery status or a call outcome changes their status. Each writes an
outbox row **in the same transaction** as the change, so the index cannot
miss it:

* services that change interactions with bulk statements (``hub.customers``)
  call :func:`queue` with the ids they changed;
* a change made through the ORM (``session.flush()`` of a modified
  :class:`~hub.models.Interaction`: the pipeline's updates, agents' edits)
  is caught by a mapper event and queued in the flush, whoever made it.

Nothing is written when the search backend is an embedded one: those are
updated in the transaction itself, and an outbox nobody drains only grows.

The row must come after the change within its transaction (both the event
and :func:`queue` run after the UPDATE): its id is the version the document
is indexed with, and a transaction that waited for another's lock on the same
interaction then gets the higher id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Connection, Table, event, insert, inspect
from sqlalchemy.orm import Mapper, Session, object_session

from hub.ingest import PIPELINE_KEY, PipelineConfig
from hub.models import Interaction, OutboxEntry, utcnow

OUTBOX = cast(Table, OutboxEntry.__table__)

#: The interaction's columns a document is built from (hub.search.mapping).
DOCUMENT_COLUMNS = (
    "customer_id", "conversation_id", "identity_id", "channel", "direction", "kind", "status", "author_id",
    "occurred_at", "subject", "text", "from_address", "to_address",
)  # fmt: skip


def feeds_outbox(session: Session) -> bool:
    """Whether this session's search backend is fed from the outbox (an engine)."""
    config: PipelineConfig | None = session.info.get(PIPELINE_KEY)
    return config is not None and not config.search.in_transaction


def queue(session: Session, interaction_ids: Iterable[int]) -> int:
    """Outbox rows for these interactions, in the caller's transaction; returns how many."""
    if not feeds_outbox(session):
        return 0
    now = utcnow()
    rows = [{"interaction_id": i, "created_at": now} for i in sorted(set(interaction_ids))]
    for start in range(0, len(rows), 1000):
        session.execute(insert(OUTBOX), rows[start : start + 1000])
    return len(rows)


def _changed(_mapper: Mapper[Any], connection: Connection, target: Interaction) -> None:
    session = object_session(target)
    if session is None or not feeds_outbox(session):
        return
    state = inspect(target)
    if any(state.attrs[name].history.has_changes() for name in DOCUMENT_COLUMNS):
        connection.execute(insert(OUTBOX), {"interaction_id": target.id, "created_at": utcnow()})


def _deleted(_mapper: Mapper[Any], connection: Connection, target: Interaction) -> None:
    session = object_session(target)
    if session is not None and feeds_outbox(session):
        connection.execute(insert(OUTBOX), {"interaction_id": target.id, "created_at": utcnow()})


def listen() -> None:
    """Queue ORM changes of interactions from now on (idempotent; the engine backend calls it)."""
    if not event.contains(Interaction, "after_update", _changed):
        event.listen(Interaction, "after_update", _changed)
        event.listen(Interaction, "after_delete", _deleted)
