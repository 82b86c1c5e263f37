"""Full-text search over every interaction, through the configured search backend."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from hub import customers
from hub.events import Channel
from hub.runtime import current_runtime
from hub.search import SearchQuery
from hub.web.access import requires
from hub.web.api.args import int_arg, time_arg
from hub.web.api.blueprint import api
from hub.web.api.shapes import hit_json
from hub.web.errors import MAX_ID, ApiError


@api.get("/search")
@requires("search")
def search() -> ResponseReturnValue:
    q = request.args.get("q", "")
    if not q.strip():
        raise ApiError(400, "q", "is required")
    channels = tuple(c for c in request.args.getlist("channel") for c in c.split(",") if c)
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
    runtime = current_runtime()
    with runtime.database.read() as session:
        if query.customer_id is not None:
            query = _with_resolved_customer(session, query)
        page = runtime.search.search(session, query)
    return jsonify({"hits": [hit_json(h) for h in page.hits], "next_cursor": page.next_cursor})


def _with_resolved_customer(session: Any, query: SearchQuery) -> SearchQuery:
    """Search a merged customer's id as the customer it was merged into."""
    assert query.customer_id is not None
    return replace(query, customer_id=customers.resolve(session, query.customer_id).id)
