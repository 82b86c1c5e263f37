"""Facets on the embedded backends, computed by the database over every match.

The engine counts matches per channel, direction, status and agent and per
day, week or month in the same request as the page (``hub.search.query``).
On SQLite FTS5 and PostgreSQL full text the same counts are ``GROUP BY``
queries over the matching interactions: exact, and as fast as the match set
is small. For a word in most of a million interactions they take as long as
reading that many rows (seconds on SQLite), so the search page counts the
newest matches only (:func:`sampled_facets`, ``[search] facet_sample``) and
says so; deployments that must count that much at once run an engine.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
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
    where = " AND ".join(_matched(query, params, dialect) + conditions(query, params, dialect)) or "true"
    counted: dict[str, dict[str, int]] = {}
    for name, column in _columns(dialect, interval).items():
        rows = session.execute(
            text(f"SELECT {column} AS value, count(*) AS n FROM interaction AS i WHERE {where} GROUP BY {column}"),
            params,
        ).all()
        counted[name] = {str(r.value) if r.value is not None else "": int(r.n) for r in rows}
    return sum(counted["channel"].values()), _facets(counted, interval)


@dataclass(frozen=True, slots=True)
class SampledFacets:
    facets: Facets
    #: Matches counted: all of them when ``complete``, else the newest ``counted`` of more.
    counted: int
    complete: bool


def sampled_facets(session: Session, dialect: str, query: SearchQuery, interval: str, sample: int) -> SampledFacets:
    """The facets of the newest ``sample`` matches of ``query``: of every match when there are no more.

    Counting every match reads every matching row: seconds for a word in most
    of a million interactions on SQLite, where the page itself takes
    milliseconds. The newest matches are found as newest-first search finds
    them (on SQLite by the cheaper of its two plans), so the cost is bounded
    by ``sample`` whatever the word; the page marks such counts as a sample
    and offers to count them all.
    """
    query = replace(query, order="newest", cursor=None)
    columns = _columns(dialect, interval)
    selected = ", ".join(f"{column} AS {name}" for name, column in columns.items())
    params: dict[str, Any] = {"limit": sample + 1}
    if dialect == "sqlite" and query.text.strip():
        from hub.search.sqlite_fts import SqliteFts

        ids = SqliteFts().newest_ids(session, query, sample + 1)
        complete = len(ids) <= sample
        # One statement for the rows, probed by id: 1,000-name IN lists cost more to bind than to run.
        params["ids"] = json.dumps(ids[:sample])
        sql = f"SELECT {selected} FROM interaction AS i WHERE i.id IN (SELECT value FROM json_each(:ids))"
        rows = session.execute(text(sql), params).all()
    else:
        where = " AND ".join(_matched(query, params, dialect) + conditions(query, params, dialect)) or "true"
        sql = (
            f"SELECT {selected} FROM interaction AS i WHERE {where} ORDER BY i.occurred_at DESC, i.id DESC LIMIT :limit"
        )
        rows = session.execute(text(sql), params).all()
        complete = len(rows) <= sample
        rows = rows[:sample]
    counters: dict[str, Counter[str]] = {name: Counter() for name in columns}
    for row in rows:
        for name in columns:
            value = getattr(row, name)
            counters[name][str(value) if value is not None else ""] += 1
    return SampledFacets(_facets({n: dict(c) for n, c in counters.items()}, interval), len(rows), complete)


def _matched(query: SearchQuery, params: dict[str, Any], dialect: str) -> list[str]:
    """The words' condition (none for an address-only search), its parameters added to ``params``."""
    if not query.text.strip():
        return []
    match, extra = _MATCHERS[dialect](query)
    params.update(extra)
    return [match]


def _columns(dialect: str, interval: str) -> dict[str, str]:
    return {
        "channel": "i.channel",
        "direction": "i.direction",
        "status": "coalesce(i.status, '')",
        "agent": "i.author_id",
        "histogram": _BUCKETS[dialect][interval],
    }


def _facets(counted: dict[str, dict[str, int]], interval: str) -> Facets:
    return Facets(
        channel=dict(sorted(counted["channel"].items(), key=lambda kv: -kv[1])),
        direction=dict(sorted(counted["direction"].items(), key=lambda kv: -kv[1])),
        status={k or "none": v for k, v in sorted(counted["status"].items(), key=lambda kv: -kv[1])},
        agent={k: v for k, v in sorted(counted["agent"].items(), key=lambda kv: -kv[1]) if k},
        histogram=[
            (datetime.fromisoformat(day).replace(tzinfo=UTC), n) for day, n in sorted(counted["histogram"].items())
        ],
        interval=interval,
    )
