"""What the database backends test on an interaction's row besides the words, written once.

SQLite FTS5 and PostgreSQL full text match words; everything else a search
narrows by is a condition on ``interaction AS i``: channel, direction, time,
customer, kind, status, agent, and the identities that typed phone numbers and
email addresses name (``hub.search.addresses``). The facets and the
address-only listing below use every condition; SQLite's planner takes the
first five from here as well, and answers some of them from the index it walks.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from hub.models import UTCDateTime
from hub.pagination import decode_cursor, encode_cursor
from hub.search import AddressTerm, SearchHit, SearchPage, SearchQuery

#: Characters of an interaction's text shown for a hit that matched no words.
PLAIN_SNIPPET = 160


def bind(params: dict[str, Any], name: str, values: Sequence[Any]) -> str:
    """Placeholders for ``values`` as an IN list, added to ``params`` (portable: no array parameters)."""
    names = []
    for n, value in enumerate(values):
        params[f"{name}{n}"] = value
        names.append(f":{name}{n}")
    return ", ".join(names)


def row_conditions(query: SearchQuery, params: dict[str, Any]) -> list[str]:
    """Kind, status, agent and address conditions of ``query``, as SQL on ``i``."""
    conditions = []
    if query.kinds:
        conditions.append(f"i.kind IN ({bind(params, 'kind', query.kinds)})")
    if query.statuses:
        either = []
        known = [s for s in query.statuses if s != "none"]
        if known:
            either.append(f"i.status IN ({bind(params, 'status', known)})")
        if "none" in query.statuses:
            either.append("i.status IS NULL")
        conditions.append(f"({' OR '.join(either)})")
    if query.agent_ids:
        conditions.append(f"i.author_id IN ({bind(params, 'agent', query.agent_ids)})")
    for n, address in enumerate(query.addresses):
        conditions.append(f"i.identity_id IN ({identities(address, params, f'addr{n}_')})")
    return conditions


def identities(address: AddressTerm, params: dict[str, Any], name: str) -> str:
    """A SELECT of the ids of the identities ``address`` names; its parameters go to ``params``."""
    params[f"{name}kind"] = address.kind
    if address.values:
        named = f"value IN ({bind(params, f'{name}value', address.values)})"
    else:
        params[f"{name}pattern"] = address.pattern
        named = f"value LIKE :{name}pattern ESCAPE '\\'"
    return f"SELECT id FROM identity WHERE kind = :{name}kind AND {named}"


def conditions(query: SearchQuery, params: dict[str, Any], dialect: str) -> list[str]:
    """Every condition of ``query`` but the words, as SQL on ``i``."""
    found = []
    if query.channels:
        found.append(f"i.channel IN ({bind(params, 'channel', query.channels)})")
    if query.direction:
        found.append("i.direction = :direction")
        params["direction"] = query.direction
    for name, moment, test in (("since", query.since, ">="), ("until", query.until, "<")):
        if moment is not None:
            found.append(f"i.occurred_at {test} :{name}")
            params[name] = stored(moment, dialect)
    if query.customer_id is not None:
        found.append("i.customer_id = :customer_id")
        params["customer_id"] = query.customer_id
    return found + row_conditions(query, params)


def stored(value: Any, dialect: str) -> Any:
    """A time as a text statement compares it: SQLite keeps times as text in a fixed form."""
    if dialect == "sqlite":
        from hub.search.sqlite_fts import stored_time

        return stored_time(value)
    return value


def listing(session: Session, query: SearchQuery, dialect: str) -> SearchPage:
    """A search of addresses without words: their interactions, newest first (relevance has nothing to rank).

    The address conditions are answered by the interaction's identity index,
    so this reads one customer's rows at most, whatever the filters.
    """
    params: dict[str, Any] = {"limit": query.limit + 1}
    where = conditions(query, params, dialect)
    if query.cursor and not query.cursor.isdigit():  # a relevance offset has nothing to resume here
        moment, row_id = decode_cursor(query.cursor)
        where.append("(i.occurred_at, i.id) < (:c_at, :c_id)")
        params["c_at"], params["c_id"] = stored(moment, dialect), row_id
    sql = (
        "SELECT i.id, i.customer_id, i.conversation_id, i.channel, i.direction, i.occurred_at, i.subject, "
        f"substr(i.text, 1, {PLAIN_SNIPPET + 1}) AS snippet FROM interaction AS i "
        f"WHERE {' AND '.join(where) or 'true'} ORDER BY i.occurred_at DESC, i.id DESC LIMIT :limit"
    )
    rows = session.execute(text(sql).columns(occurred_at=UTCDateTime()), params).all()
    hits = [_plain(row) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        next_cursor = encode_cursor(hits[-1].occurred_at, hits[-1].interaction_id)
    return SearchPage(hits=hits, next_cursor=next_cursor)


def _plain(row: Any) -> SearchHit:
    """A hit whose snippet is the start of its text, escaped: nothing in it matched a word."""
    start = row.snippet or ""
    if len(start) > PLAIN_SNIPPET:
        start = start[:PLAIN_SNIPPET].rstrip() + "…"
    return SearchHit.from_row(row, snippet=html.escape(start))
