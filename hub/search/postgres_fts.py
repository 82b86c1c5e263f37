"""PostgreSQL full-text search: the index follows the rows by itself.

A GIN index on ``to_tsvector('simple', subject || ' ' || text)`` (created by the
migrations). The ``simple`` configuration does no stemming: support mail comes
in every language, and a wrong-language stemmer does more harm than none.
Nothing happens at ingest; the expression index is maintained by PostgreSQL in
the same transaction as the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from hub.models import UTCDateTime
from hub.pagination import decode_cursor, encode_cursor
from hub.search import (
    MARK_END,
    MARK_START,
    IndexDocument,
    Progress,
    SearchHit,
    SearchPage,
    SearchQuery,
    query_terms,
)
from hub.search.rows import conditions, listing


def document(table: str = "") -> str:
    """The indexed expression; queries must repeat it exactly to use the index."""
    prefix = f"{table}." if table else ""
    return f"to_tsvector('simple', coalesce({prefix}subject, '') || ' ' || coalesce({prefix}text, ''))"


INDEX_NAME = "ix_interaction_search"
CREATE_INDEX = f"CREATE INDEX IF NOT EXISTS {INDEX_NAME} ON interaction USING gin (({document()}))"


def tsquery_expression(query_text: str) -> str:
    """A tsquery source requiring every term; phrases keep their word order."""
    parts = []
    for term in query_terms(query_text):
        prefix = term.endswith("*")
        words = [w.replace("'", "") for w in term.rstrip("*").split()]
        quoted = " <-> ".join(f"'{w}'" for w in words)
        parts.append(f"{quoted}:*" if prefix else f"({quoted})")
    return " & ".join(parts)


class PostgresFts:
    name = "postgres"
    in_transaction = True

    def index(self, session: Session, documents: Sequence[IndexDocument]) -> None:
        """Nothing to do: the expression index follows the rows."""

    def delete(self, session: Session, documents: Sequence[IndexDocument]) -> None:
        """Nothing to do: the expression index follows the rows."""

    def search(self, session: Session, query: SearchQuery) -> SearchPage:
        if query.addresses and not query.text.strip():
            return listing(session, query, "postgresql")
        params: dict[str, Any] = {
            "q": tsquery_expression(query.text),
            "limit": query.limit + 1,
            "options": f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12",
        }
        filters = conditions(query, params, "postgresql")
        offset = 0
        if query.order == "relevance":
            order = f"ORDER BY ts_rank({document('i')}, q.q) DESC, i.id DESC"
            if query.cursor and query.cursor.isdigit():
                offset = int(query.cursor)
            paging = f" LIMIT :limit OFFSET {offset}"
        else:
            order = "ORDER BY i.occurred_at DESC, i.id DESC"
            if query.cursor:
                moment, row_id = decode_cursor(query.cursor)
                filters.append("(i.occurred_at, i.id) < (:c_at, :c_id)")
                params["c_at"] = moment
                params["c_id"] = row_id
            paging = " LIMIT :limit"
        where = "".join(f" AND {f}" for f in filters)
        sql = (
            "WITH q AS (SELECT to_tsquery('simple', :q) AS q) "
            "SELECT i.id, i.customer_id, i.conversation_id, i.channel, i.direction, "
            "i.occurred_at, i.subject, "
            "ts_headline('simple', i.text, q.q, :options) AS snippet "
            f"FROM interaction AS i, q WHERE {document('i')} @@ q.q{where} "
            f"{order}{paging}"
        )
        rows = session.execute(text(sql).columns(occurred_at=UTCDateTime()), params).all()
        hits = [SearchHit.from_row(row) for row in rows[: query.limit]]
        next_cursor = None
        if len(rows) > query.limit and hits:
            if query.order == "relevance":
                next_cursor = str(offset + query.limit)
            else:
                next_cursor = encode_cursor(hits[-1].occurred_at, hits[-1].interaction_id)
        return SearchPage(hits=hits, next_cursor=next_cursor)

    def rebuild(self, session: Session, progress: Progress | None = None) -> int:
        total = session.execute(text("SELECT count(*) FROM interaction")).scalar_one()
        if progress:
            progress(0, total)
        session.execute(text(f"REINDEX INDEX {INDEX_NAME}"))
        if progress:
            progress(total, total)
        return int(total)

    def health(self, session: Session) -> dict[str, object]:
        present = session.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = :n"), {"n": INDEX_NAME}).first()
        return {
            "backend": self.name,
            "ok": present is not None,
            "problem": None if present else f"index {INDEX_NAME} is missing",
        }
