"""Step 6, index: search documents for what the batch stored, in the same transaction.

An embedded index (SQLite FTS5) is written in the transaction itself, so it
can never drift from the rows. An external one (Elasticsearch) gets an
outbox row per interaction instead, in the same transaction, drained in bulk
by its indexer; outbox rows are written only then, since an outbox nobody
drains would only grow. The backends are in :mod:`hub.search`.
"""

from __future__ import annotations

from sqlalchemy import insert

from hub.ingest.pipeline import BatchState
from hub.ingest.statements import OUTBOX
from hub.search import IndexDocument


def index_documents(state: BatchState, documents: list[IndexDocument]) -> None:
    """Index ``documents``: in the transaction for an embedded index, else through the outbox."""
    if not documents:
        return
    if state.config.search.in_transaction:
        state.config.search.index(state.session, documents)
    else:
        state.conn.execute(
            insert(OUTBOX),
            [{"interaction_id": d.interaction_id, "created_at": state.now} for d in documents],
        )


def reindex(state: BatchState, old: IndexDocument, new: IndexDocument) -> None:
    """An interaction's text changed (a transcript arrived): its document replaces the old one."""
    if state.config.search.in_transaction:
        state.config.search.delete(state.session, [old])
    index_documents(state, [new])
