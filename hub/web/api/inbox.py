"""The inbox and what agents do with a conversation: note, assign, take, status."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from hub import conversations, live
from hub.auth import AgentView
from hub.runtime import current_runtime
from hub.web.access import current_agent, requires
from hub.web.api.args import int_arg, json_body
from hub.web.api.blueprint import api
from hub.web.api.shapes import conversation_json, iso_time
from hub.web.errors import ApiError


def _agent() -> AgentView:
    agent = current_agent()
    assert agent is not None  # @requires let the request in
    return agent


def _optional_int(name: str) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit():
        raise ApiError(400, name, f"must be a whole number, got {raw!r}")
    return int(raw)


def inbox_row_json(row: conversations.InboxRow) -> dict[str, Any]:
    return {
        **conversation_json(row.conversation),
        "waiting_since": iso_time(row.conversation.waiting_since),
        "customer_name": row.customer_name,
        "channels": row.channels,
        "last_text": row.last_text,
        "last_direction": row.last_direction,
        "last_channel": row.last_channel,
        "assignee_name": row.assignee_name,
    }


@api.get("/inbox")
@requires("customers.read")
def get_inbox() -> ResponseReturnValue:
    """Conversations that need someone, with counts per view."""
    with current_runtime().database.read() as session:
        page = conversations.inbox(
            session,
            agent_id=_agent().id,
            status=request.args.get("status", "open"),
            view=request.args.get("view", "all"),
            order=request.args.get("order", "waiting"),
            channel=request.args.get("channel") or None,
            assignee_id=_optional_int("assignee"),
            customer_id=_optional_int("customer"),
            cursor=request.args.get("cursor") or None,
            limit=int_arg("limit", 25, 1, conversations.MAX_PAGE),
        )
        return jsonify(
            {
                "conversations": [inbox_row_json(r) for r in page.rows],
                "next_cursor": page.next_cursor,
                "counts": page.counts,
            }
        )


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        raise ApiError(400, name, "is required")
    if not isinstance(value, str):
        raise ApiError(400, name, "must be a string")
    return value


@api.post("/conversations/<int:conversation_id>/notes")
@requires("replies.send")
def post_note(conversation_id: int) -> ResponseReturnValue:
    """An internal note, shown with its author; customers never see it."""
    text = _text(json_body(), "text")
    with current_runtime().database.write() as session:
        interaction_id = conversations.add_note(session, conversation_id, text=text, author=_agent())
    return jsonify({"interaction_id": interaction_id}), 201


@api.post("/conversations/<int:conversation_id>/assign")
@requires("replies.send")
def post_assign(conversation_id: int) -> ResponseReturnValue:
    """Assign to an agent (``assignee_id``), or to nobody (``null``)."""
    data = json_body()
    if "assignee_id" not in data:
        raise ApiError(400, "assignee_id", "is required (null unassigns)")
    assignee = data["assignee_id"]
    if assignee is not None and (not isinstance(assignee, int) or isinstance(assignee, bool)):
        raise ApiError(400, "assignee_id", "must be an agent's id or null")
    with current_runtime().database.write() as session:
        conversation = conversations.assign(session, conversation_id, assignee, actor=_agent())
        return jsonify(conversation_json(conversation))


@api.post("/conversations/<int:conversation_id>/take")
@requires("replies.send")
def post_take(conversation_id: int) -> ResponseReturnValue:
    """Assign to the agent asking."""
    agent = _agent()
    with current_runtime().database.write() as session:
        conversation = conversations.assign(session, conversation_id, agent.id, actor=agent)
        return jsonify(conversation_json(conversation))


@api.post("/conversations/<int:conversation_id>/status")
@requires("replies.send")
def post_status(conversation_id: int) -> ResponseReturnValue:
    """Open, pending or closed (reopening is setting open)."""
    status = _text(json_body(), "status")
    with current_runtime().database.write() as session:
        conversation = conversations.set_status(session, conversation_id, status, actor=_agent())
        return jsonify(conversation_json(conversation))


@api.post("/conversations/<int:conversation_id>/presence")
@requires("customers.read")
def post_presence(conversation_id: int) -> ResponseReturnValue:
    """Tell the other agents you are viewing or replying to this conversation (repeat every ~20 s)."""
    state = _text(json_body(), "state")
    if state not in {"viewing", "replying"}:
        raise ApiError(400, "state", "must be viewing or replying")
    agent = _agent()
    with current_runtime().database.write() as session:
        conversations.get_conversation(session, conversation_id)
        live.publish(
            session,
            live.AGENTS,
            "presence",
            {"conversation_id": conversation_id, "agent_id": agent.id, "agent_name": agent.name, "state": state},
        )
    return "", 204
