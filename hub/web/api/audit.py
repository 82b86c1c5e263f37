"""The audit trail: who did what, newest first, filtered by actor, action, customer and date."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from hub.reports import audit
from hub.runtime import current_runtime
from hub.web.access import requires
from hub.web.api.blueprint import api
from hub.web.errors import ApiError


def _when(args: Mapping[str, str], name: str, *, end: bool) -> datetime | None:
    raw = args.get(name) or ""
    if not raw:
        return None
    try:
        if len(raw) == 10:
            # A day: "until" a day means up to the end of it.
            day = date.fromisoformat(raw)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, name, f"is not an ISO 8601 date or time: {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _id(args: Mapping[str, str], name: str, what: str) -> int | None:
    raw = args.get(name) or ""
    if not raw:
        return None
    if not raw.isdigit():
        raise ApiError(400, name, f"must be {what} id")
    return int(raw)


def audit_query(args: Mapping[str, str]) -> audit.AuditQuery:
    """An audit query from request arguments; a 400 names the argument at fault."""
    raw_limit = args.get("limit") or "50"
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 200:
        raise ApiError(400, "limit", "must be a whole number between 1 and 200")
    action = (args.get("action") or "").strip() or None
    if action is not None and len(action) > 64:
        raise ApiError(400, "action", "at most 64 characters")
    return audit.AuditQuery(
        actor_id=_id(args, "actor", "an agent"),
        action=action,
        customer_id=_id(args, "customer", "a customer"),
        since=_when(args, "since", end=False),
        until=_when(args, "until", end=True),
        limit=int(raw_limit),
        cursor=args.get("cursor") or None,
    )


@api.get("/audit")
@requires("audit.read")
def list_audit() -> ResponseReturnValue:
    query = audit_query(request.args)
    with current_runtime().database.read() as session:
        try:
            page = audit.audit_page(session, query)
        except audit.BadCursor:
            raise ApiError(400, "cursor", "not a cursor this API gave out") from None
    return jsonify(
        {
            "entries": [
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "actor": {"id": e.actor_id, "name": e.actor_name} if e.actor_id is not None else None,
                    "action": e.action,
                    "target": {"type": e.target_type, "id": e.target_id},
                    "details": e.details,
                }
                for e in page.entries
            ],
            "next_cursor": page.next_cursor,
        }
    )
