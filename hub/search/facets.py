"""Facets on the embedded backends, computed by the database over every match.

The engine counts matches per channel, direction, status and agent and per
day, week or month in the same request as the page (``hub.search.query``).
On SQLite FTS5 and PostgreSQL full text the same counts are ``GROUP BY``
queries over the matching interactions: exact, and as fast as the match set
is small. For a word in most of a million interactions they take as long as
reading that many rows (seconds on SQLite), which is why deployments that
search that much run an engine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from hub.search import SearchQuery
from hub.search.query import Facets
from hub.search.rows import conditions


def _sqlite_match(query: SearchQuery) -> tuple[str, dict[str, Any]]:
    from hub.search.sqlite_fts import FTS_TABLE, match_expression

    return (f"i.id IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :match)",
            {"match": match_expression(query.text)})  # fmt: skip


def _postgres_match(query: SearchQuery) -> tuple[str, dict[str, Any]]:
    from hub.search.postgres_fts import document, tsquery_expression

    return f"{document('i')} @@ to_tsquery('simple', :q)", {"q": tsquery_expression(query.text)}


_BUCKETS: dict[str, dict[str, str]] = {
    "sqlite": {
        "day": "substr(i.occurred_at, 1, 10)",
        # SQLite's weeks start where ISO weeks do, on Monday, as the engines' do.
        "week": "date(i.occurred_at, '-6 days', 'weekday 1')",
        "month": "substr(i.occurred_at, 1, 7) || '-01'",
    },
    "postgresql": {
        interval: f"to_char(date_trunc('{interval}', timezone('UTC', i.occurred_at)), 'YYYY-MM-DD')"
        for interval in ("day", "week", "month")
    },
}

_MATCHERS: dict[str, Callable[[SearchQuery], tuple[str, dict[str, Any]]]] = {
    "sqlite": _sqlite_match,
    "postgresql": _postgres_match,
}


def database_facets(session: Session, dialect: str, query: SearchQuery, interval: str) -> tuple[int, Facets]:
    """The number of matches of ``query`` and their facets, counted by the database."""
    params: dict[str, Any] = {}
    found = []
    if query.text.strip():  # an address-only search has no words to match
        match, params = _MATCHERS[dialect](query)
        found.append(match)
    where = " AND ".join(found + conditions(query, params, dialect)) or "true"
    bucket = _BUCKETS[dialect][interval]
    columns = {
        "channel": "i.channel",
        "direction": "i.direction",
        "status": "coalesce(i.status, '')",
        "agent": "i.author_id",
        "histogram": bucket,
    }
    counted: dict[str, dict[str, int]] = {}
    for name, column in columns.items():
        rows = session.execute(
            text(f"SELECT {column} AS value, count(*) AS n FROM interaction AS i WHERE {where} GROUP BY {column}"),
            params,
        ).all()
        counted[name] = {str(r.value) if r.value is not None else "": int(r.n) for r in rows}
    total = sum(counted["channel"].values())
    return total, Facets(
        channel=dict(sorted(counted["channel"].items(), key=lambda kv: -kv[1])),
        direction=dict(sorted(counted["direction"].items(), key=lambda kv: -kv[1])),
        status={k or "none": v for k, v in sorted(counted["status"].items(), key=lambda kv: -kv[1])},
        agent={k: v for k, v in sorted(counted["agent"].items(), key=lambda kv: -kv[1]) if k},
        histogram=[
            (datetime.fromisoformat(day).replace(tzinfo=UTC), n) for day, n in sorted(counted["histogram"].items())
        ],
        interval=interval,
    )
