"""The inbox and conversation actions through the API: what an agent does, and what everyone then sees."""

from __future__ import annotations

import time
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from hub import live
from hub.events import Channel, Direction
from hub.ingest import ingest
from hub.models import AuditRecord, Interaction, Role
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.hub.events import event


def _conversation(runtime: Runtime, sender: str, hours: float, channel: Channel = Channel.EMAIL) -> int:
    with runtime.database.write() as session:
        result = ingest(session, event(channel, sender, hours=hours, text=f"Hello from {sender}"), source="test")
    assert result.conversation_id is not None
    return result.conversation_id


def _feed(runtime: Runtime, kind: str) -> list[dict[str, Any]]:
    with runtime.database.read() as session:
        return [e.as_json() for e in live.events_after(session, 0) if e.kind == kind]


def test_the_inbox_puts_the_longest_waiting_customer_first_and_pages_by_keyset(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    waited_longest = _conversation(runtime, "ana@example.com", hours=0)
    newer = _conversation(runtime, "ben@example.com", hours=5)
    oldest_sms = _conversation(runtime, "+14155550100", hours=2, channel=Channel.SMS)
    answered = _conversation(runtime, "cleo@example.com", hours=1)
    with runtime.database.write() as session:
        reply = event(Channel.EMAIL, "cleo@example.com", hours=1.5, direction=Direction.OUTBOUND)
        ingest(session, reply, source="test")

    page = client.get("/api/inbox", headers=auth).get_json()
    assert [c["id"] for c in page["conversations"]] == [waited_longest, oldest_sms, newer, answered]
    assert page["conversations"][0]["customer_name"]
    assert page["conversations"][0]["last_text"] == "Hello from ana@example.com"
    assert page["conversations"][3]["waiting_since"] is None
    assert page["counts"]["open"] == {"all": 4, "mine": 0, "unassigned": 4}

    # Two at a time, the same order, nothing twice.
    seen: list[int] = []
    cursor = ""
    while True:
        chunk = client.get(f"/api/inbox?limit=2&cursor={cursor}", headers=auth).get_json()
        seen += [c["id"] for c in chunk["conversations"]]
        cursor = chunk["next_cursor"]
        if not cursor:
            break
    assert seen == [waited_longest, oldest_sms, newer, answered]

    by_activity = client.get("/api/inbox?order=activity", headers=auth).get_json()
    assert by_activity["conversations"][0]["id"] == newer
    sms_only = client.get("/api/inbox?channel=sms", headers=auth).get_json()
    assert [c["id"] for c in sms_only["conversations"]] == [oldest_sms]
    assert sms_only["conversations"][0]["channels"] == ["sms"]
    bad = client.get("/api/inbox?view=everything", headers=auth)
    assert bad.status_code == 400
    assert bad.get_json()["error"]["field"] == "view"


def test_take_assign_unassign_and_status_change_publish_and_audit(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    conversation_id = _conversation(runtime, "ana@example.com", hours=0)
    make_agent(runtime, Role.AGENT, email="bo@corridor.test")
    me = client.get("/api/me", headers=auth).get_json()

    taken = client.post(f"/api/conversations/{conversation_id}/take", headers=auth)
    assert taken.status_code == 200
    assert taken.get_json()["assignee_id"] == me["id"]
    mine = client.get("/api/inbox?view=mine", headers=auth).get_json()
    assert [c["id"] for c in mine["conversations"]] == [conversation_id]
    assert mine["counts"]["open"]["mine"] == 1

    nobody = client.post(f"/api/conversations/{conversation_id}/assign", json={"assignee_id": None}, headers=auth)
    assert nobody.get_json()["assignee_id"] is None
    unknown = client.post(f"/api/conversations/{conversation_id}/assign", json={"assignee_id": 999}, headers=auth)
    assert unknown.status_code == 400
    assert unknown.get_json()["error"] == {
        "status": 400, "field": "assignee_id", "message": "there is no active agent 999",
    }  # fmt: skip

    for status in ("pending", "closed", "open"):
        answer = client.post(f"/api/conversations/{conversation_id}/status", json={"status": status}, headers=auth)
        assert answer.status_code == 200
        assert answer.get_json()["status"] == status
    wrong = client.post(f"/api/conversations/{conversation_id}/status", json={"status": "done"}, headers=auth)
    assert (wrong.status_code, wrong.get_json()["error"]["field"]) == (400, "status")
    missing = client.post("/api/conversations/4040/status", json={"status": "closed"}, headers=auth)
    assert missing.status_code == 404

    assigned = _feed(runtime, "conversation.assigned")
    assert [e["data"]["assignee_id"] for e in assigned] == [me["id"], None]
    statuses = _feed(runtime, "conversation.status")
    # Each change on the agents' topic and on the conversation's own (the chat visitor's).
    assert [(e["topic"], e["data"]["status"]) for e in statuses] == [
        (live.AGENTS, "pending"), (live.conversation_topic(conversation_id), "pending"),
        (live.AGENTS, "closed"), (live.conversation_topic(conversation_id), "closed"),
        (live.AGENTS, "open"), (live.conversation_topic(conversation_id), "open"),
    ]  # fmt: skip
    with runtime.database.read() as session:
        actions = [r.action for r in session.scalars(select(AuditRecord).order_by(AuditRecord.id))]
    assert actions.count("conversation.assign") == 2
    assert actions.count("conversation.status") == 3


def test_a_note_is_stored_with_its_author_and_never_reaches_the_customers_topic(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    conversation_id = _conversation(runtime, "ana@example.com", hours=0)
    empty = client.post(f"/api/conversations/{conversation_id}/notes", json={"text": "  "}, headers=auth)
    assert (empty.status_code, empty.get_json()["error"]["field"]) == (400, "text")

    answer = client.post(
        f"/api/conversations/{conversation_id}/notes", json={"text": "Called DHL, waiting."}, headers=auth
    )
    assert answer.status_code == 201
    interaction_id = answer.get_json()["interaction_id"]
    with runtime.database.read() as session:
        note = session.get(Interaction, interaction_id)
        assert note is not None
        assert (note.kind, note.direction, note.conversation_id) == ("note", "internal", conversation_id)
        assert note.author_id == client.get("/api/me", headers=auth).get_json()["id"]
        assert note.provider_metadata["agent"] == "Admin"
    # Announced by the write path in the note's transaction (the API's reply is sent after it).
    deadline = time.monotonic() + 5
    while not (announced := [e for e in _feed(runtime, "interaction.created") if e["data"]["kind"] == "note"]):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.1)
    assert [e["topic"] for e in _feed(runtime, "interaction.created") if e["data"]["kind"] == "note"] == [live.AGENTS]
    assert announced[0]["data"]["interaction_id"] == interaction_id


def test_a_reply_without_a_channel_the_customer_can_be_reached_on_says_so(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    conversation_id = _conversation(runtime, "ana@example.com", hours=0)
    # No connector sends anything in this app.
    answer = client.post(f"/api/conversations/{conversation_id}/replies", json={"text": "Hello"}, headers=auth)
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["field"] == "channel"
    assert "add one first" in error["message"]
