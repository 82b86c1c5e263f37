"""Listings integrators page through: conversations, interactions by external id, the journal by status."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from hub.events import Channel
from hub.ingest import ingest_many
from hub.models import Agent, Conversation, Interaction, JournalEntry, JournalStatus, Role, utcnow
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.hub.events import event, event_json, post_event


def _seed(runtime: Runtime) -> dict[str, int]:
    """Three customers' conversations: Ana by email, Bea by chat, Cai by SMS, an hour apart."""
    with runtime.database.write() as session:
        ingest_many(
            session,
            [
                event(Channel.EMAIL, "ana@example.com", hours=0, external_id="<a1@mail.example.com>"),
                event(Channel.CHAT, "visitor-7", hours=1, session="chat-7"),
                event(Channel.SMS, "+14155550123", hours=2, external_id="SM0123"),
            ],
            source="test",
        )
    with runtime.database.read() as session:
        rows = {
            r.channel: r
            for r in session.execute(select(Interaction.channel, Interaction.conversation_id, Interaction.customer_id))
        }
    return {
        "ana": rows["email"].conversation_id,
        "bea": rows["chat"].conversation_id,
        "cai": rows["sms"].conversation_id,
        "ana_customer": rows["email"].customer_id,
    }


def _ids(client: FlaskClient, query: str, headers: dict[str, str]) -> list[int]:
    response = client.get(f"/api/conversations{query}", headers=headers)
    assert response.status_code == 200, response.json
    return [c["id"] for c in response.json["conversations"]]


def test_conversations_filter_by_status_customer_assignee_and_channel(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    ids = _seed(runtime)
    with runtime.database.write() as session:
        agent_id = session.scalar(select(Agent.id))
        session.execute(update(Conversation).where(Conversation.id == ids["bea"]).values(assignee_id=agent_id))
        session.execute(update(Conversation).where(Conversation.id == ids["cai"]).values(status="closed"))

    # Most recent activity first.
    assert _ids(client, "", auth) == [ids["cai"], ids["bea"], ids["ana"]]
    assert _ids(client, "?status=open", auth) == [ids["bea"], ids["ana"]]
    assert _ids(client, "?status=closed,pending", auth) == [ids["cai"]]
    assert _ids(client, f"?customer={ids['ana_customer']}", auth) == [ids["ana"]]
    assert _ids(client, f"?assignee={agent_id}", auth) == [ids["bea"]]
    assert _ids(client, "?assignee=none", auth) == [ids["cai"], ids["ana"]]
    assert _ids(client, "?channel=chat", auth) == [ids["bea"]]
    assert _ids(client, "?since=2026-11-02T10:30:00Z", auth) == [ids["cai"]]
    for query, field in [
        ("?status=done", "status"),
        ("?channel=fax", "channel"),
        ("?assignee=me", "assignee"),
        ("?customer=x", "customer"),
        ("?cursor=nope", "cursor"),
        ("?limit=0", "limit"),
        ("?since=yesterday", "since"),
    ]:
        response = client.get(f"/api/conversations{query}", headers=auth)
        assert (response.status_code, response.json["error"]["field"]) == (400, field), query
    assert client.get("/api/conversations?customer=999", headers=auth).status_code == 404


def test_conversations_page_by_keyset_without_repeats(client: FlaskClient, runtime: Runtime) -> None:
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}
    with runtime.database.write() as session:
        ingest_many(session, [event(Channel.SMS, f"+1415555{i:04d}", hours=i % 3) for i in range(7)], source="test")
    seen: list[int] = []
    cursor = ""
    pages = 0
    while True:
        page = client.get(f"/api/conversations?limit=3{cursor}", headers=headers).json
        seen += [c["id"] for c in page["conversations"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert pages == 3
    assert sorted(seen) == sorted(set(seen))
    assert len(seen) == 7


def test_an_interaction_is_found_by_its_external_id(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    _seed(runtime)
    found = client.get("/api/interactions?channel=sms&external_id=SM0123", headers=auth)
    assert found.status_code == 200
    [interaction] = found.json["interactions"]
    assert (interaction["channel"], interaction["external_id"], interaction["from"]) == (
        "sms",
        "SM0123",
        "+14155550123",
    )
    # The same id on another channel is another interaction (none here).
    assert client.get("/api/interactions?channel=email&external_id=SM0123", headers=auth).json["interactions"] == []
    email = client.get("/api/interactions", query_string={"channel": "email", "external_id": "<a1@mail.example.com>"},
                       headers=auth).json["interactions"]  # fmt: skip
    assert [i["external_id"] for i in email] == ["<a1@mail.example.com>"]
    for query, field in [
        ("?external_id=SM0123", "channel"),
        ("?channel=sms", "external_id"),
        ("?channel=x&external_id=1", "channel"),
    ]:
        response = client.get(f"/api/interactions{query}", headers=auth)
        assert (response.status_code, response.json["error"]["field"]) == (400, field)


def test_journal_entries_by_status_are_for_admins(app: Flask, runtime: Runtime, auth: dict[str, str]) -> None:
    client = app.test_client()
    post_event(client, event_json(), auth)
    with runtime.database.write() as session:
        session.add_all(
            JournalEntry(source="twilio.message", channel="sms", external_id=f"SMbad{i}", received_at=i_time,
                         content_type="application/x-www-form-urlencoded", payload=b"Body=%ZZ", context={},
                         status=JournalStatus.FAILED, error="bad percent-escape", attempts=1)
            for i, i_time in enumerate([utcnow()] * 3)
        )  # fmt: skip
    failed = client.get("/api/journal?limit=2", headers=auth).json
    assert [e["status"] for e in failed["entries"]] == ["failed", "failed"]
    assert failed["entries"][0]["error"] == "bad percent-escape"
    rest = client.get(f"/api/journal?limit=2&cursor={failed['next_cursor']}", headers=auth).json
    assert len(rest["entries"]) == 1
    assert rest["next_cursor"] is None
    processed = client.get("/api/journal?status=processed", headers=auth).json["entries"]
    assert [(e["source"], e["channel"]) for e in processed] == [("api", "email")]
    assert client.get("/api/journal?status=lost", headers=auth).json["error"]["field"] == "status"
    supervisor = {"Authorization": f"Bearer {make_agent(runtime, Role.SUPERVISOR)}"}
    assert client.get("/api/journal", headers=supervisor).status_code == 403
