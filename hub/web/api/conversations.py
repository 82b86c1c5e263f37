"""Conversations: one conversation oldest first, and agents' replies on any channel."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from hub import replies
from hub.events import Channel
from hub.models import Conversation
from hub.runtime import current_runtime
from hub.timeline import conversation_interactions
from hub.web.access import requires
from hub.web.api.args import acting_agent_id, json_body
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
    """An agent's reply on any channel; sent after it is on the timeline."""
    data = json_body()
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
                text=text, subject=subject, author_id=acting_agent_id(),
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
