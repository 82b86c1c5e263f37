"""Search over every interaction: pages with facets (GET /api/search) and CSV export of every match.

The same meaning on every backend (words, "phrases", prefix*; filters;
newest first or by relevance). Facets come from the engine in the same
request as the page, or from the database on the embedded backends. The
filters by kind, status and agent need an engine. The export streams every
match, in pages, as CSV; who exported what, and how many rows, goes to the
audit log. An engine that is unavailable is a 503, never a 500: ingest and
the timeline keep working meanwhile.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from flask import Response, jsonify, request, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import customers
from hub.events import Channel, InteractionKind
from hub.models import Interaction
from hub.runtime import Runtime, current_runtime
from hub.search import SearchQuery
from hub.search.engine import EngineBackend, EngineError, EngineRequestError
from hub.search.facets import database_facets
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


def _list_arg(name: str) -> tuple[str, ...]:
    return tuple(v for value in request.args.getlist(name) for v in value.split(",") if v)


def _parse() -> tuple[SearchQuery, Filters]:
    q = request.args.get("q", "")
    if not q.strip():
        raise ApiError(400, "q", "is required")
    channels = _list_arg("channel")
    for channel in channels:
        if channel not in {c.value for c in Channel}:
            raise ApiError(400, "channel", f"unknown channel {channel!r}")
    direction = request.args.get("direction") or None
    if direction not in (None, "inbound", "outbound", "internal"):
        raise ApiError(400, "direction", "must be inbound, outbound or internal")
    order = request.args.get("order", "newest")
    if order not in {"newest", "relevance"}:
        raise ApiError(400, "order", "must be newest or relevance")
    customer = request.args.get("customer")
    if customer is not None and not (customer.isascii() and customer.isdigit() and 0 < int(customer) <= MAX_ID):
        raise ApiError(400, "customer", "must be a customer id")
    kinds = _list_arg("kind")
    for kind in kinds:
        if kind not in {k.value for k in InteractionKind}:
            raise ApiError(400, "kind", f"unknown kind {kind!r}")
    agents = _list_arg("agent")
    for agent in agents:
        if not (agent.isascii() and agent.isdigit() and 0 < int(agent) <= MAX_ID):
            raise ApiError(400, "agent", f"must be agent ids, got {agent!r}")
    query = SearchQuery(
        text=q,
        channels=channels,
        direction=direction,
        since=time_arg("since"),
        until=time_arg("until"),
        customer_id=int(customer) if customer else None,
        order=order,
        limit=int_arg("limit", 20, 1, 100),
        cursor=request.args.get("cursor") or None,
    )
    extra = {"kinds": kinds, "statuses": _list_arg("status"), "agent_ids": tuple(int(a) for a in agents)}
    return query, Filters.of(query, **extra)


def _engine_only(runtime: Runtime, filters: Filters) -> None:
    if isinstance(runtime.search, EngineBackend):
        return
    for name, value in (("kind", filters.kinds), ("status", filters.statuses), ("agent", filters.agent_ids)):
        if value:
            raise ApiError(400, name, f"filtering by {name} needs a search engine ([search] backend)")


def _resolved(session: Session, query: SearchQuery, filters: Filters) -> tuple[SearchQuery, Filters]:
    """A merged customer's id searched as the customer it was merged into."""
    if query.customer_id is None:
        return query, filters
    customer_id = customers.resolve(session, query.customer_id).id
    return replace(query, customer_id=customer_id), replace(filters, customer_id=customer_id)


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


@api.get("/search")
@requires("search")
def search() -> ResponseReturnValue:
    query, filters = _parse()
    facets = request.args.get("facets", "")
    interval = request.args.get("interval", "day")
    if interval not in INTERVALS:
        raise ApiError(400, "interval", f"must be one of {', '.join(INTERVALS)}")
    want_facets = facets.lower() in ("1", "true", "yes")
    runtime = current_runtime()
    _engine_only(runtime, filters)
    with runtime.database.read() as session:
        query, filters = _resolved(session, query, filters)
        backend = runtime.search
        body: dict[str, Any]
        if isinstance(backend, EngineBackend):
            try:
                result = backend.run(query, filters, interval if want_facets else None)
            except EngineError as exc:
                raise _unavailable(exc) from None
            body = {"hits": [hit_json(h) for h in result.page.hits], "next_cursor": result.page.next_cursor,
                    "total": result.total}  # fmt: skip
            if result.facets is not None:
                body["facets"] = facets_json(result.total, result.facets)
            return jsonify(body)
        page = backend.search(session, query)
        body = {"hits": [hit_json(h) for h in page.hits], "next_cursor": page.next_cursor}
        if want_facets:
            total, counted = database_facets(session, runtime.database.dialect, query, interval)
            body["total"] = total
            body["facets"] = facets_json(total, counted)
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
    query, filters = _parse()
    runtime = current_runtime()
    _engine_only(runtime, filters)
    actor = acting_agent_id()
    with runtime.database.read() as session:
        query, filters = _resolved(session, query, filters)
    pages = _matching_ids(runtime, query, filters)
    try:
        first = next(pages, [])
    except EngineError as exc:
        raise _unavailable(exc) from None
    audited = {
        "q": query.text,
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
