"""SQLite search: whichever plan answers, the pages are the ones a brute force computes.

The SQLite backend answers newest-first search with two plans (matches first,
time windows) and switches between them mid-page; relevance ranks a pool of
the newest matches. Here every plan and every switch point is checked against
an expectation computed in Python from the rows themselves: which rows match
(words, phrases, prefixes, tokenised as FTS5's unicode61 does for ASCII),
which pass the filters, in what order, and how a cursor pages through them.

SQLite only: the plans are the SQLite backend's.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, text

from hub import create_app
from hub.events import Channel, Direction
from hub.ingest import ingest_many
from hub.models import Interaction
from hub.pagination import encode_cursor
from hub.runtime import Runtime
from hub.search import SearchPage, SearchQuery, query_terms
from hub.search.sqlite_fts import Plan, SqliteFts, Tuning, match_expression
from tests.hub.events import at, event

WORDS = ["parcel", "refund", "late", "invoice", "warranty", "warrant", "zephyr", "kettle", "courier", "ok"]
#: Each word's chance to appear in a text: common, medium and rare words.
WEIGHTS = {"parcel": 0.6, "refund": 0.2, "late": 0.3, "invoice": 0.1, "warranty": 0.08, "warrant": 0.03,
           "zephyr": 0.02, "kettle": 0.05, "courier": 0.15, "ok": 0.5}  # fmt: skip
SENDERS = {
    Channel.EMAIL: ["ana.lima@example.com", "ben.novak@example.com", "cy@example.org"],
    Channel.SMS: ["+14155550100", "+14155550101"],
    Channel.WHATSAPP: ["+14155550102", "+14155550100"],
}


@dataclass(frozen=True)
class Row:
    id: int
    occurred_at: datetime
    channel: str
    direction: str
    customer_id: int
    subject: str
    text: str


@dataclass(frozen=True)
class Corpus:
    runtime: Runtime
    rows: list[Row]
    heavy_customer: int
    light_customer: int


def _text(rng: random.Random) -> str:
    words = [w for w in WORDS if rng.random() < WEIGHTS[w]] or ["hello"]
    rng.shuffle(words)
    return " ".join(words) + rng.choice(["", " the parcel is late", " Late parcel."])


@pytest.fixture(scope="module")
def corpus(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    """460 interactions: mostly stored in time order, then mail backfilled with old dates;
    some share one instant; every time has whole seconds (microsecond 0)."""
    root = tmp_path_factory.mktemp("search-plans")
    shutil.copyfile(sqlite_template, root / "corridor.db")
    app = create_app(
        overrides={
            "app": {"instance_dir": str(root / "instance"), "secret_key": "test-secret"},
            "database": {"url": f"sqlite:///{root / 'corridor.db'}"},
        },
        environ={},
    )
    runtime: Runtime = app.extensions["corridor"]
    rng = random.Random(5)
    batches: list[list[Any]] = []
    for n in range(420):
        channel = rng.choice([Channel.EMAIL, Channel.EMAIL, Channel.SMS, Channel.WHATSAPP])
        direction = Direction.OUTBOUND if rng.random() < 0.3 else Direction.INBOUND
        # Whole minutes, and every fifth event at the same instant as the one before.
        hours = (n - (n % 5 == 4)) / 60
        fields = {"subject": _text(rng)} if channel is Channel.EMAIL and rng.random() < 0.5 else {}
        batches.append([event(channel, rng.choice(SENDERS[channel]), hours=hours, direction=direction,
                              text=_text(rng), **fields)])  # fmt: skip
    # A mailbox backfill: old mail, stored last (the highest ids, the oldest times), full of one word.
    for n in range(40):
        batches.append(
            [event(Channel.EMAIL, "dee@example.net", hours=-100 - n, text=f"yesteryear zephyr {_text(rng)}")]
        )
    for batch in batches:
        with runtime.database.write() as session:
            [result] = ingest_many(session, batch, source="test")
            assert result.error is None, result.error
    with runtime.database.read() as session:
        rows = [
            Row(i.id, i.occurred_at.replace(tzinfo=None), i.channel, i.direction, i.customer_id, i.subject, i.text)
            for i in session.scalars(select(Interaction))
        ]
    by_customer: dict[int, int] = {}
    for row in rows:
        by_customer[row.customer_id] = by_customer.get(row.customer_id, 0) + 1
    ranked = sorted(by_customer, key=by_customer.__getitem__)
    yield Corpus(runtime, rows, heavy_customer=ranked[-1], light_customer=ranked[0])
    runtime.database.dispose()


# -- the expectation -----------------------------------------------------------------


def _tokens(value: str) -> list[str]:
    return re.findall(r"\w+", value.lower())


def _matches(row: Row, query_text: str) -> bool:
    columns = [_tokens(row.subject), _tokens(row.text)]
    for term in query_terms(query_text):
        if term.endswith("*"):
            stem = term.rstrip("*").lower()
            found = any(token.startswith(stem) for tokens in columns for token in tokens)
        else:
            phrase = term.lower().split()
            found = any(
                tokens[k : k + len(phrase)] == phrase
                for tokens in columns
                for k in range(len(tokens) - len(phrase) + 1)
            )
        if not found:
            return False
    return True


def _passes(row: Row, query: SearchQuery) -> bool:
    return (
        (not query.channels or row.channel in query.channels)
        and (query.direction is None or row.direction == query.direction)
        and (query.customer_id is None or row.customer_id == query.customer_id)
        and (query.since is None or row.occurred_at >= query.since.replace(tzinfo=None))
        and (query.until is None or row.occurred_at < query.until.replace(tzinfo=None))
    )


def newest_first(corpus: Corpus, query: SearchQuery) -> list[int]:
    chosen = [r for r in corpus.rows if _passes(r, query) and _matches(r, query.text)]
    return [r.id for r in sorted(chosen, key=lambda r: (r.occurred_at, r.id), reverse=True)]


def all_pages(corpus: Corpus, backend: SqliteFts, query: SearchQuery, plan: Plan | None) -> list[list[int]]:
    """Every page, following the cursor to the end (each page in its own read, as requests do)."""
    pages: list[list[int]] = []
    cursor = query.cursor
    while True:
        with corpus.runtime.database.read() as session:
            page: SearchPage = backend.search(session, replace(query, cursor=cursor), plan=plan)
        pages.append([h.interaction_id for h in page.hits])
        assert len(pages) < 200, "the cursor does not advance"
        if page.next_cursor is None:
            return pages
        assert len(page.hits) == query.limit
        cursor = page.next_cursor


def queries(corpus: Corpus) -> list[SearchQuery]:
    texts = ["parcel", "refund", "zephyr", "warr*", "parcel refund", '"late parcel"', "kettle courier", "nomatch"]
    base = [SearchQuery(text=t, limit=7) for t in texts]
    filters = [
        {"channels": ("sms", "whatsapp")},
        {"direction": "outbound"},
        {"customer_id": corpus.heavy_customer},
        {"customer_id": corpus.light_customer},
        {"since": at(-0.5), "until": at(3)},
        {"until": at(-100.5)},
        {"channels": ("email",), "customer_id": corpus.heavy_customer, "since": at(1)},
    ]
    return base + [replace(q, **f) for q in base[:5] for f in filters]


#: Each plan, and the time-windows plan cut into small windows that probe rows, scan ranges, or mix both.
BACKENDS: list[tuple[str, SqliteFts, Plan | None]] = [
    ("auto", SqliteFts(), None),
    ("matches first", SqliteFts(), Plan.MATCHES_FIRST),
    ("windows", SqliteFts(), Plan.TIME_WINDOWS),
    ("small windows, ranges", SqliteFts(Tuning(first_window=1, probe_cost=1e9)), Plan.TIME_WINDOWS),
    ("small windows, probes", SqliteFts(Tuning(first_window=2, probe_cost=0.0)), Plan.TIME_WINDOWS),
    ("auto, tight budget", SqliteFts(Tuning(first_window=3, count_cap=4, walk_cost=5.0)), None),
]


@pytest.mark.parametrize(("label", "backend", "plan"), BACKENDS, ids=[b[0] for b in BACKENDS])
def test_every_plan_pages_through_exactly_the_brute_force_order(
    corpus: Corpus, label: str, backend: SqliteFts, plan: Plan | None
) -> None:
    checked = 0
    for query in queries(corpus):
        expected = newest_first(corpus, query)
        pages = all_pages(corpus, backend, query, plan)
        assert [i for page in pages for i in page] == expected, (label, query)
        assert len(pages) == max(1, -(-len(expected) // query.limit)), (label, query)
        checked += len(expected)
    assert checked > 500  # the queries do find rows, in several pages each


def test_a_cursor_from_one_plan_continues_in_the_other(corpus: Corpus) -> None:
    query = SearchQuery(text="parcel", limit=9)
    expected = newest_first(corpus, query)
    seen: list[int] = []
    cursor = None
    plans = [Plan.MATCHES_FIRST, Plan.TIME_WINDOWS]
    for turn in range(len(expected)):
        with corpus.runtime.database.read() as session:
            page = SqliteFts().search(session, replace(query, cursor=cursor), plan=plans[turn % 2])
        seen += [h.interaction_id for h in page.hits]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected


def test_a_cursor_at_a_shared_instant_keeps_the_rows_after_it(corpus: Corpus) -> None:
    parcels = [r for r in corpus.rows if _matches(r, "parcel")]
    instants: dict[datetime, list[Row]] = {}
    for row in parcels:
        instants.setdefault(row.occurred_at, []).append(row)
    instant, tied = next((moment, rows) for moment, rows in instants.items() if len(rows) > 1)
    top = max(r.id for r in tied)
    query = SearchQuery(text="parcel", limit=6, cursor=encode_cursor(instant.replace(tzinfo=UTC), top))
    expected = [r.id for r in sorted(parcels, key=lambda r: (r.occurred_at, r.id), reverse=True)]
    expected = expected[expected.index(top) + 1 :]
    assert set(expected) & {r.id for r in tied}  # the other row at that instant comes next
    for label, backend, plan in BACKENDS:
        pages = all_pages(corpus, backend, query, plan)
        assert [i for page in pages for i in page] == expected, label


@pytest.mark.parametrize("word", ["yesteryear", "zephyr"])
def test_the_windows_plan_hands_over_to_matches_first_when_recent_rows_lack_the_word(corpus: Corpus, word: str) -> None:
    """Both words fill the newest ids (the backfill); among the newest times, 'yesteryear'
    is absent and 'zephyr' is rare (3 in 248 rows), so the page is finished by matches first."""
    query = SearchQuery(text=word, limit=5)
    statements: list[str] = []

    def log(_c: Any, _cu: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = corpus.runtime.database.read_engine
    sa_event.listen(engine, "before_cursor_execute", log)
    try:
        # The estimate says a window of 8 finds the page. A count capped at 3
        # undersells matches first; the budget is recounted (40 or 45
        # matches) and spent long before the walk reaches the backfill.
        backend = SqliteFts(Tuning(count_cap=3, first_window=8, match_cost=1.0, walk_cost=0.2, entry_cost=0.3))
        pages = all_pages(corpus, backend, query, plan=None)
    finally:
        sa_event.remove(engine, "before_cursor_execute", log)
    assert [i for page in pages for i in page] == newest_first(corpus, query)
    first_page = statements[: next(n for n, s in enumerate(statements) if "snippet(" in s)]
    walked = [n for n, s in enumerate(first_page) if "LIMIT 1 OFFSET" in s]
    recounted = [n for n, s in enumerate(first_page) if "MATCH" in s and "count(*)" in s][1:]
    handed_over = [n for n, s in enumerate(first_page) if "CROSS JOIN interaction AS i" in s]
    assert walked, first_page
    assert recounted, first_page
    assert handed_over, first_page
    assert walked[0] < recounted[0] < handed_over[0]


# -- relevance -----------------------------------------------------------------------


def ranked_pool(corpus: Corpus, query: SearchQuery, pool: int) -> list[int]:
    """The newest ``pool`` matches, ranked by FTS5's own bm25 (lower is better), ties newest id first."""
    members = newest_first(corpus, query)[:pool]
    with corpus.runtime.database.read() as session:
        scores = dict(
            session.execute(
                text("SELECT rowid, rank FROM interaction_fts WHERE interaction_fts MATCH :m"),
                {"m": match_expression(query.text)},
            ).all()
        )
    return sorted(members, key=lambda i: (scores[i], -i))


@pytest.mark.parametrize("pool", [12, 1_000])
def test_relevance_ranks_the_newest_pool_of_matches_whichever_plan_finds_it(corpus: Corpus, pool: int) -> None:
    for query in queries(corpus)[:12]:
        query = replace(query, order="relevance", limit=5)
        expected = ranked_pool(corpus, query, pool)
        for _, backend, plan in BACKENDS:
            backend = SqliteFts(replace(backend.tuning, relevance_pool=pool))
            pages = all_pages(corpus, backend, query, plan)
            assert [i for page in pages for i in page] == expected, (query, plan, backend.tuning)


def test_time_bounds_compare_as_stored_at_whole_seconds(corpus: Corpus) -> None:
    """A bound at a whole second equals the rows stored at that second (stored as ``…:00.000000``)."""
    row = next(r for r in corpus.rows if r.occurred_at.microsecond == 0 and _matches(r, "parcel"))
    moment = row.occurred_at.replace(tzinfo=UTC)
    for label, backend, plan in BACKENDS:
        for query in (
            SearchQuery(text="parcel", since=moment, until=moment + timedelta(seconds=1), limit=50),
            SearchQuery(text="parcel", until=moment, limit=50),
        ):
            expected = newest_first(corpus, query)
            assert (row.id in expected) == (query.since is not None)
            pages = all_pages(corpus, backend, query, plan)
            assert [i for page in pages for i in page] == expected, label
