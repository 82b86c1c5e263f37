"""Conversations: one conversation oldest first, and agents' replies on any channel."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from hub import conversations, replies
from hub.models import Conversation
from hub.runtime import current_runtime
from hub.timeline import conversation_interactions
from hub.web.access import current_agent, requires
from hub.web.api.args import json_body
from hub.web.api.blueprint import api
from hub.web.api.shapes import conversation_json, page_json
from hub.web.errors import ApiError


@api.get("/conversations/<int:conversation_id>")
@requires("customers.read")
def get_conversation(conversation_id: int) -> ResponseReturnValue:
    with current_runtime().database.read() as session:
        page = conversation_interactions(session, conversation_id)
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        return jsonify({**conversation_json(conversation), "interactions": page_json(page)})


@api.post("/conversations/<int:conversation_id>/replies")
@requires("replies.send")
def post_reply(conversation_id: int) -> ResponseReturnValue:
    """An agent's reply on any channel (default: the one the customer last used); sent after it is stored."""
    data = json_body()
    if data.get("text") is None:
        raise ApiError(400, "text", "is required")
    text, subject, channel = data["text"], data.get("subject"), data.get("channel")
    if not isinstance(text, str):
        raise ApiError(400, "text", "must be a string")
    if subject is not None and not isinstance(subject, str):
        raise ApiError(400, "subject", "must be a string")
    if channel is not None and not isinstance(channel, str):
        raise ApiError(400, "channel", "must be a string")
    to = data.get("to")
    if to is not None and not isinstance(to, str):
        raise ApiError(400, "to", "must be a string: an address of the customer's or of this conversation")
    runtime = current_runtime()
    senders = runtime.registry.senders
    agent = current_agent()
    assert agent is not None
    with runtime.database.write() as session:
        interaction_id = conversations.reply(
            session, senders, conversation_id, text=text, channel=channel, subject=subject, author=agent, to=to
        )
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
