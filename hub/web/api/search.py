"""Search over every interaction: pages with facets (GET /api/search) and CSV export of every match.

The same meaning on every backend (words, "phrases", prefix*; filters;
newest first or by relevance). Facets come from the engine in the same
request as the page, or from the database on the embedded backends. Typed
phone numbers and email addresses find the interactions from and to them
(``hub.search.addresses``; an engine reads them itself). The export streams
every match, in pages, as CSV; who exported what, and how many rows, goes to the
audit log. An engine that is unavailable never makes a 500: searches answer
from the database, marked as such (``hub.search.fallback``), and the export is
a 503 until it is back; ingest and the timeline keep working meanwhile.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from flask import Response, jsonify, request, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from hub import customers
from hub.events import Channel, InteractionKind
from hub.metrics import instruments
from hub.models import Interaction
from hub.runtime import Runtime, current_runtime
from hub.search import SearchBackend, SearchHit, SearchQuery, database_fallback
from hub.search.addresses import with_addresses
from hub.search.engine import EngineBackend, EngineError, EngineRequestError
from hub.search.facets import database_facets, sampled_facets
from hub.search.fallback import Fallback
from hub.search.query import INTERVALS, NEWEST_SORT, Facets, Filters, query_clause
from hub.web.access import requires
from hub.web.api.args import acting_agent_id, int_arg, time_arg
from hub.web.api.blueprint import api
from hub.web.api.shapes import hit_json, iso_time
from hub.web.errors import MAX_ID, ApiError

#: Rows per page of an export (each page one engine request and one database read).
EXPORT_PAGE = 500
EXPORT_COLUMNS = ("interaction_id", "occurred_at", "channel", "direction", "kind", "status", "customer_id",
                  "conversation_id", "from", "to", "subject", "text")  # fmt: skip


def _list_arg(args: MultiDict[str, str], name: str) -> tuple[str, ...]:
    return tuple(v for value in args.getlist(name) for v in value.split(",") if v)


def parse_search(args: MultiDict[str, str]) -> SearchQuery:
    """The search the arguments ask for (the API's and the search page's); ApiError names a bad one."""
    q = args.get("q", "")
    if not q.strip():
        raise ApiError(400, "q", "is required")
    channels = _list_arg(args, "channel")
    for channel in channels:
        if channel not in {c.value for c in Channel}:
            raise ApiError(400, "channel", f"unknown channel {channel!r}")
    direction = args.get("direction") or None
    if direction not in (None, "inbound", "outbound", "internal"):
        raise ApiError(400, "direction", "must be inbound, outbound or internal")
    order = args.get("order") or "newest"
    if order not in {"newest", "relevance"}:
        raise ApiError(400, "order", "must be newest or relevance")
    customer = args.get("customer") or None
    if customer is not None and not (customer.isascii() and customer.isdigit() and 0 < int(customer) <= MAX_ID):
        raise ApiError(400, "customer", "must be a customer id")
    kinds = _list_arg(args, "kind")
    for kind in kinds:
        if kind not in {k.value for k in InteractionKind}:
            raise ApiError(400, "kind", f"unknown kind {kind!r}")
    agents = _list_arg(args, "agent")
    for agent in agents:
        if not (agent.isascii() and agent.isdigit() and 0 < int(agent) <= MAX_ID):
            raise ApiError(400, "agent", f"must be agent ids, got {agent!r}")
    return SearchQuery(
        text=q,
        channels=channels,
        direction=direction,
        since=time_arg("since", args),
        until=time_arg("until", args),
        customer_id=int(customer) if customer else None,
        kinds=kinds,
        statuses=_list_arg(args, "status"),
        agent_ids=tuple(int(a) for a in agents),
        order=order,
        limit=int_arg("limit", 20, 1, 100, args),
        cursor=args.get("cursor") or None,
    )


def _resolved(session: Session, runtime: Runtime, query: SearchQuery, *, engine: bool) -> SearchQuery:
    """The query as the backend reads it.

    A merged customer's id is searched as the customer it was merged into; for
    the database (``engine`` False), typed phone numbers and email addresses
    become the identities they name (an engine indexes the addresses itself).
    """
    if query.customer_id is not None:
        query = replace(query, customer_id=customers.resolve(session, query.customer_id).id)
    if not engine:
        query = with_addresses(session, query, runtime.pipeline.default_region)
    return query


def _unavailable(exc: EngineError) -> ApiError:
    if isinstance(exc, EngineRequestError) and exc.status == 400:
        return ApiError(400, "q", f"the search engine cannot run this search: {exc.reason}")
    return ApiError(503, None, f"search is unavailable: the search engine does not answer ({exc})")


def facets_json(total: int, facets: Facets) -> dict[str, Any]:
    return {
        "total": total,
        "channel": facets.channel,
        "direction": facets.direction,
        "status": facets.status,
        "agent": facets.agent,
        "histogram": {
            "interval": facets.interval,
            "buckets": [{"start": iso_time(start), "count": n} for start, n in facets.histogram],
        },
    }


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[SearchHit]
    next_cursor: str | None
    #: The number of matches and their facets, when asked for (an engine may count without facets).
    total: int | None = None
    facets: Facets | None = None
    #: Set when the engine failed and the database answered instead.
    fallback: Fallback | None = None
    #: Set when the facets count only the newest this many of more matches (``total`` is then None).
    facets_sample: int | None = None


def run_search(
    runtime: Runtime, query: SearchQuery, interval: str | None, facet_sample: int | None = None
) -> SearchResult:
    """One page of ``query`` on the configured backend, with facets by ``interval`` unless it is None.

    With ``facet_sample``, the database counts facets over at most that many
    matches, the newest (``hub.search.facets.sampled_facets``); an engine
    always counts them all, in the same request as the page.

    On an engine that fails, or failed moments ago (its circuit is open), the
    database answers what it can (``hub.search.fallback``), and says so.
    """
    with runtime.database.read() as session:
        backend = runtime.search
        if not isinstance(backend, EngineBackend):
            return _database_search(session, runtime, backend, _resolved(session, runtime, query, engine=False),
                                    interval, facet_sample)  # fmt: skip
        metrics = instruments()
        circuit = backend.circuit
        if circuit.allow():
            engine_query = _resolved(session, runtime, query, engine=True)
            try:
                result = backend.run(engine_query, Filters.of(engine_query), interval)
            except EngineRequestError as exc:
                if exc.status == 400:  # the search's fault, not the engine's
                    raise _unavailable(exc) from None
                circuit.failed(str(exc))  # a missing index, say: the engine cannot answer anything
                reason = "engine-failed"
            except EngineError as exc:
                circuit.failed(str(exc))
                reason = "engine-failed"
            else:
                circuit.succeeded()
                metrics.search_circuit_open.set(0)
                return SearchResult(result.page.hits, result.page.next_cursor, result.total, result.facets)
        else:
            reason = "circuit-open"
        metrics.search_circuit_open.set(1)
        database_query = _resolved(session, runtime, query, engine=False)
        fallback = database_fallback(runtime.database.dialect)
        if fallback.name == "sqlite" and database_query.text.strip():
            metrics.search_fallback.labels("unanswered").inc()
            raise ApiError(
                503,
                None,
                "the search engine does not answer; until it does, only phone numbers and email addresses can be "
                f"searched (this database keeps no text index of its own beside an engine). The engine is tried "
                f"again in {max(1, round(circuit.retry_in()))} s",
            )
        metrics.search_fallback.labels(reason).inc()
        answered = _database_search(session, runtime, fallback, database_query, interval, facet_sample)
        # Only words can be ranked: an address-only search lists newest first on every backend.
        order = "relevance" if query.order == "relevance" and database_query.text.strip() else "newest"
        what = "postgres" if fallback.name == "postgres" else "identities"
        return replace(answered, fallback=Fallback(reason, circuit.problem, what, order, round(circuit.retry_in(), 1)))


def _database_search(session: Session, runtime: Runtime, backend: SearchBackend, query: SearchQuery,
                     interval: str | None, facet_sample: int | None) -> SearchResult:  # fmt: skip
    page = backend.search(session, query)
    if interval is None:
        return SearchResult(page.hits, page.next_cursor)
    dialect = runtime.database.dialect
    if facet_sample is None:
        total, counted = database_facets(session, dialect, query, interval)
        return SearchResult(page.hits, page.next_cursor, total, counted)
    sampled = sampled_facets(session, dialect, query, interval, facet_sample)
    if sampled.complete:
        return SearchResult(page.hits, page.next_cursor, sampled.counted, sampled.facets)
    return SearchResult(page.hits, page.next_cursor, None, sampled.facets, facets_sample=sampled.counted)


def fallback_json(fallback: Fallback) -> dict[str, Any]:
    return {
        "reason": fallback.reason,
        "problem": fallback.problem,
        "backend": fallback.backend,
        "order": fallback.order,
        "retry_in_seconds": fallback.retry_in,
    }


@api.get("/search")
@requires("search")
def search() -> ResponseReturnValue:
    query = parse_search(request.args)
    interval = request.args.get("interval", "day")
    if interval not in INTERVALS:
        raise ApiError(400, "interval", f"must be one of {', '.join(INTERVALS)}")
    want_facets = request.args.get("facets", "").lower() in ("1", "true", "yes")
    result = run_search(current_runtime(), query, interval if want_facets else None)
    body: dict[str, Any] = {"hits": [hit_json(h) for h in result.hits], "next_cursor": result.next_cursor}
    if result.total is not None:
        body["total"] = result.total
    if result.facets is not None and result.total is not None:
        body["facets"] = facets_json(result.total, result.facets)
    if result.fallback is not None:
        body["fallback"] = fallback_json(result.fallback)
    return jsonify(body)


def _matching_ids(runtime: Runtime, query: SearchQuery, filters: Filters) -> Iterator[list[int]]:
    """Every match's id, newest first, a page at a time."""
    backend = runtime.search
    if isinstance(backend, EngineBackend):
        for hits in backend.scan(query_clause(query.text, filters), ["id"], batch=EXPORT_PAGE, sort=NEWEST_SORT):
            yield [int(h["_source"]["id"]) for h in hits]
        return
    page_query = replace(query, order="newest", limit=100, cursor=None)
    while True:
        with runtime.database.read() as session:
            page = backend.search(session, page_query)
        if page.hits:
            yield [h.interaction_id for h in page.hits]
        if not page.next_cursor:
            return
        page_query = replace(page_query, cursor=page.next_cursor)


def _rows(session: Session, ids: list[int]) -> list[list[Any]]:
    found = {
        i.id: i
        for i in session.scalars(select(Interaction).where(Interaction.id.in_(ids)))  # at most one page of ids
    }
    rows = []
    for interaction_id in ids:
        i = found.get(interaction_id)
        if i is not None:
            rows.append(
                [i.id, iso_time(i.occurred_at), i.channel, i.direction, i.kind, i.status or "", i.customer_id,
                 i.conversation_id or "", i.from_address, i.to_address, i.subject, i.text]
            )  # fmt: skip
    return rows


@api.get("/search/export")
@requires("search.export")
def export() -> ResponseReturnValue:
    """Every match as CSV, streamed page by page; audited with who asked, the search and the rows sent."""
    query = parse_search(request.args)
    typed = query.text
    runtime = current_runtime()
    actor = acting_agent_id()
    with runtime.database.read() as session:
        query = _resolved(session, runtime, query, engine=isinstance(runtime.search, EngineBackend))
    filters = Filters.of(query)
    pages = _matching_ids(runtime, query, filters)
    try:
        first = next(pages, [])
    except EngineError as exc:
        raise _unavailable(exc) from None
    audited = {
        "q": typed,
        "channel": list(query.channels),
        "direction": query.direction,
        "since": iso_time(query.since),
        "until": iso_time(query.until),
        "customer": query.customer_id,
        "kind": list(filters.kinds),
        "status": list(filters.statuses),
        "agent": list(filters.agent_ids),
    }

    def stream() -> Iterator[str]:
        sent = 0
        complete = False
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        try:
            for ids in _chain(first, pages):
                with runtime.database.read() as session:
                    rows = _rows(session, ids)
                writer.writerows(rows)
                sent += len(rows)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            complete = True
            if buffer.getvalue():
                yield buffer.getvalue()
        finally:
            with runtime.database.write() as session:
                customers.audit(session, actor, "search.export", "search", 0, **audited, rows=sent, complete=complete)

    return Response(
        stream_with_context(stream()),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="corridor-search.csv"', "X-Accel-Buffering": "no"},
    )


def _chain(first: list[int], rest: Iterator[list[int]]) -> Iterator[list[int]]:
    if first:
        yield first
    yield from rest
