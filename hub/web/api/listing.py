"""Listings for integrators: conversations (filters, keyset), interactions by external id, the journal by status."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from hub import listing
from hub.events import Channel
from hub.journal import received_entries
from hub.models import ConversationStatus, JournalEntry, JournalStatus
from hub.runtime import current_runtime
from hub.web.access import requires
from hub.web.api.args import int_arg, time_arg
from hub.web.api.blueprint import api
from hub.web.api.shapes import conversation_json, iso_time, page_json
from hub.web.errors import ApiError


def _channel(name: str, raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        return Channel(raw).value
    except ValueError:
        raise ApiError(400, name, f"must be one of {', '.join(c.value for c in Channel)}") from None


def _id(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise ApiError(400, name, f"must be an id, got {raw!r}")
    return int(raw)


@api.get("/conversations")
@requires("customers.read")
def list_conversations() -> ResponseReturnValue:
    """Conversations by status, customer, assignee and channel; most recent activity first, keyset-paged."""
    statuses = [s for raw in request.args.getlist("status") for s in raw.split(",") if s]
    known = {s.value for s in ConversationStatus}
    for status in statuses:
        if status not in known:
            raise ApiError(400, "status", f"must be one of {', '.join(sorted(known))}")
    assignee_raw = request.args.get("assignee")
    assignee: int | str | None = (
        listing.UNASSIGNED if assignee_raw == listing.UNASSIGNED else _id("assignee", assignee_raw)
    )
    where = listing.ConversationFilter(
        statuses=statuses,
        customer_id=_id("customer", request.args.get("customer")),
        assignee=assignee,
        channel=_channel("channel", request.args.get("channel")),
        since=time_arg("since"),
    )
    limit = int_arg("limit", 50, 1, 200)
    with current_runtime().database.read() as session:
        page = listing.list_conversations(session, where, limit=limit, cursor=request.args.get("cursor"))
        return jsonify(
            {"conversations": [conversation_json(c) for c in page.conversations], "next_cursor": page.next_cursor}
        )


@api.get("/interactions")
@requires("customers.read")
def find_interactions() -> ResponseReturnValue:
    """The interaction a provider knows by its id (a MessageSid, a Message-ID): 0 or 1 in a list."""
    channel = _channel("channel", request.args.get("channel"))
    external_id = request.args.get("external_id")
    if channel is None:
        raise ApiError(400, "channel", "is required")
    if not external_id:
        raise ApiError(400, "external_id", "is required")
    with current_runtime().database.read() as session:
        page = listing.interactions_by_external_id(session, channel, external_id)
        return jsonify({"interactions": page_json(page)})


def journal_entry_json(entry: JournalEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "source": entry.source,
        "channel": entry.channel,
        "external_id": entry.external_id,
        "received_at": iso_time(entry.received_at),
        "content_type": entry.content_type,
        "size": len(entry.payload),
        "status": str(entry.status),
        "error": entry.error,
        "attempts": entry.attempts,
        "next_attempt_at": iso_time(entry.next_attempt_at),
        "interaction_id": entry.interaction_id,
    }


@api.get("/journal")
@requires("journal.read")
def list_journal() -> ResponseReturnValue:
    """Journal entries by status (admins), newest first; failed by default."""
    raw = request.args.get("status", JournalStatus.FAILED.value)
    try:
        status = JournalStatus(raw)
    except ValueError:
        raise ApiError(400, "status", f"must be one of {', '.join(s.value for s in JournalStatus)}") from None
    limit = int_arg("limit", 50, 1, 200)
    before = _id("cursor", request.args.get("cursor"))
    database = current_runtime().database
    if status == JournalStatus.RECEIVED:
        # On SQLite most wait in the inbox (hub.inbox), which has no order to page by: the newest only.
        entries = received_entries(database, limit)
        return jsonify({"entries": [journal_entry_json(e) for e in entries], "next_cursor": None})
    with database.read() as session:
        page = listing.journal_entries(session, status, limit=limit, before=before)
        return jsonify({"entries": [journal_entry_json(e) for e in page.entries], "next_cursor": page.next_cursor})
