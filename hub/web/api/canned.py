"""Canned responses (any agent): the team's reply snippets; listed rendered for a conversation on request."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError

from hub import canned
from hub.conversations import get_conversation
from hub.customers import summary
from hub.models import CannedResponse
from hub.runtime import current_runtime
from hub.web.access import current_agent, requires
from hub.web.api.args import acting_agent_id, int_arg, json_body
from hub.web.api.blueprint import api
from hub.web.api.shapes import iso_time
from hub.web.errors import ApiError


def canned_json(item: CannedResponse, rendered: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": item.id,
        "shortcut": item.shortcut,
        "title": item.title,
        "text": item.text,
        "updated_at": iso_time(item.updated_at),
    }
    if rendered is not None:
        body["rendered"] = rendered
    return body


def _taken(shortcut: object) -> ApiError:
    return ApiError(409, "shortcut", f"/{shortcut} was just taken by another snippet")


@api.get("/canned-responses")
@requires("replies.send")
def list_canned() -> ResponseReturnValue:
    """Every snippet; with ``conversation_id``, each also ``rendered`` for that customer and the caller."""
    conversation_id = int_arg("conversation_id", 0, 0, 2**63 - 1)
    with current_runtime().database.read() as session:
        items = canned.list_canned(session)
        if not conversation_id:
            return jsonify({"canned_responses": [canned_json(i) for i in items]})
        conversation = get_conversation(session, conversation_id)
        customer = summary(session, conversation.customer_id).customer
        agent = current_agent()
        context = canned.Context(customer.display_name or "", agent.name if agent else "", conversation.subject or "")
        return jsonify({"canned_responses": [canned_json(i, canned.render(i.text, context)) for i in items]})


@api.post("/canned-responses")
@requires("replies.send")
def create_canned() -> ResponseReturnValue:
    data = json_body()
    try:
        with current_runtime().database.write() as session:
            item = canned.create_canned(session, shortcut=data.get("shortcut"), title=data.get("title"),
                                        text=data.get("text"), actor_id=acting_agent_id())  # fmt: skip
            body = canned_json(item)
    except IntegrityError:
        raise _taken(data.get("shortcut")) from None
    return jsonify(body), 201


@api.patch("/canned-responses/<int:canned_id>")
@requires("replies.send")
def update_canned(canned_id: int) -> ResponseReturnValue:
    """Change the shortcut, title or text; what is left out stays."""
    data = json_body()
    unknown = sorted(set(data) - {"shortcut", "title", "text"})
    if unknown:
        raise ApiError(400, unknown[0], "cannot be changed (shortcut, title, text can)")
    try:
        with current_runtime().database.write() as session:
            item = canned.get_canned(session, canned_id)
            fields = {"shortcut": item.shortcut, "title": item.title, "text": item.text, **data}
            item = canned.update_canned(session, canned_id, **fields, actor_id=acting_agent_id())
            body = canned_json(item)
    except IntegrityError:
        raise _taken(data.get("shortcut")) from None
    return jsonify(body)


@api.delete("/canned-responses/<int:canned_id>")
@requires("replies.send")
def delete_canned(canned_id: int) -> ResponseReturnValue:
    with current_runtime().database.write() as session:
        canned.delete_canned(session, canned_id, actor_id=acting_agent_id())
    return "", 204
