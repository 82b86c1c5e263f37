"""The search engine backend: rebuild throughput, indexing lag while ingesting, query latency.

Against ``osmem-server`` (the OpenSearch-compatible engine the tests use) on
loopback, through ``opensearch-py`` — or a real cluster given as
``HUB_BENCH_SEARCH_URL`` (``HUB_BENCH_SEARCH_BACKEND`` = opensearch or
elasticsearch). Each figure has its baseline in the same run:

1. ``corridor search rebuild`` of every interaction in the database, in
   documents per second, against a raw ``helpers.bulk`` of the very same
   documents (built beforehand, in memory) into a fresh index with the same
   body: what the rebuild's database reads, outbox hold, replay, count
   verification and alias swap cost on top of the engine's own bulk speed.
2. Lag from commit to searchable, p50 and p99, while events are ingested
   through the real pipeline at a steady rate (default 500/s) and the worker's
   indexer loop drains the outbox in a thread: each batch's commit time
   against the moment a search finds all of it. The index refreshes every
   second, which bounds the lag from below.
3. Search with facets, p50 and p99, through the backend (query building,
   the request, parsing hits, snippets and facets) against the same request
   body sent raw with the client's ``search``.

The default size (10,000 interactions, 10 s of ingest) runs in a few minutes
on a shared 2-core machine; the engine, not Corridor, sets the pace there.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from sqlalchemy import update

from hub.ingest import ingest_many
from hub.models import OutboxEntry, OutboxState
from hub.search import SearchQuery
from hub.search.engine import EngineBackend
from hub.search.indexer import run as run_indexer
from hub.search.lifecycle import LOAD_BATCH, rebuild
from hub.search.mapping import documents_after, index_body
from hub.search.query import HIGHLIGHT, HIT_SOURCE, NEWEST_SORT, Filters, facet_aggregations, query_clause
from tests.bench.common import Result, Workspace, percentile, runtime_of, say
from tests.bench.workload import Workload

#: Interactions in the database the rebuild loads (say so with the figures).
INTERACTIONS = 10_000
RATE = 500
INGEST_SECONDS = 10.0
QUERY_ROUNDS = 100
QUERIES = ("order", "refund delivery", '"tracking number"', "deliv*", "invoice")


def _engine(workspace: Workspace, url: str, backend: str) -> tuple[Any, EngineBackend]:
    db = workspace.fresh_db("search-engine")
    overrides = workspace.overrides(db, "search-engine")
    overrides["search"] = {"backend": backend, "url": url, "replicas": 0, "batch_size": 1000, "request_timeout": 120.0}
    from hub import create_app

    app = create_app(overrides=overrides, environ={})
    runtime = runtime_of(app)
    engine = runtime.search
    assert isinstance(engine, EngineBackend)
    engine.verify()
    return runtime, engine


def _fill(runtime: Any, count: int) -> None:
    workload = Workload(seed=11, run_tag="engine")
    for batch in workload.batches(count, 1000):
        with runtime.database.write() as session:
            ingest_many(session, batch, source="bench")
    # What the pipeline queued is in the database already; the rebuild loads it.
    with runtime.database.write() as session:
        session.execute(update(OutboxEntry).values(state=OutboxState.DONE))


def _rebuild_ratio(runtime: Any, engine: EngineBackend) -> Result:
    docs: list[tuple[int, dict[str, Any]]] = []
    last = 0
    while True:
        with runtime.database.read() as session:
            batch = documents_after(session, last, 2000)
        if not batch:
            break
        docs += batch
        last = batch[-1][0]
    raw_index = "raw-bulk"
    engine.client.create_index(raw_index, index_body(shards=1, replicas=0, loading=True))
    actions = [{"_index": raw_index, "_id": str(i), "_source": d} for i, d in docs]
    started = time.perf_counter()
    # In the rebuild's own chunks, so the two send the same requests.
    for start in range(0, len(actions), LOAD_BATCH):
        engine.client.bulk(actions[start : start + LOAD_BATCH])
    raw_rate = len(actions) / (time.perf_counter() - started)
    engine.client.delete_index(raw_index)
    report = rebuild(runtime.database, engine)
    rate = report.loaded / report.seconds
    say(f"  rebuild: {report.loaded:,} documents in {report.seconds:.1f} s ({rate:,.0f}/s); raw bulk {raw_rate:,.0f}/s")
    return Result("engine rebuild", rate, "docs/s", raw_rate, "raw bulk", True, ">= 70%", rate >= 0.7 * raw_rate,
                  f"{report.loaded:,} interactions")  # fmt: skip


def _lag(runtime: Any, engine: EngineBackend, rate: int, seconds: float) -> list[Result]:
    stop = threading.Event()
    indexer = threading.Thread(target=run_indexer, args=(runtime.database, engine, stop), daemon=True)
    indexer.start()
    workload = Workload(seed=12, run_tag="lag")
    batch_size = max(rate // 10, 1)
    pending: list[tuple[float, list[int]]] = []
    lags: list[float] = []
    lock = threading.Lock()
    done_ingesting = threading.Event()

    def watch() -> None:
        while not (done_ingesting.is_set() and not pending) and not stop.is_set():
            with lock:
                head = pending[0] if pending else None
            if head is None:
                time.sleep(0.01)
                continue
            committed, ids = head
            answer = engine.client.count(engine.alias, {"terms": {"id": ids}})
            if answer == len(ids):
                lags.append(time.perf_counter() - committed)
                with lock:
                    pending.pop(0)
            else:
                time.sleep(0.02)
            if time.perf_counter() - committed > 120:
                say("  lag: a batch was not searchable after 120 s; giving up")
                stop.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    sent = 0
    for batch in workload.batches(int(rate * seconds), batch_size):
        due = started + sent / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        with runtime.database.write() as session:
            results = ingest_many(session, batch, source="bench")
        committed = time.perf_counter()
        with lock:
            pending.append((committed, [r.interaction_id for r in results if r.interaction_id]))
        sent += len(batch)
    achieved = sent / (time.perf_counter() - started)
    done_ingesting.set()
    watcher.join(timeout=180)
    stop.set()
    indexer.join(timeout=30)
    p50, p99 = percentile(lags, 50), percentile(lags, 99)
    say(f"  lag at {achieved:,.0f} events/s: p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms, {len(lags)} batches")
    return [
        Result("engine lag p50", p50 * 1000, "ms", None, "", False, "-", True, f"{achieved:,.0f} events/s"),
        Result("engine lag p99", p99 * 1000, "ms", None, "", False, "<= 2000 ms", p99 <= 2.0, f"{achieved:,.0f} ev/s"),
    ]


def _queries(engine: EngineBackend, rounds: int) -> list[Result]:
    ours: list[float] = []
    raw: list[float] = []
    for n in range(rounds):
        text = QUERIES[n % len(QUERIES)]
        query = SearchQuery(text=text, limit=20)
        filters = Filters.of(query)
        body = {"query": query_clause(text, filters), "sort": NEWEST_SORT, "size": 21, "_source": HIT_SOURCE,
                "highlight": HIGHLIGHT, "track_total_hits": True, "aggs": facet_aggregations("day")}  # fmt: skip
        # Alternate which goes first, so neither always meets a warm cache.
        order = (0, 1) if n % 2 else (1, 0)
        for which in order:
            started = time.perf_counter()
            if which == 0:
                engine.run(query, filters, "day")
                ours.append(time.perf_counter() - started)
            else:
                engine.client.search(engine.alias, body)
                raw.append(time.perf_counter() - started)
    results = []
    for pct in (50, 99):
        mine, base = percentile(ours, pct) * 1000, percentile(raw, pct) * 1000
        say(f"  search with facets p{pct}: {mine:.1f} ms; raw _search {base:.1f} ms")
        # Latencies: the ratio is raw/ours, >= 80 % means at most 25 % slower.
        results.append(Result(f"engine query p{pct}", mine, "ms", base, "raw _search", False, "raw >= 80% of ours",
                              base >= 0.8 * mine))  # fmt: skip
    return results


def run(workspace: Workspace, *, quick: bool = False) -> list[Result]:
    """The three figures; starts osmem-server unless HUB_BENCH_SEARCH_URL names a cluster."""
    count = 2_000 if quick else INTERACTIONS
    seconds = 4.0 if quick else INGEST_SECONDS
    say(f"\n== search engine: {count:,} interactions, {RATE} events/s for {seconds:.0f} s ==")
    url = os.environ.get("HUB_BENCH_SEARCH_URL", "")
    backend = os.environ.get("HUB_BENCH_SEARCH_BACKEND", "opensearch")
    server = None
    if not url:
        from osmem_server import OsmemServer

        server = OsmemServer.start(japanese=False)
        url = server.url
    try:
        runtime, engine = _engine(workspace, url, backend)
        _fill(runtime, count)
        results = [_rebuild_ratio(runtime, engine)]
        results += _lag(runtime, engine, RATE, seconds)
        results += _queries(engine, 60 if quick else QUERY_ROUNDS)
        runtime.database.dispose()
        engine.client.close()
        return results
    finally:
        if server is not None:
            server.close()
            if server.process.stdout is not None:
                server.process.stdout.close()
