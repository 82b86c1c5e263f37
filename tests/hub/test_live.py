"""Live updates: the feed written with the change, streams that replay what a client missed.

Everything here runs on SQLite and PostgreSQL, against a real stream server
(hub.live.server on a loopback port) read by a real socket client.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import select

from hub import live
from hub.events import Channel, InteractionKind
from hub.ingest import ingest
from hub.live.server import StreamServer, StreamSettings, serving_in_thread
from hub.live.tokens import issue_stream_token
from hub.models import LiveEvent, utcnow
from hub.runtime import Runtime
from tests.hub.events import event
from tests.hub.sse import SseClient

APP_ORIGIN = "http://127.0.0.1:5000"


def _server(runtime: Runtime, **settings: object) -> StreamServer:
    return StreamServer(
        runtime.database,
        StreamSettings(
            secret=runtime.secret_key,
            poll_interval=0.01,
            allowed_origins=(APP_ORIGIN,),
            **settings,  # type: ignore[arg-type]
        ),
    )


@pytest.fixture
def streams(runtime: Runtime) -> Iterator[str]:
    """A stream server on this test's database; yields its base URL."""
    with serving_in_thread(_server(runtime)) as port:
        yield f"http://127.0.0.1:{port}"


def _token(runtime: Runtime, *topics: str, origins: tuple[str, ...] = ()) -> str:
    return issue_stream_token(runtime.secret_key, subject="test", topics=list(topics), origins=origins)


def _wait_for_feed(runtime: Runtime, kind: str, timeout: float = 5.0) -> list[LiveEvent]:
    # The write path announces in its own transaction; events posted to the
    # API are processed by the journal processor a moment after the 202.
    deadline = time.monotonic() + timeout
    while True:
        with runtime.database.read() as session:
            found = list(session.scalars(select(LiveEvent).where(LiveEvent.kind == kind).order_by(LiveEvent.id)))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def test_an_announcement_commits_with_its_change_and_a_rollback_takes_it_back(runtime: Runtime) -> None:
    with runtime.database.read() as session:
        start = live.position(session)
    with runtime.database.write() as session:
        live.publish(session, live.AGENTS, "conversation.assigned", {"conversation_id": 7})

    def aborted() -> None:
        with runtime.database.write() as session:
            live.publish(session, live.AGENTS, "conversation.closed", {"conversation_id": 7})
            raise RuntimeError("request aborted")

    with pytest.raises(RuntimeError):
        aborted()
    with runtime.database.read() as session:
        kinds = [e.kind for e in live.events_after(session, start) if e.data.get("conversation_id") == 7]
    assert kinds == ["conversation.assigned"]


def test_a_new_sms_reaches_an_open_stream_and_the_stream_speaks_sse(
    runtime: Runtime, streams: str, client: FlaskClient, auth: dict[str, str]
) -> None:
    grant = client.get("/api/live/token", headers=auth).get_json()
    assert grant["topics"] == ["agents"]
    stream = SseClient(f"{streams}/live/stream?token={grant['token']}", {"Origin": APP_ORIGIN})
    try:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"
        assert stream.headers["access-control-allow-origin"] == APP_ORIGIN
        [first] = stream.frames(1)
        assert first.retry == 2000

        with runtime.database.write() as session:
            result = ingest(session, event(Channel.SMS, "+14155550100", text="Is my order on its way?"), source="test")
        [created] = stream.events(1)
        assert created["kind"] == "interaction.created"
        assert created["topic"] == "agents"
        assert created["data"]["interaction_id"] == result.interaction_id
        assert created["data"]["channel"] == "sms"
        # The feed carries ids, never message text: what a page shows it fetches with its own rights.
        assert "order" not in str(created)
    finally:
        stream.close()


def test_a_reconnect_replays_what_was_missed_once_and_in_order_even_across_a_server_restart(runtime: Runtime) -> None:
    token = _token(runtime, live.AGENTS)
    server = _server(runtime)
    with serving_in_thread(server) as port:
        stream = SseClient(f"http://127.0.0.1:{port}/live/stream?token={token}")
        stream.frames(1)  # retry:
        with runtime.database.write() as session:
            live.publish(session, live.AGENTS, "seen", {"n": 0})
        [seen] = stream.events(1)
        stream.close()
    # The server is down; changes go on.
    with runtime.database.write() as session:
        for n in (1, 2, 3):
            live.publish(session, live.AGENTS, "missed", {"n": n})
    with serving_in_thread(_server(runtime)) as port:
        again = SseClient(f"http://127.0.0.1:{port}/live/stream?token={token}", {"Last-Event-ID": str(seen["id"])})
        try:
            replayed = again.events(3)
            with runtime.database.write() as session:
                live.publish(session, live.AGENTS, "after", {"n": 4})
            replayed += again.events(1)
            assert again.events(1, timeout=0.3) == []
        finally:
            again.close()
    expected = [("missed", 1), ("missed", 2), ("missed", 3), ("after", 4)]
    assert [(e["kind"], e["data"]["n"]) for e in replayed] == expected
    assert [e["id"] for e in replayed] == sorted(e["id"] for e in replayed)


def test_a_stream_hears_only_its_topics(runtime: Runtime, streams: str) -> None:
    mine = SseClient(f"{streams}/live/stream?token={_token(runtime, live.conversation_topic(1))}")
    try:
        mine.frames(1)
        with runtime.database.write() as session:
            live.publish(session, live.conversation_topic(2), "interaction.created", {"conversation_id": 2})
            live.publish(session, live.AGENTS, "interaction.created", {"conversation_id": 2})
            live.publish(session, live.conversation_topic(1), "interaction.created", {"conversation_id": 1})
        received = mine.events(3, timeout=1.0)
        assert [e["data"]["conversation_id"] for e in received] == [1]
        # Replay obeys the topics too.
        again = SseClient(f"{streams}/live/stream?token={_token(runtime, live.conversation_topic(1))}&last_event_id=0")
        assert [e["data"]["conversation_id"] for e in again.events(3, timeout=1.0)] == [1]
        again.close()
    finally:
        mine.close()


def test_streams_refuse_forged_tokens_and_foreign_origins(runtime: Runtime, streams: str) -> None:
    forged = issue_stream_token("another-secret", subject="x", topics=[live.AGENTS])
    refused = SseClient(f"{streams}/live/stream?token={forged}")
    assert refused.status == 401
    refused.close()
    missing = SseClient(f"{streams}/live/stream")
    assert missing.status == 401
    missing.close()
    foreign = SseClient(
        f"{streams}/live/stream?token={_token(runtime, live.AGENTS)}", {"Origin": "https://evil.example"}
    )
    assert foreign.status == 403
    foreign.close()
    # An origin the token itself names (a chat site's) is allowed.
    site = "https://shop.example"
    token = _token(runtime, live.AGENTS, origins=(site,))
    allowed = SseClient(f"{streams}/live/stream?token={token}", {"Origin": site})
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == site
    allowed.close()


def test_a_client_behind_what_was_pruned_is_told_to_reload(runtime: Runtime, streams: str) -> None:
    with runtime.database.write() as session:
        for n in range(5):
            live.publish(session, live.AGENTS, "old", {"n": n})
    with runtime.database.read() as session:
        first = live.events_after(session, 0, [live.AGENTS])[0].id
    with runtime.database.write() as session:
        assert live.prune(session, timedelta(hours=1), now=utcnow() + timedelta(hours=2)) >= 4
    # Let the stream server's poller read past the surviving newest event first: this test is
    # about a reconnect long after, not about an event fanned out while the client connects.
    time.sleep(0.5)
    stream = SseClient(f"{streams}/live/stream?token={_token(runtime, live.AGENTS)}&last_event_id={first}")
    try:
        [reset] = stream.events(1)
        assert reset["kind"] == "live.reset"
    finally:
        stream.close()


def test_the_write_path_announces_interactions_and_a_ringing_call(runtime: Runtime) -> None:
    with runtime.database.write() as session:
        result = ingest(session, event(Channel.VOICE, "+14155550100", kind=InteractionKind.CALL), source="test")
    [ringing] = _wait_for_feed(runtime, "call.ringing")
    assert ringing.topic == live.AGENTS
    assert ringing.data["interaction_id"] == result.interaction_id
    assert ringing.data["from_address"] == "+14155550100"
    created = _wait_for_feed(runtime, "interaction.created")
    assert {e.topic for e in created} == {live.AGENTS, live.conversation_topic(result.conversation_id or 0)}


def test_open_streams_are_counted_for_the_metrics(runtime: Runtime, streams: str) -> None:
    def open_now() -> float:
        return REGISTRY.get_sample_value("corridor_live_streams") or 0.0

    before = open_now()
    client = SseClient(f"{streams}/live/stream?token={_token(runtime, live.AGENTS)}")
    assert client.status == 200
    deadline = time.monotonic() + 5
    while open_now() < before + 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert open_now() == before + 1
    client.close()
    while open_now() > before and time.monotonic() < deadline + 5:
        time.sleep(0.01)
    assert open_now() == before


def test_a_stop_before_serving_begins_means_it_never_serves(runtime: Runtime) -> None:
    """``corridor run`` killed in its first second: the stream server's parent watch stops it before it serves.

    That stop came before the server had a loop, was dropped, and the orphan then held port 5001 for good.
    """
    server = _server(runtime)
    server.stop()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (asyncio.run(server.serve("127.0.0.1", 0)), done.set()), daemon=True)
    thread.start()
    assert done.wait(5), "the stream server kept serving after it was told to stop"
    assert server.port == 0  # it never bound a port
