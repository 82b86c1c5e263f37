"""The JSON API under /api, authenticated by per-agent API tokens.

Views are entry points: they parse the request, open one transaction, call a
service, and turn the result into JSON. Errors are JSON too, and name the field
at fault (see hub.web.errors).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub import customers, replies
from hub.events import Channel, IdentityKind
from hub.ingest import receive
from hub.journal import find_entry, received_backlog, wait_processed
from hub.models import (
    AttachmentRecord,
    Conversation,
    Customer,
    CustomerMerge,
    Identity,
    Interaction,
    JournalEntry,
    JournalStatus,
    utcnow,
)
from hub.runtime import current_runtime
from hub.search import SearchHit, SearchQuery
from hub.timeline import TimelinePage, conversation_interactions, customer_timeline
from hub.web.access import current_agent, requires
from hub.web.errors import ApiError
from hub.web.event_schema import FieldError, parse_event
from hub.web.openapi import openapi_document

log = logging.getLogger(__name__)

api = Blueprint("api", __name__, url_prefix="/api")


# -- JSON shapes ---------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def customer_json(customer: Customer) -> dict[str, Any]:
    return {"id": customer.id, "display_name": customer.display_name, "created_at": _time(customer.created_at)}


def identity_json(identity: Identity) -> dict[str, Any]:
    return {"id": identity.id, "kind": identity.kind, "value": identity.value, "raw_value": identity.raw_value}


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "customer_id": conversation.customer_id,
        "status": conversation.status,
        "subject": conversation.subject,
        "opened_at": _time(conversation.opened_at),
        "last_activity_at": _time(conversation.last_activity_at),
        "assignee_id": conversation.assignee_id,
    }


def attachment_json(attachment: AttachmentRecord) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "url": attachment.url,
        "inline": attachment.inline,
    }


def interaction_json(interaction: Interaction, attachments: list[AttachmentRecord]) -> dict[str, Any]:
    return {
        "id": interaction.id,
        "customer_id": interaction.customer_id,
        "conversation_id": interaction.conversation_id,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "kind": interaction.kind,
        "external_id": interaction.external_id,
        "occurred_at": _time(interaction.occurred_at),
        "from": interaction.from_address,
        "to": interaction.to_address,
        "subject": interaction.subject,
        "text": interaction.text,
        "reply_text": interaction.reply_text,
        "html": interaction.html,
        "status": interaction.status,
        "error_code": interaction.error_code,
        "error_message": interaction.error_message,
        "duration_seconds": interaction.duration_seconds,
        "defects": interaction.defects,
        "metadata": interaction.provider_metadata,
        "attachments": [attachment_json(a) for a in attachments],
    }


def page_json(page: TimelinePage) -> list[dict[str, Any]]:
    return [interaction_json(i, page.attachments.get(i.id, [])) for i in page.interactions]


def hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "interaction_id": hit.interaction_id,
        "customer_id": hit.customer_id,
        "conversation_id": hit.conversation_id,
        "channel": hit.channel,
        "direction": hit.direction,
        "occurred_at": _time(hit.occurred_at),
        "subject": hit.subject,
        "snippet": hit.snippet,
    }


def merge_json(record: CustomerMerge) -> dict[str, Any]:
    return {
        "id": record.id,
        "source_id": record.source_id,
        "target_id": record.target_id,
        "merged_at": _time(record.merged_at),
        "undone_at": _time(record.undone_at),
        "moved": {k: len(v) for k, v in record.moved.items()},
    }


# -- Request helpers -----------------------------------------------------------------


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(415, "body", "send Content-Type: application/json")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "body", "must be a JSON object")
    return data


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    return int(_number_arg(name, default, low, high, int, "a whole number"))


def _float_arg(name: str, default: float, low: float, high: float) -> float:
    return _number_arg(name, default, low, high, float, "a number")


def _number_arg(name: str, default: float, low: float, high: float, parse: Callable[[str], float], what: str) -> float:
    # Most requests carry no query string; building request.args to find
    # that out was ~5 % of an event's time in the web process. (A name could
    # hide only behind percent-escapes.)
    query = request.query_string
    if name.encode() not in query and b"%" not in query:
        return default
    args = request.args
    # MultiDict.get finds a missing key by raising and catching an HTTP
    # exception: a measurable share of a webhook's budget.
    if name not in args:
        return default
    raw = args[name]
    try:
        value = parse(raw)
    except ValueError:
        raise ApiError(400, name, f"must be {what}, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, name, f"must be between {low:g} and {high:g}")
    return value


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, name, f"is not an ISO 8601 date or time: {raw!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _agent_id() -> int | None:
    agent = current_agent()
    return agent.id if agent else None


# -- Events --------------------------------------------------------------------------


#: The longest a client may ask POST /api/events to wait for processing.
MAX_WAIT_SECONDS = 30.0


@api.post("/events")
@requires("events.write")
def post_event() -> ResponseReturnValue:
    """The generic channel: any system pushes one ChannelEvent as JSON.

    The event is validated, journaled and answered with 202: it is durable,
    and the journal processor puts it on the timeline a moment later
    (``GET /api/journal/<id>`` says what became of it). ``?wait=<seconds>``
    answers once it is processed instead, with its interaction, customer and
    conversation (201, or 200 for a duplicate), for clients that need the ids.
    """
    wait = _float_arg("wait", 0.0, 0.0, MAX_WAIT_SECONDS)
    if request.mimetype != "application/json":
        raise ApiError(415, "body", "send Content-Type: application/json")
    body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        event = parse_event(body)
    except FieldError as exc:
        raise ApiError(400, exc.field, exc.message) from None
    database = current_runtime().database
    [journal_id] = receive(database, [event], source="api")
    headers = {"Location": f"/api/journal/{journal_id}"}
    entry = _wait_processed(journal_id, wait) if wait else None
    if entry is None:
        return jsonify(_received_json(journal_id)), 202, headers
    with database.read() as session:
        outcome = _journal_json(session, entry)
    if entry.status == JournalStatus.PROCESSED:
        return jsonify(outcome), 201, headers
    if entry.status == JournalStatus.DUPLICATE:
        return jsonify(outcome), 200, headers
    # Failed or deferred: journaled with its error for an admin to see and replay.
    return jsonify(outcome), 202, headers


def _wait_processed(journal_id: int, seconds: float) -> JournalEntry | None:
    """The entry once processed, if a waiting place is free ([journal] max_waiting); None otherwise.

    A waiting request holds a server thread. Without a bound, clients asking
    to wait while processing is slow or stopped would hold every thread, and
    webhooks, which must be answered within seconds, would find none.
    """
    runtime = current_runtime()
    if not runtime.waiting.acquire(blocking=False):
        log.info(
            "journal #%d: %d requests already wait for processing; answering 202 at once",
            journal_id,
            runtime.hub.journal.max_waiting,
        )
        return None
    try:
        return wait_processed(runtime.database, journal_id, seconds)
    finally:
        runtime.waiting.release()


@api.get("/journal/<int:entry_id>")
@requires("events.write")
def get_journal_entry(entry_id: int) -> ResponseReturnValue:
    """What became of a journaled event: received, processed, duplicate, deferred or failed."""
    database = current_runtime().database
    entry = find_entry(database, entry_id)
    if entry is None:
        abort(404, description=f"no journal entry {entry_id}")
    with database.read() as session:
        return jsonify(_journal_json(session, entry))


#: A received entry older than this means no processor is keeping up (or running).
BACKLOG_DEGRADED_SECONDS = 60.0


@api.get("/health")
def health() -> ResponseReturnValue:
    """For load balancers and monitoring: no token, counts only.

    ``degraded`` when a received event has waited more than a minute: the
    web process journals and answers, so a stopped worker shows nowhere else.
    """
    database = current_runtime().database
    received, oldest = received_backlog(database)
    with database.read() as session:
        failed = session.scalar(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.status == JournalStatus.FAILED)
        )
    waited = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    degraded = waited > BACKLOG_DEGRADED_SECONDS
    return jsonify(
        {
            "status": "degraded" if degraded else "ok",
            "reason": f"received events have waited {waited:.0f} s for the journal processor" if degraded else None,
            "journal": {"received": received, "oldest_received_seconds": round(waited, 1), "failed": failed},
        }
    )


def _received_json(journal_id: int) -> dict[str, Any]:
    return {
        "journal_id": journal_id,
        "status": JournalStatus.RECEIVED.value,
        "interaction_id": None,
        "customer_id": None,
        "conversation_id": None,
        "duplicate": False,
        "error": None,
    }


def _journal_json(session: Session, entry: JournalEntry) -> dict[str, Any]:
    """An entry's outcome; for a processed event, where it landed on the timeline."""
    interaction: Interaction | None = None
    if entry.channel and entry.external_id:
        # (channel, external_id) is unique and indexed; a duplicate also
        # names the interaction it repeated.
        interaction = session.scalar(
            select(Interaction).where(
                Interaction.channel == entry.channel, Interaction.external_id == entry.external_id
            )
        )
    if interaction is None and entry.interaction_id is not None:
        interaction = session.get(Interaction, entry.interaction_id)
    return {
        "journal_id": entry.id,
        "status": str(entry.status),
        "interaction_id": interaction.id if interaction else None,
        "customer_id": interaction.customer_id if interaction else None,
        "conversation_id": interaction.conversation_id if interaction else None,
        "duplicate": entry.status == JournalStatus.DUPLICATE,
        "error": entry.error,
    }


# -- Customers -----------------------------------------------------------------------


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
                limit=_int_arg("limit", 20, 1, 100),
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
        return jsonify(
            {
                **customer_json(found.customer),
                "requested_id": customer_id,
                "identities": [identity_json(i) for i in found.identities],
                "conversations": [conversation_json(c) for c in found.conversations],
                "interaction_count": found.interaction_count,
            }
        )


@api.get("/customers/<int:customer_id>/timeline")
@requires("customers.read")
def get_timeline(customer_id: int) -> ResponseReturnValue:
    limit = _int_arg("limit", 50, 1, 200)
    with current_runtime().database.read() as session:
        page = customer_timeline(session, customer_id, limit=limit, cursor=request.args.get("cursor"))
        return jsonify(
            {
                "customer_id": page.customer_id,
                "interactions": page_json(page),
                "conversations": {str(k): conversation_json(v) for k, v in page.conversations.items()},
                "next_cursor": page.next_cursor,
            }
        )


@api.get("/conversations/<int:conversation_id>")
@requires("customers.read")
def get_conversation(conversation_id: int) -> ResponseReturnValue:
    with current_runtime().database.read() as session:
        page = conversation_interactions(session, conversation_id)
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        return jsonify({**conversation_json(conversation), "interactions": page_json(page)})


@api.post("/customers/<int:customer_id>/identities")
@requires("identities.edit")
def add_identity(customer_id: int) -> ResponseReturnValue:
    data = _json_body()
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
                session, customer_id, kind, value, actor_id=_agent_id(),
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
        customers.remove_identity(session, customer_id, identity_id, actor_id=_agent_id())
    return "", 204


@api.post("/customers/<int:customer_id>/merge")
@requires("customers.merge")
def merge_customer(customer_id: int) -> ResponseReturnValue:
    """Merge the customer named by ``source_id`` into this one."""
    data = _json_body()
    source_id = data.get("source_id")
    if not isinstance(source_id, int) or isinstance(source_id, bool):
        raise ApiError(400, "source_id", "must be a customer id")
    with current_runtime().database.write() as session:
        try:
            record = customers.merge(session, source_id, customer_id, actor_id=_agent_id())
        except customers.Conflict as exc:
            raise ApiError(409, "source_id", str(exc)) from None
        return jsonify(merge_json(record)), 200


@api.post("/merges/<int:merge_id>/undo")
@requires("customers.merge")
def undo_merge(merge_id: int) -> ResponseReturnValue:
    with current_runtime().database.write() as session:
        try:
            record = customers.unmerge(session, merge_id, actor_id=_agent_id())
        except customers.Conflict as exc:
            raise ApiError(409, "merge_id", str(exc)) from None
        return jsonify(merge_json(record))


# -- Replies -------------------------------------------------------------------------


@api.post("/conversations/<int:conversation_id>/replies")
@requires("replies.send")
def post_reply(conversation_id: int) -> ResponseReturnValue:
    """An agent's reply on any channel; sent after it is on the timeline."""
    data = _json_body()
    for required in ("channel", "text"):
        if data.get(required) is None:
            raise ApiError(400, required, "is required")
    try:
        channel = Channel(str(data["channel"]))
    except ValueError:
        raise ApiError(400, "channel", f"must be one of {', '.join(c.value for c in Channel)}") from None
    text, subject = data["text"], data.get("subject")
    if not isinstance(text, str):
        raise ApiError(400, "text", "must be a string")
    if subject is not None and not isinstance(subject, str):
        raise ApiError(400, "subject", "must be a string")
    runtime = current_runtime()
    senders = runtime.registry.senders
    with runtime.database.write() as session:
        try:
            interaction_id = replies.queue_reply(
                session, senders, conversation_id=conversation_id, channel=channel,
                text=text, subject=subject, author_id=_agent_id(),
            )  # fmt: skip
        except replies.ReplyError as exc:
            status = 404 if exc.field == "conversation_id" else 422 if exc.field == "channel" else 400
            raise ApiError(status, exc.field, exc.message) from None
    outcome = replies.deliver(runtime.database, senders, interaction_id)
    body: dict[str, Any] = {"interaction_id": interaction_id, "status": "queued"}
    if outcome is not None:
        body.update(
            status=outcome.status,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            will_retry=outcome.will_retry,
        )
        if outcome.status == "failed":
            # The reply is on the timeline, marked failed with the provider's words.
            return jsonify({**body, "error": {"field": "to", "message": outcome.error_message}}), 422
    return jsonify(body), 202 if body["status"] == "queued" else 201


# -- Search --------------------------------------------------------------------------


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
    if customer is not None and not customer.isdigit():
        raise ApiError(400, "customer", "must be a customer id")
    query = SearchQuery(
        text=q,
        channels=channels,
        direction=direction,
        since=_time_arg("since"),
        until=_time_arg("until"),
        customer_id=int(customer) if customer else None,
        order=order,
        limit=_int_arg("limit", 20, 1, 100),
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


@api.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document())


@api.get("/me")
@requires("customers.read")
def me() -> ResponseReturnValue:
    agent = current_agent()
    if agent is None:
        abort(401)
    return jsonify({"id": agent.id, "email": agent.email, "name": agent.name, "role": agent.role})
