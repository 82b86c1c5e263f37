"""Customers: lookup, the customer with identities, the timeline, identity links, merge and undo."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from hub import customers, erasure
from hub.events import IdentityKind
from hub.runtime import current_runtime
from hub.timeline import customer_timeline
from hub.web.access import record_view, requires
from hub.web.api.args import acting_agent_id, id_value, int_arg, json_body
from hub.web.api.blueprint import api
from hub.web.api.shapes import conversation_json, customer_json, identity_json, merge_json, page_json
from hub.web.errors import ApiError


@api.get("/customers")
@requires("customers.read")
def find_customers() -> ResponseReturnValue:
    email, phone, name = (request.args.get(k) for k in ("email", "phone", "name"))
    if not (email or phone or name):
        raise ApiError(400, "email", "give one of email, phone or name")
    runtime = current_runtime()
    with runtime.database.read() as session:
        try:
            found = customers.find_customers(
                session, email=email, phone=phone, name=name,
                default_region=runtime.pipeline.default_region,
                limit=int_arg("limit", 20, 1, 100),
            )  # fmt: skip
        except ValueError as exc:
            field = "email" if email else "phone" if phone else "name"
            raise ApiError(400, field, str(exc)) from None
        return jsonify({"customers": [customer_json(c) for c in found]})


@api.get("/customers/<int:customer_id>")
@requires("customers.read")
def get_customer(customer_id: int) -> ResponseReturnValue:
    with current_runtime().database.read() as session:
        found = customers.summary(session, customer_id)
        body = {
            **customer_json(found.customer),
            "requested_id": customer_id,
            "identities": [identity_json(i) for i in found.identities],
            "conversations": [conversation_json(c) for c in found.conversations],
            "interaction_count": found.interaction_count,
        }
    record_view(found.customer.id, "api.customer")
    return jsonify(body)


@api.get("/customers/<int:customer_id>/timeline")
@requires("customers.read")
def get_timeline(customer_id: int) -> ResponseReturnValue:
    limit = int_arg("limit", 50, 1, 200)
    with current_runtime().database.read() as session:
        page = customer_timeline(session, customer_id, limit=limit, cursor=request.args.get("cursor"))
        if request.args.get("cursor") is None:
            # One record per look at a customer, not one per page of it.
            record_view(page.customer_id, "api.timeline")
        return jsonify(
            {
                "customer_id": page.customer_id,
                "interactions": page_json(page),
                "conversations": {str(k): conversation_json(v) for k, v in page.conversations.items()},
                "next_cursor": page.next_cursor,
            }
        )


@api.post("/customers/<int:customer_id>/identities")
@requires("identities.edit")
def add_identity(customer_id: int) -> ResponseReturnValue:
    data = json_body()
    try:
        kind = IdentityKind(str(data.get("kind")))
    except ValueError:
        raise ApiError(400, "kind", f"must be one of {', '.join(k.value for k in IdentityKind)}") from None
    value = data.get("value")
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "value", "is required")
    runtime = current_runtime()
    with runtime.database.write() as session:
        try:
            identity = customers.add_identity(
                session, customer_id, kind, value, actor_id=acting_agent_id(),
                default_region=runtime.pipeline.default_region,
            )  # fmt: skip
        except customers.Conflict as exc:
            raise ApiError(409, "value", str(exc)) from None
        except ValueError as exc:
            raise ApiError(400, "value", str(exc)) from None
        return jsonify(identity_json(identity)), 201


@api.delete("/customers/<int:customer_id>/identities/<int:identity_id>")
@requires("identities.edit")
def remove_identity(customer_id: int, identity_id: int) -> ResponseReturnValue:
    with current_runtime().database.write() as session:
        customers.remove_identity(session, customer_id, identity_id, actor_id=acting_agent_id())
    return "", 204


@api.post("/customers/<int:customer_id>/merge")
@requires("customers.merge")
def merge_customer(customer_id: int) -> ResponseReturnValue:
    """Merge the customer named by ``source_id`` into this one."""
    data = json_body()
    source_id = id_value(data.get("source_id"), "source_id", "a customer id")
    with current_runtime().database.write() as session:
        try:
            record = customers.merge(session, source_id, customer_id, actor_id=acting_agent_id())
        except customers.Conflict as exc:
            raise ApiError(409, "source_id", str(exc)) from None
        return jsonify(merge_json(record)), 200


@api.post("/merges/<int:merge_id>/undo")
@requires("customers.merge")
def undo_merge(merge_id: int) -> ResponseReturnValue:
    with current_runtime().database.write() as session:
        try:
            record = customers.unmerge(session, merge_id, actor_id=acting_agent_id())
        except customers.Conflict as exc:
            raise ApiError(409, "merge_id", str(exc)) from None
        return jsonify(merge_json(record))


@api.post("/customers/<int:customer_id>/erase")
@requires("customers.erase")
def erase_customer(customer_id: int) -> ResponseReturnValue:
    """GDPR erasure: everything about this person goes; an audit record of counts stays (admins)."""
    runtime = current_runtime()
    with runtime.database.write() as session:
        erased = erasure.erase_customer(session, customer_id, search=runtime.search, actor_id=acting_agent_id())
    erasure.compact(runtime.database)
    return jsonify({"customer_ids": erased.customer_ids, "erased": erased.counts()})
