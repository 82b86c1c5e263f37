"""Live both ways through the real stream server: replies reach the visitor's stream, and only theirs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.live.server import StreamServer, StreamSettings, serving_in_thread
from hub.models import Interaction
from hub.runtime import Runtime
from tests.connectors.webchat.conftest import SITE_ORIGIN, say, start
from tests.hub.sse import SseClient


@pytest.fixture
def streams(runtime: Runtime) -> Iterator[int]:
    server = StreamServer(runtime.database, StreamSettings(secret=runtime.secret_key, poll_interval=0.01))
    with serving_in_thread(server) as port:
        yield port


def _open(visitor: dict[str, Any], port: int, last: int | None = None) -> SseClient:
    stream = visitor["stream"]
    after = stream["position"] if last is None else last
    path = urlsplit(stream["url"]).path
    client = SseClient(f"http://127.0.0.1:{port}{path}?token={stream['token']}&last_event_id={after}",
                       {"Origin": "http://localhost"})  # fmt: skip
    assert client.status == 200
    client.frames(1)  # retry:
    return client


def _conversation(runtime: Runtime, text: str) -> int:
    runtime.journal.drain()
    with runtime.database.read() as session:
        found = session.scalar(select(Interaction.conversation_id).where(Interaction.text == text))
    assert found is not None
    return found


def test_an_agents_chat_reply_reaches_the_visitors_stream_and_no_other_visitors(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str], streams: int
) -> None:
    ana, bob = start(client), start(client)
    say(client, ana["visitor_token"], "Ana here", "m-1")
    say(client, bob["visitor_token"], "Bob here", "m-1")
    ana_stream, bob_stream = _open(ana, streams), _open(bob, streams)
    try:
        conversation = _conversation(runtime, "Ana here")
        answer = client.post(
            f"/api/conversations/{conversation}/replies", json={"channel": "chat", "text": "Hi Ana!"}, headers=auth
        )
        assert answer.status_code == 201, answer.json
        assert answer.json["status"] == "sent"
        [reply] = [e for e in ana_stream.events(3, timeout=2) if e["kind"] == "chat.message"]
        assert reply["data"]["text"] == "Hi Ana!"
        assert reply["data"]["direction"] == "outbound"
        assert [e for e in bob_stream.events(3, timeout=0.5) if e["kind"] == "chat.message"] == []
        # A reload shows it once, in order, with the visitor's own message.
        history = start(client, token=ana["visitor_token"])["messages"]
        assert [(m["direction"], m["text"]) for m in history] == [("inbound", "Ana here"), ("outbound", "Hi Ana!")]
        assert [m["text"] for m in start(client, token=bob["visitor_token"])["messages"]] == ["Bob here"]
    finally:
        ana_stream.close()
        bob_stream.close()


def test_a_visitors_stream_token_opens_only_their_topic(runtime: Runtime, client: FlaskClient, streams: int) -> None:
    from hub.live.tokens import read_stream_token

    ana, bob = start(client), start(client)
    grant = read_stream_token(runtime.secret_key, ana["stream"]["token"], 600)
    other = read_stream_token(runtime.secret_key, bob["stream"]["token"], 600)
    assert len(grant.topics) == 1
    assert grant.topics != other.topics
    assert not any(t == "agents" or t.startswith("conversation:") for t in grant.topics)
    # A visitor token from the page does not open a stream.
    forged = SseClient(f"http://127.0.0.1:{streams}/live/stream?token={ana['visitor_token']}")
    assert forged.status == 401
    forged.close()


def test_a_reply_while_the_stream_is_down_is_replayed_once(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    visitor = start(client)
    say(client, visitor["visitor_token"], "Still there?", "m-1")
    conversation = _conversation(runtime, "Still there?")
    server = StreamServer(runtime.database, StreamSettings(secret=runtime.secret_key, poll_interval=0.01))
    with serving_in_thread(server) as port:
        first = _open(visitor, port)
        client.post(f"/api/conversations/{conversation}/replies", json={"channel": "chat", "text": "One"}, headers=auth)
        [one] = [e for e in first.events(2, timeout=2) if e["kind"] == "chat.message"]
        first.close()
    client.post(f"/api/conversations/{conversation}/replies", json={"channel": "chat", "text": "Two"}, headers=auth)
    server = StreamServer(runtime.database, StreamSettings(secret=runtime.secret_key, poll_interval=0.01))
    with serving_in_thread(server) as port:
        again = _open(start(client, token=visitor["visitor_token"]), port, last=one["id"])
        try:
            texts = [e["data"]["text"] for e in again.events(5, timeout=1) if e["kind"] == "chat.message"]
        finally:
            again.close()
    assert texts == ["Two"]


def test_origin_header_is_checked_on_every_call(client: FlaskClient) -> None:
    token = start(client)["visitor_token"]
    answer = client.post(
        "/chat/api/shop/messages",
        json={"visitor_token": token, "client_id": "m-1", "text": "hi"},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    assert say(client, token, "hi", "m-1").headers["Access-Control-Allow-Origin"] == SITE_ORIGIN


def test_an_agent_typing_and_reading_reaches_only_the_visitors_of_that_conversation(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str], streams: int
) -> None:
    ana, bob = start(client), start(client)
    say(client, ana["visitor_token"], "Ana again", "m-1")
    say(client, bob["visitor_token"], "Bob again", "m-1")
    conversation = _conversation(runtime, "Ana again")
    ana_stream, bob_stream = _open(ana, streams), _open(bob, streams)
    try:
        assert client.post(f"/api/conversations/{conversation}/chat/typing", headers=auth).json == {"visitors": 1}
        read = client.post(f"/api/conversations/{conversation}/chat/read", json={"interaction_id": 1}, headers=auth)
        assert read.status_code == 200
        kinds = [e["kind"] for e in ana_stream.events(2, timeout=2)]
        assert kinds == ["chat.typing", "chat.read"]
        assert bob_stream.events(1, timeout=0.5) == []
        bad = client.post(f"/api/conversations/{conversation}/chat/read", json={"interaction_id": "x"}, headers=auth)
        assert bad.status_code == 400
        assert bad.json["error"]["field"] == "interaction_id"
    finally:
        ana_stream.close()
        bob_stream.close()


def test_a_long_answer_of_many_chat_replies_still_reaches_the_visitor(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    visitor = start(client)
    say(client, visitor["visitor_token"], "Tell me everything", "m-1")
    conversation = _conversation(runtime, "Tell me everything")
    # More replies in a row than a reply carries references to earlier interactions.
    statuses = [
        client.post(
            f"/api/conversations/{conversation}/replies", json={"channel": "chat", "text": f"Part {n}"}, headers=auth
        ).json["status"]
        for n in range(25)
    ]
    assert set(statuses) == {"sent"}
    assert len(start(client, token=visitor["visitor_token"])["messages"]) == 26
