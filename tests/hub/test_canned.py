"""Canned responses through the API: placeholders checked when saved, filled in for the conversation at hand."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.events import Channel
from hub.models import AuditRecord, Interaction, Role
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.hub.events import event, put


def test_snippets_are_checked_saved_and_rendered_for_a_conversation(runtime: Runtime, client: FlaskClient) -> None:
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT, email='priya@corridor.test')}"}
    put(runtime, event(Channel.EMAIL, "maria@example.com", name="Maria Keller", subject="Order 48213", text="Late"),
        event(Channel.SMS, "+14155550142", text="no name here"))  # fmt: skip
    with runtime.database.read() as session:
        named, unnamed = session.scalars(select(Interaction.conversation_id).order_by(Interaction.id)).all()

    text = "Hi {{customer.first_name}}, about {{ conversation.subject }}: shipped. {{agent.name}}"
    created = client.post("/api/canned-responses", headers=headers,
                          json={"shortcut": "/Shipped", "title": "Shipped", "text": text})  # fmt: skip
    assert created.status_code == 201, created.json
    assert created.json["shortcut"] == "shipped"  # typed with its slash and a capital: kept as it is typed later

    # A typo in a placeholder is refused with its name, not sent to a customer as braces.
    typo = client.post("/api/canned-responses", headers=headers,
                       json={"shortcut": "oops", "title": "Oops", "text": "Hi {{customer.frist_name}}"})  # fmt: skip
    assert typo.status_code == 400
    assert typo.json["error"]["field"] == "text"
    assert "{{customer.frist_name}}" in typo.json["error"]["message"]
    taken = client.post("/api/canned-responses", headers=headers,
                        json={"shortcut": "shipped", "title": "Again", "text": "x"})  # fmt: skip
    assert taken.status_code == 409
    assert taken.json["error"]["field"] == "shortcut"
    bad = client.post(
        "/api/canned-responses", headers=headers, json={"shortcut": "two words", "title": "x", "text": "x"}
    )
    assert (bad.status_code, bad.json["error"]["field"]) == (400, "shortcut")

    [item] = client.get(f"/api/canned-responses?conversation_id={named}", headers=headers).json["canned_responses"]
    assert item["rendered"] == "Hi Maria, about Order 48213: shipped. Agent"
    [item] = client.get(f"/api/canned-responses?conversation_id={unnamed}", headers=headers).json["canned_responses"]
    assert item["rendered"].startswith("Hi there, about ")
    assert "rendered" not in client.get("/api/canned-responses", headers=headers).json["canned_responses"][0]

    changed = client.patch(f"/api/canned-responses/{created.json['id']}", headers=headers, json={"title": "Sent"})
    assert (changed.json["title"], changed.json["text"]) == (
        "Sent",
        text.replace("{{ conversation.subject }}", "{{ conversation.subject }}"),
    )
    assert client.patch(f"/api/canned-responses/{created.json['id']}", headers=headers,
                        json={"author": 1}).status_code == 400  # fmt: skip
    assert client.delete(f"/api/canned-responses/{created.json['id']}", headers=headers).status_code == 204
    assert client.get("/api/canned-responses", headers=headers).json["canned_responses"] == []
    with runtime.database.read() as session:
        actions = list(session.scalars(select(AuditRecord.action).where(AuditRecord.target_type == "canned_response")))
    assert actions == ["canned.create", "canned.update", "canned.delete"]
