"""SQLite FTS5: the embedded search index.

An external-content FTS5 table over ``interaction(subject, text)``: the text is
stored once, in ``interaction``, and the index is written in the same
transaction as the interaction, so search never drifts from the timeline.
FTS5's external-content tables need the old values to delete a row; the
pipeline passes them.

Newest first: two plans
-----------------------
FTS5 hands back matches in id order; a search is ordered by time. Two plans
find the same page:

* **Matches first.** FTS5 lists every match; each is joined to its
  interaction and the matches are sorted by ``(occurred_at, id)``. The cost
  grows with the number of matches (~6 µs each, a random row read): right
  for rare terms, seconds for a word in half of a million interactions.
* **Time windows.** Interactions are read newest first through an index — the
  ``(occurred_at, id, channel, direction)`` index, or the customer's timeline
  index when the search is for one customer — a window of rows at a time,
  windows doubling until the page is full. The matches in a window come from
  one FTS5 *range* scan over the window's ids, which reads the doclists
  sequentially. Where a window's ids are far apart (a small customer's
  interactions spread over years) each row is probed instead; a probe re-opens
  the index (~30 µs for a word, milliseconds for a prefix, so prefix terms
  are never probed). The cost grows with the number of interactions newer than
  the page: right for common terms.

The plan is chosen by estimated cost (:class:`Tuning`, in microseconds as
measured on the 1M-interaction bench database). One statement counts the
newest matches up to :data:`COUNT_CAP` (FTS5 doclists only, ~0.1 µs a match);
the count and the id of the oldest match counted give the number of matches
(or a lower bound) and how densely the words occur among recent interactions.
Matches first is estimated at ``matches × match_cost``; time windows at
``need / density`` rows read. The windows plan keeps account of what it
spends; once that passes the matches-first estimate (a word common overall but
rare lately, a filter that discards most rows), it counts the matches exactly
if the count was capped, and then either carries on or hands the rest of the
page to matches first. A search so costs about twice the cheaper plan at
worst, and never reads every row one by one when FTS5 could list the matches.
Both plans apply the same filters and keyset bound and return the same rows
in the same order; ``tests/hub/test_search_plans.py`` holds them to that.

Relevance
---------
bm25 must be computed for every match to rank all of them: 300 ms and more
for a word in a fifth of a million interactions. Relevance therefore ranks the
newest :data:`RELEVANCE_POOL` matches (the first ones newest-first search
returns): all of them when there are fewer, which is the case for the specific
words relevance is useful for, and recent ones for words that are everywhere.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from hub.db import affected
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
from hub.search.rows import listing, row_conditions

FTS_TABLE = "interaction_fts"

CREATE_FTS = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "subject, text, content='interaction', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')"
)

REBUILD_BATCH = 20_000

#: The indexes the time-windows plan walks (see the migrations).
TIME_INDEX = "ix_interaction_occurred_at_id_channel_direction"
CUSTOMER_INDEX = "ix_interaction_customer_id_occurred_at_id"

#: The newest matches are counted up to this many to choose a plan (~2 ms).
COUNT_CAP = 20_000
#: Relevance ranks at most this many matches: the newest.
RELEVANCE_POOL = 1_000

#: Larger than any id gap.
_NO_GAP_LIMIT = 2**62

Key = tuple[str, int]
"""A position in newest-first order: (occurred_at as stored, id)."""


@dataclass(frozen=True, slots=True)
class Tuning:
    """What the plans cost, in microseconds measured on the 1M-interaction bench database.

    Only the ratios matter. Tests shrink the numbers to reach every branch.
    """

    #: A match in the matches-first plan: a random row read, then the sort.
    match_cost: float = 6.0
    #: An interaction in a window: its index entry, read three times.
    walk_cost: float = 0.5
    #: An FTS5 doclist entry inside a window's id range, kept for the membership test.
    entry_cost: float = 0.5
    #: A rowid-constrained MATCH on one row (never used for prefix terms).
    probe_cost: float = 30.0
    count_cap: int = COUNT_CAP
    first_window: int = 64
    relevance_pool: int = RELEVANCE_POOL


@dataclass(frozen=True, slots=True)
class _Estimate:
    #: Matches counted, newest first: all of them unless ``capped``.
    matches: int
    capped: bool
    #: Matches per id among the ids of the matches counted (the newest ones).
    density: float


_SQLITE = sqlite.dialect()
_TIME_TO_TEXT = UTCDateTime().dialect_impl(_SQLITE).bind_processor(_SQLITE)


def stored_time(moment: datetime) -> str:
    """A time exactly as ``UTCDateTime`` stores it on SQLite: text whose order is time order.

    Keys are compared as stored text, so a bound read back from one statement
    goes into the next unchanged.
    """
    assert _TIME_TO_TEXT is not None
    return cast(str, _TIME_TO_TEXT(moment))


def match_expression(query_text: str) -> str:
    """An FTS5 MATCH expression requiring every term; prefix terms keep their *."""
    parts = []
    for term in query_terms(query_text):
        prefix = term.endswith("*")
        body = term.rstrip("*").replace('"', "")
        parts.append(f'"{body}"*' if prefix else f'"{body}"')
    return " AND ".join(parts)


class Plan(enum.StrEnum):
    MATCHES_FIRST = "matches-first"
    TIME_WINDOWS = "time-windows"


class SqliteFts:
    name = "sqlite"
    in_transaction = True

    def __init__(self, tuning: Tuning | None = None) -> None:
        self.tuning = tuning or Tuning()

    def index(self, session: Session, documents: Sequence[IndexDocument]) -> None:
        if documents:
            session.execute(
                text(f"INSERT INTO {FTS_TABLE}(rowid, subject, text) VALUES (:id, :subject, :text)"),
                [{"id": d.interaction_id, "subject": d.subject, "text": d.text} for d in documents],
            )

    def delete(self, session: Session, documents: Sequence[IndexDocument]) -> None:
        if documents:
            session.execute(
                text(
                    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, subject, text) "
                    "VALUES ('delete', :id, :subject, :text)"
                ),
                [{"id": d.interaction_id, "subject": d.subject, "text": d.text} for d in documents],
            )

    def search(self, session: Session, query: SearchQuery, plan: Plan | None = None) -> SearchPage:
        """One page of hits; ``plan`` forces a plan for newest-first (tests compare them)."""
        if query.addresses and not query.text.strip():
            return listing(session, query, "sqlite")
        search = _Search(session, query, self.tuning)
        if query.order == "relevance":
            offset = int(query.cursor) if query.cursor and query.cursor.isdigit() else 0
            ranked = search.by_relevance(offset, query.limit + 1, plan)
            ids = ranked[: query.limit]
            next_cursor = str(offset + query.limit) if len(ranked) > query.limit else None
        else:
            newest = search.newest(query.limit + 1, plan)
            ids = [row_id for _, row_id in newest[: query.limit]]
            next_cursor = None
            if len(newest) > query.limit and ids:
                last_at, last_id = newest[query.limit - 1]
                next_cursor = encode_cursor(datetime.fromisoformat(last_at).replace(tzinfo=UTC), last_id)
        return SearchPage(hits=search.hits(ids), next_cursor=next_cursor)

    def newest_ids(self, session: Session, query: SearchQuery, limit: int) -> list[int]:
        """The ids of the newest ``limit`` matches of ``query``'s words and filters, by the cheaper plan.

        What the search page's facets are counted over when the matches are
        many (``hub.search.facets.sampled_facets``).
        """
        search = _Search(session, replace(query, order="newest", cursor=None), self.tuning)
        return [row_id for _, row_id in search.newest(limit)]

    def rebuild(self, session: Session, progress: Progress | None = None) -> int:
        total = session.execute(text("SELECT count(*) FROM interaction")).scalar_one()
        session.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('delete-all')"))
        done, last_id = 0, 0
        if progress:
            progress(0, total)
        while True:
            batch_last = session.execute(
                text("SELECT max(id) FROM (SELECT id FROM interaction WHERE id > :last ORDER BY id LIMIT :n)"),
                {"last": last_id, "n": REBUILD_BATCH},
            ).scalar_one()
            if batch_last is None:
                break
            count = affected(
                session.execute(
                    text(
                        f"INSERT INTO {FTS_TABLE}(rowid, subject, text) "
                        "SELECT id, subject, text FROM interaction WHERE id > :last AND id <= :upto"
                    ),
                    {"last": last_id, "upto": batch_last},
                )
            )
            done += count
            last_id = batch_last
            if progress:
                progress(done, total)
        return done

    def health(self, session: Session) -> dict[str, object]:
        try:
            session.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('integrity-check', 1)"))
            ok, problem = True, None
        except Exception as exc:  # FTS5 reports corruption as a generic error
            ok, problem = False, str(exc)
        return {"backend": self.name, "ok": ok, "problem": problem}


class _Search:
    """One search: its match expression, filters and bounds, and the plans that answer it."""

    def __init__(self, session: Session, query: SearchQuery, tuning: Tuning) -> None:
        self.session = session
        self.tuning = tuning
        self.match = match_expression(query.text)
        self.prefix = any(term.endswith("*") for term in query_terms(query.text))
        self.params: dict[str, Any] = {"match": self.match}
        # Conditions on ``interaction AS i``. ``index_filters`` are answered by
        # the index the windows walk, without reading rows; ``row_filters``
        # are not, and are tested on matching rows only.
        channel_filter = direction_filter = None
        if query.channels:
            names = []
            for n, channel in enumerate(query.channels):
                self.params[f"ch{n}"] = channel
                names.append(f":ch{n}")
            channel_filter = f"i.channel IN ({', '.join(names)})"
        if query.direction:
            direction_filter = "i.direction = :direction"
            self.params["direction"] = query.direction
        self.index_filters: list[str] = []
        self.row_filters: list[str] = []
        if query.customer_id is not None:
            self.walk_index = CUSTOMER_INDEX
            self.index_filters.append("i.customer_id = :customer_id")
            self.params["customer_id"] = query.customer_id
            self.row_filters += [f for f in (channel_filter, direction_filter) if f]
        else:
            self.walk_index = TIME_INDEX
            self.index_filters += [f for f in (channel_filter, direction_filter) if f]
        # Kind, status, agent and addresses: no walked index holds them.
        self.row_filters += row_conditions(query, self.params)
        self.walk_skips_rows = self.walk_index == TIME_INDEX and bool(channel_filter or direction_filter)
        if query.since:
            self.index_filters.append("i.occurred_at >= :since")
            self.params["since"] = stored_time(query.since)
        #: Whether the rows in scope may be few whatever the words: one customer's, or a date range.
        self.narrowed = query.customer_id is not None or query.since is not None or query.until is not None
        # Newest first reads below ``start``: the keyset cursor, or ``until``
        # (no id is below 0, so "before (until, 0)" is "before until").
        self.start: Key | None = None
        if query.until:
            self.start = (stored_time(query.until), 0)
        if query.order != "relevance" and query.cursor:
            moment, row_id = decode_cursor(query.cursor)
            after = (stored_time(moment), row_id)
            self.start = after if self.start is None else min(self.start, after)
        self._estimate: _Estimate | None = None

    # -- estimates -------------------------------------------------------------------

    def estimate(self) -> _Estimate:
        """The matches (filters aside), counted newest first up to the cap, once per search."""
        if self._estimate is None:
            self._estimate = self._count(self.tuning.count_cap)
        return self._estimate

    def count_all(self) -> _Estimate:
        """The estimate without a cap: every match counted (~0.1 µs each)."""
        if self.estimate().capped:
            self._estimate = self._count(None)
        return self.estimate()

    def _count(self, cap: int | None) -> _Estimate:
        row = self.session.execute(
            text(
                "SELECT count(*) AS matches, min(rowid) AS oldest, "
                "(SELECT coalesce(max(id), 0) FROM interaction) AS newest "
                f"FROM (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :match "
                "ORDER BY rowid DESC LIMIT :cap)"
            ),
            {"match": self.match, "cap": -1 if cap is None else cap},
        ).one()
        density = row.matches / (row.newest - row.oldest + 1) if row.matches else 0.0
        return _Estimate(row.matches, cap is not None and row.matches >= cap, density)

    def choose(self, need: int) -> Plan:
        """The plan expected to be cheaper for the first ``need`` rows newest first."""
        if self.estimate().matches == 0:
            return Plan.MATCHES_FIRST
        budget = self._matches_first_cost()
        if self._windows_cost(need) <= budget:
            return Plan.TIME_WINDOWS
        # Matches are spread thin, but one customer's timeline or a date
        # range may hold few enough rows to read them all.
        if self.narrowed:
            affordable = math.floor(budget / self.tuning.walk_cost)
            if self._rows_in_scope(affordable) <= affordable:
                return Plan.TIME_WINDOWS
        return Plan.MATCHES_FIRST

    def _matches_first_cost(self) -> float:
        return self.estimate().matches * self.tuning.match_cost

    def _windows_cost(self, need: int) -> float:
        density = self.estimate().density
        return need / density * self.tuning.walk_cost + need * self.tuning.entry_cost if density else math.inf

    def _rows_in_scope(self, cap: int) -> int:
        """Rows inside the customer and date filters (before start), counted up to ``cap`` + 1."""
        where, bounds = _where(self.start, None, self.index_filters)
        return self._scalar(
            f"SELECT count(*) FROM (SELECT 1 FROM interaction AS i INDEXED BY {self.walk_index} "
            f"WHERE {where} LIMIT :cap)",
            cap=cap + 1,
            **bounds,
        )

    # -- newest first ----------------------------------------------------------------

    def newest(self, need: int, plan: Plan | None = None) -> list[Key]:
        """Keys of the first ``need`` matching rows, newest first, below ``start``."""
        if plan is None:
            plan = self.choose(need)
            budget: float | None = self._matches_first_cost()
        else:
            budget = None
        if plan is Plan.TIME_WINDOWS:
            return self.by_windows(need, budget)
        return self.matches_first(need, self.start)

    def matches_first(self, need: int, start: Key | None) -> list[Key]:
        where, bounds = _where(start, None, self.index_filters + self.row_filters)
        # CROSS JOIN keeps FTS5 in the outer loop: given the time index,
        # SQLite would otherwise walk every interaction newest first and probe
        # FTS5 for each, which is the slow way for a rare term.
        sql = (
            f"SELECT i.occurred_at, i.id FROM {FTS_TABLE} CROSS JOIN interaction AS i "
            f"WHERE {FTS_TABLE} MATCH :match AND i.id = {FTS_TABLE}.rowid AND {where} "
            "ORDER BY i.occurred_at DESC, i.id DESC LIMIT :need"
        )
        return self._keys(sql, need=need, **bounds)

    def by_windows(self, need: int, budget: float | None) -> list[Key]:
        """The time-windows plan; past ``budget``, matches first may finish the page."""
        density = self.estimate().density
        window = self.tuning.first_window
        if density:
            window = max(window, math.ceil(need / density * 1.25))
        found: list[Key] = []
        start, spent = self.start, 0.0
        while len(found) < need:
            bottom, rows, low, high = self._window(start, window)
            if rows:
                found += self._window_matches(start, bottom, rows, low, high, need - len(found))
                spent += self._window_cost(rows, low, high)
            if bottom is None:
                break  # the window reached the oldest row in scope
            start = bottom
            if budget is not None and spent >= budget and len(found) < need:
                if self.estimate().capped:
                    # The capped count undersold matches first: count them all.
                    self.count_all()
                    budget = self._matches_first_cost()
                if spent >= budget:
                    found += self.matches_first(need - len(found), start)
                    break
            window *= 2
        return found

    def _window(self, start: Key | None, window: int) -> tuple[Key | None, int, int, int]:
        """The next ``window`` rows below ``start``: the oldest one's key (None when fewer
        remain), how many there are, and their lowest and highest id."""
        where, bounds = _where(start, None, self.index_filters)
        walk = (
            f"FROM interaction AS i INDEXED BY {self.walk_index} WHERE {where} ORDER BY i.occurred_at DESC, i.id DESC"
        )
        # The oldest row's key is looked up only when the window is full:
        # a filter that few rows pass makes a short window read the whole
        # index, which should happen once, not twice.
        row = self.session.execute(
            text(
                "SELECT span.n, span.low, span.high, CASE WHEN span.n = :window THEN "
                f"(SELECT json_array(i.occurred_at, i.id) {walk} LIMIT 1 OFFSET :skip) END AS bottom "
                f"FROM (SELECT count(*) AS n, min(id) AS low, max(id) AS high FROM (SELECT i.id {walk} LIMIT :window)) "
                "AS span"
            ),
            {**self.params, **bounds, "window": window, "skip": window - 1},
        ).one()
        bottom: Key | None = None
        if row.bottom is not None:
            bottom_at, bottom_id = json.loads(row.bottom)
            bottom = (bottom_at, bottom_id)
        return bottom, row.n, row.low or 0, row.high or 0

    def _probing(self, rows: int, low: int, high: int) -> bool:
        """Whether probing each row of a window is cheaper than one range scan over its ids."""
        if self.prefix:
            return False  # FTS5 expands a prefix over the whole index on every probe
        entries = self.estimate().density * (high - low + 1)
        return rows * self.tuning.probe_cost < entries * self.tuning.entry_cost

    def _window_cost(self, rows: int, low: int, high: int) -> float:
        # A walk that tests channel or direction reads every index entry in
        # its stretch of time, not only the rows it counts; ids, handed out
        # on arrival, say about how many that is.
        read = max(rows, high - low + 1) if self.walk_skips_rows else rows
        if self._probing(rows, low, high):
            return read * self.tuning.walk_cost + rows * self.tuning.probe_cost
        entries = self.estimate().density * (high - low + 1)
        return read * self.tuning.walk_cost + entries * self.tuning.entry_cost

    def _window_matches(
        self, start: Key | None, bottom: Key | None, rows: int, low: int, high: int, need: int
    ) -> list[Key]:
        """The first ``need`` matching rows in the window [bottom, start), newest first."""
        where, bounds = _where(start, bottom, self.index_filters)
        row_filters = "".join(f" AND {f}" for f in self.row_filters)
        if self._probing(rows, low, high):
            matching = f"EXISTS (SELECT 1 FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :match AND {FTS_TABLE}.rowid = i.id)"
        else:
            # One range scan, run once and kept as a set for the walk to test.
            matching = (
                f"i.id IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :match "
                "AND rowid BETWEEN :low AND :high)"
            )
        # Cheaper tests first: a row read (row filters) costs less than a
        # probe and more than a look-up in the set of matched ids.
        tests = f"{row_filters} AND {matching}" if self._probing(rows, low, high) else f" AND {matching}{row_filters}"
        sql = (
            f"SELECT i.occurred_at, i.id FROM interaction AS i INDEXED BY {self.walk_index} "
            f"WHERE {where}{tests} ORDER BY i.occurred_at DESC, i.id DESC LIMIT :need"
        )
        return self._keys(sql, low=low, high=high, need=need, **bounds)

    # -- relevance -------------------------------------------------------------------

    def by_relevance(self, offset: int, need: int, plan: Plan | None = None) -> list[int]:
        """Ids ranked by bm25, ties newest id first, from ``offset``: the newest pool of matches."""
        pool = self.tuning.relevance_pool
        need = min(need, pool - offset)
        if need <= 0:
            return []
        estimate = self.estimate()
        if plan is None and not estimate.capped and estimate.matches <= pool:
            # Every match is in the pool: rank them in one pass.
            where, _ = _where(None, None, self.index_filters + self.row_filters)
            sql = (
                f"SELECT i.id FROM {FTS_TABLE} CROSS JOIN interaction AS i "
                f"WHERE {FTS_TABLE} MATCH :match AND i.id = {FTS_TABLE}.rowid AND {where} "
                f"ORDER BY {FTS_TABLE}.rank, i.id DESC LIMIT :need OFFSET :offset"
            )
            return list(self.session.execute(text(sql), {**self.params, "need": need, "offset": offset}).scalars())
        members = [row_id for _, row_id in self.newest(pool, plan)]
        if not members:
            return []
        # One scan for all scores: bm25 reads each term's whole doclist once
        # per scan (for its document frequency), so scans must not multiply.
        # Without the unary +, SQLite hands FTS5 the IN list as rowid
        # equality: one scan per id.
        scored = self.session.execute(
            text(
                f"SELECT rowid AS id, rank AS score FROM {FTS_TABLE} "
                f"WHERE {FTS_TABLE} MATCH :match AND rowid BETWEEN :low AND :high "
                "AND +rowid IN (SELECT value FROM json_each(:ids))"
            ),
            {"match": self.match, "low": min(members), "high": max(members), "ids": json.dumps(members)},
        ).all()
        ranked = sorted(scored, key=lambda row: (row.score, -row.id))
        return [row.id for row in ranked[offset : offset + need]]

    # -- the page --------------------------------------------------------------------

    def hits(self, ids: list[int]) -> list[SearchHit]:
        """The page's rows with their snippets, in the order of ``ids``.

        Snippets need FTS5 positioned on each row: rows whose ids are close
        share one range scan (the unary + keeps the id list a filter, not one
        scan per id), and a prefix term is expanded once for the page.
        """
        if not ids:
            return []
        if self.prefix:
            gap = _NO_GAP_LIMIT
        else:
            density = self.estimate().density or 1.0
            gap = math.floor(self.tuning.probe_cost / (self.tuning.entry_cost * density))
        ranges: list[tuple[int, int]] = []
        for row_id in sorted(ids):
            if ranges and row_id - ranges[-1][1] <= gap:
                ranges[-1] = (ranges[-1][0], row_id)
            else:
                ranges.append((row_id, row_id))
        params: dict[str, Any] = {"match": self.match, "ids": json.dumps(ids), "start": MARK_START, "end": MARK_END}
        values = []
        for n, (low, high) in enumerate(ranges):
            params[f"low{n}"], params[f"high{n}"] = low, high
            values.append(f"(:low{n}, :high{n})")
        sql = (
            f"WITH ranges(low, high) AS (VALUES {', '.join(values)}) "
            "SELECT i.id, i.customer_id, i.conversation_id, i.channel, i.direction, i.occurred_at, i.subject, "
            f"snippet({FTS_TABLE}, 1, :start, :end, '…', 16) AS snippet "
            f"FROM ranges CROSS JOIN {FTS_TABLE} CROSS JOIN interaction AS i "
            f"WHERE {FTS_TABLE} MATCH :match AND {FTS_TABLE}.rowid BETWEEN ranges.low AND ranges.high "
            f"AND +{FTS_TABLE}.rowid IN (SELECT value FROM json_each(:ids)) AND i.id = {FTS_TABLE}.rowid"
        )
        rows = {row.id: row for row in self.session.execute(text(sql).columns(occurred_at=UTCDateTime()), params)}
        return [SearchHit.from_row(row) for row in (rows[row_id] for row_id in ids if row_id in rows)]

    # -- helpers ---------------------------------------------------------------------

    def _keys(self, sql: str, **extra: Any) -> list[Key]:
        return [(row[0], row[1]) for row in self.session.execute(text(sql), {**self.params, **extra})]

    def _scalar(self, sql: str, **extra: Any) -> int:
        return int(self.session.execute(text(sql), {**self.params, **extra}).scalar_one())


def _where(start: Key | None, bottom: Key | None, filters: list[str]) -> tuple[str, dict[str, Any]]:
    """``filters`` and the keyset bounds [bottom, start) as SQL on ``i``, with the bounds' parameters."""
    terms = list(filters)
    bounds: dict[str, Any] = {}
    if start is not None:
        terms.append("(i.occurred_at, i.id) < (:start_at, :start_id)")
        bounds["start_at"], bounds["start_id"] = start
    if bottom is not None:
        terms.append("(i.occurred_at, i.id) >= (:bottom_at, :bottom_id)")
        bounds["bottom_at"], bounds["bottom_id"] = bottom
    return " AND ".join(terms) or "true", bounds
