"""GDPR erasure and retention: nothing of the person remains, in the tables or in the database files.

The person writes by email and SMS, chats (a visitor later merged into them),
sends an attachment, has a payload that failed to parse, and an identity an
agent added by hand (its value is in the audit log). Another customer shares
one attachment's bytes with them and must keep everything. After the erasure
no marker of the person is anywhere: on SQLite in the bytes of the database,
its inbox and their write-ahead logs (secure_delete, an FTS5 merge and a WAL
checkpoint; the CLI also VACUUMs), on PostgreSQL in any row of any table.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from hub.cli import cli
from hub.erasure import apply_retention
from hub.ingest import record_unparseable
from hub.models import Agent, AuditRecord, Base, Customer, Interaction, JournalEntry, Role, SavedSearch, utcnow
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.hub.events import event_json, post_event

#: Strings that name the person, each found nowhere else.
NAME = "Qqzorblat Quenfis"
EMAIL = "qqzorblat.quenfis@example.com"
PHONE = "+14155550177"
SECRET = "qqsecretword"
FILE = b"qqattachment-bytes-of-the-person"
MARKERS = [b"qqzorblat", b"Qqzorblat", b"quenfis", SECRET.encode(), FILE, PHONE.encode(), b"4155550177"]
SHARED = b"shared brochure bytes, also sent by someone else"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def the_person(client: FlaskClient, runtime: Runtime, auth: dict[str, str]) -> int:
    """The person's history through the real doors; returns their customer id."""
    email = post_event(
        client,
        event_json(
            **{"from": {"address": EMAIL, "name": NAME}},
            subject=f"About {SECRET}",
            text=f"My {SECRET} order",
            attachments=[
                {"filename": "qqzorblat-passport.pdf", "content_base64": _b64(FILE)},
                {"filename": "brochure.pdf", "content_base64": _b64(SHARED)},
            ],
        ),
        auth,
    )
    customer_id: int = email["customer_id"]
    post_event(client, event_json(channel="sms", external_id="SMqq1", **{"from": PHONE}, text=f"sms {SECRET}"), auth)
    sms_customer = client.get(f"/api/customers?phone={PHONE}", headers=auth).json["customers"][0]["id"]
    chat = post_event(
        client, event_json(channel="chat", external_id="chat-qq-1", session="chat-qq", **{"from": "visitor-qq"},
                           text=f"chat {SECRET}"), auth,
    )  # fmt: skip
    for source in (sms_customer, chat["customer_id"]):
        merged = client.post(f"/api/customers/{customer_id}/merge", json={"source_id": source}, headers=auth)
        assert merged.status_code == 200, merged.json
    added = client.post(
        f"/api/customers/{customer_id}/identities", json={"kind": "email", "value": "qqzorblat@work.example"},
        headers=auth,
    )  # fmt: skip
    assert added.status_code == 201
    with runtime.database.write() as session:
        # Agents' saved searches for the person: by address (as the page encodes it) and by customer.
        agent_id = session.scalars(select(Agent.id)).first()
        assert agent_id is not None
        session.add_all([
            SavedSearch(agent_id=agent_id, name="Their mail", arguments=urlencode({"q": EMAIL})),
            SavedSearch(agent_id=agent_id, name="Theirs", arguments=f"q=order&customer={customer_id}"),
            SavedSearch(agent_id=agent_id, name="Refunds", arguments="q=refund&channel=sms"),
            # Their number and address as agents type them: no stored form of either is in the text.
            SavedSearch(agent_id=agent_id, name="Their calls", arguments=urlencode({"q": "(415) 555-0177 late"})),
            SavedSearch(agent_id=agent_id, name="Work", arguments=urlencode({"q": "QQZorblat@WORK.example"})),
            # A number of someone else, read in the same region: not theirs, kept.
            SavedSearch(agent_id=agent_id, name="Neighbour", arguments=urlencode({"q": "(415) 555-0178"})),
        ])  # fmt: skip
        record_unparseable(
            session, source="twilio.message", raw=f"From=%2B{PHONE[1:]}&Body=qqzorblat".encode(),
            content_type="application/x-www-form-urlencoded", error="MessageSid: is required",
        )  # fmt: skip
    return customer_id


def someone_else(client: FlaskClient, auth: dict[str, str]) -> int:
    other = post_event(
        client,
        event_json(
            **{"from": {"address": "bob.other@example.com", "name": "Bob Other"}},
            text="Bob's own words",
            attachments=[{"filename": "brochure.pdf", "content_base64": _b64(SHARED)}],
        ),
        auth,
    )
    customer_id: int = other["customer_id"]
    return customer_id


def database_files(runtime: Runtime) -> list[Path]:
    path = Path(runtime.database.write_engine.url.database or "")
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(path.name.split(".")[0]))


def leftovers(runtime: Runtime) -> list[str]:
    """Where any marker of the person still is: file bytes on SQLite, table rows on PostgreSQL."""
    found = []
    if runtime.database.is_sqlite:
        for path in database_files(runtime):
            data = path.read_bytes()
            found += [f"{path.name}: {m!r}" for m in MARKERS if m in data]
        with runtime.database.read() as session:
            session.execute(text("CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, interaction_fts, 'row')"))
            terms = list(session.scalars(text("SELECT term FROM temp.terms WHERE term LIKE 'qq%'")))
            found += [f"full-text index term {t!r}" for t in terms]
        return found
    with runtime.database.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                data = repr(tuple(row)).encode()
                blobs = b"".join(v for v in row if isinstance(v, bytes))
                found += [f"{table.name}: {m!r}" for m in MARKERS if m in data or m in blobs]
    return found


def test_the_person_is_there_before(client: FlaskClient, runtime: Runtime, auth: dict[str, str]) -> None:
    # The check below can see them: without the erasure, it finds them.
    the_person(client, runtime, auth)
    assert leftovers(runtime)


def test_erase_through_the_cli_leaves_no_trace_and_an_audit_record_of_counts(
    app: Flask, client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    customer_id = the_person(client, runtime, auth)
    other_id = someone_else(client, auth)

    result = CliRunner().invoke(
        cli, ["customer", "erase", str(customer_id), "--yes"], obj=ScriptInfo(create_app=lambda: app),
        catch_exceptions=False,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "3 interactions" in result.output
    assert leftovers(runtime) == []
    assert client.get(f"/api/customers/{customer_id}", headers=auth).status_code == 404
    assert client.get(f"/api/search?q={SECRET}", headers=auth).json["hits"] == []
    # Someone else keeps everything, the shared attachment's bytes too.
    timeline = client.get(f"/api/customers/{other_id}/timeline", headers=auth).json["interactions"]
    [bob] = timeline
    assert bob["text"] == "Bob's own words"
    assert client.get(bob["attachments"][0]["download_url"], headers=auth).data == SHARED
    with runtime.database.read() as session:
        record = session.scalar(select(AuditRecord).where(AuditRecord.action == "customer.erase"))
        assert record is not None
        assert record.details["interactions"] == 3
        assert record.details["customers"] == 3
        assert record.details["saved_searches"] == 4
        # Not about them: kept.
        assert sorted(session.scalars(select(SavedSearch.name))) == ["Neighbour", "Refunds"]


def test_erase_through_the_api_is_for_admins_and_leaves_no_trace(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    customer_id = the_person(client, runtime, auth)
    someone_else(client, auth)
    supervisor = {"Authorization": f"Bearer {make_agent(runtime, Role.SUPERVISOR)}"}
    assert client.post(f"/api/customers/{customer_id}/erase", headers=supervisor).status_code == 403

    response = client.post(f"/api/customers/{customer_id}/erase", headers=auth)

    assert response.status_code == 200, response.json
    assert response.json["erased"]["interactions"] == 3
    assert response.json["erased"]["journal_entries"] >= 4
    assert leftovers(runtime) == []
    assert client.post(f"/api/customers/{customer_id}/erase", headers=auth).status_code == 404
    with runtime.database.read() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 1


def test_retention_deletes_old_journal_payloads_and_interactions(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    old = post_event(client, event_json(occurred_at="2020-01-01T09:00:00Z", text="old words"), auth)
    recent = post_event(client, event_json(text="recent words"), auth)
    later = utcnow() + timedelta(days=40)  # every journal entry is 40 days old by then

    with runtime.database.write() as session:
        done = apply_retention(session, search=runtime.search, journal_days=30, interaction_days=365, now=later)

    assert done.journal_entries == 2
    assert done.interactions == 1
    with runtime.database.read() as session:
        assert session.scalar(select(func.count()).select_from(JournalEntry)) == 0
        ids: list[Any] = list(session.scalars(select(Interaction.id)))
    assert ids == [recent["interaction_id"]]
    assert old["interaction_id"] not in ids
    assert client.get("/api/search?q=old", headers=auth).json["hits"] == []


@pytest.mark.parametrize("setting", ["journal_payload_days", "interaction_days"])
def test_retention_settings_refuse_negative_days(setting: str) -> None:
    from hub import create_app
    from hub.config import SettingsError

    with pytest.raises(SettingsError, match=f"HUB_RETENTION_{setting.upper()}"):
        create_app(overrides={"retention": {setting: -1}}, environ={})
