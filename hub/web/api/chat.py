"""Chat signals from agents: typing and read receipts, to the visitors of a conversation's chats.

They go to each chat visitor's own live topic (``hub.live.chat_topic``),
never to the conversation's: a conversation may hold more than one visitor's
chat (two people who typed the same email), and neither may hear the other's.
"""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from hub.events import Channel, Direction
from hub.live import Announcement, chat_topic, publish_many
from hub.models import Agent, Conversation, Interaction
from hub.runtime import current_runtime
from hub.web.access import requires
from hub.web.api.args import acting_agent_id, json_body
from hub.web.api.blueprint import api
from hub.web.errors import ApiError


def _announce(conversation_id: int, kind: str, data: dict[str, object]) -> ResponseReturnValue:
    with current_runtime().database.write() as session:
        if session.get(Conversation, conversation_id) is None:
            raise ApiError(404, "conversation_id", f"no conversation {conversation_id}")
        sessions = sorted(
            {
                key
                for key in session.scalars(
                    select(Interaction.session_key).where(
                        Interaction.conversation_id == conversation_id,
                        Interaction.channel == Channel.CHAT.value,
                        Interaction.direction == Direction.INBOUND.value,
                        Interaction.session_key.is_not(None),
                    )
                )
                if key
            }
        )
        agent = session.get(Agent, acting_agent_id()) if acting_agent_id() is not None else None
        who = agent.name.split()[0] if agent is not None and agent.name else "Support"
        publish_many(session, [Announcement(chat_topic(s), kind, {**data, "who": who}) for s in sessions])
    return jsonify({"visitors": len(sessions)})


@api.post("/conversations/<int:conversation_id>/chat/typing")
@requires("replies.send")
def post_chat_typing(conversation_id: int) -> ResponseReturnValue:
    """The agent is typing a chat reply: the visitor's widget says so for a few seconds."""
    return _announce(conversation_id, "chat.typing", {})


@api.post("/conversations/<int:conversation_id>/chat/read")
@requires("replies.send")
def post_chat_read(conversation_id: int) -> ResponseReturnValue:
    """The agent has read the visitor's messages up to ``interaction_id``: the widget marks them seen."""
    seen = json_body().get("interaction_id")
    if not isinstance(seen, int) or isinstance(seen, bool):
        raise ApiError(400, "interaction_id", "must be an integer")
    return _announce(conversation_id, "chat.read", {"interaction_id": seen})
