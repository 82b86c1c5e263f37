"""The dashboard, its CSVs, /api/reports and /api/audit, as a supervisor and as an agent, on both databases.

One customer's story goes through the real write path: Ana emails, an agent
answers two hours later by email, an auto-reply of hers comes back, she calls,
the conversation is closed, and two days later she texts again (a repeat
contact, in a new conversation). The figures the API and the page show are
the ones that story implies.
"""

from __future__ import annotations

import csv
import io

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from hub.customers import add_identity
from hub.events import Channel, Direction, IdentityKind, InteractionKind
from hub.ingest import ingest
from hub.models import Conversation, ConversationStatus, Role
from hub.reports import rollup
from hub.reports.csat import on_conversation_closed
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.hub.console import log_in
from tests.hub.events import at, event

RANGE = {"since": "2026-11-01", "until": "2026-11-30"}


@pytest.fixture
def story(runtime: Runtime) -> int:
    """Ana's story; returns the first conversation's id."""
    with runtime.database.write() as session:
        first = ingest(session, event(Channel.EMAIL, hours=0, subject="Order 48213"), source="test")
        assert first.conversation_id is not None
        ingest(
            session,
            event(Channel.EMAIL, hours=2, direction=Direction.OUTBOUND, conversation_id=first.conversation_id),
            source="test",
        )
        # Her out-of-office answering our reply: not a contact, not a response.
        ingest(
            session,
            event(Channel.EMAIL, hours=2.1, metadata={"auto_reply": True}, opens_conversation=False),
            source="test",
        )
        # Her phone number, linked as an agent would, so her call joins the conversation.
        assert first.customer_id is not None
        add_identity(session, first.customer_id, IdentityKind.PHONE, "+14155550142", actor_id=None, default_region="US")
        ingest(session, event(Channel.VOICE, "+14155550142", hours=5, kind=InteractionKind.CALL), source="test")
    with runtime.database.write() as session:
        session.execute(
            update(Conversation)
            .where(Conversation.id == first.conversation_id)
            .values(status=ConversationStatus.CLOSED.value, closed_at=at(6))
        )
        on_conversation_closed(session, runtime, first.conversation_id)
    with runtime.database.write() as session:
        ingest(session, event(Channel.EMAIL, hours=6 + 48, subject="Still nothing"), source="test")
        while rollup.refresh(session).interactions:
            pass
    return first.conversation_id


def login(client: FlaskClient, runtime: Runtime, role: Role) -> None:
    make_agent(runtime, role, email=f"{role.value}@corridor.test", password="pw-123456")
    answer = log_in(client, f"{role.value}@corridor.test", "pw-123456")
    assert answer.status_code == 302


def test_agents_may_not_see_reports_or_the_audit_trail(client: FlaskClient, runtime: Runtime) -> None:
    token = make_agent(runtime, Role.AGENT, email="api-agent@corridor.test")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/reports/dashboard", headers=headers).status_code == 403
    assert client.get("/api/audit", headers=headers).status_code == 403
    login(client, runtime, Role.AGENT)
    assert client.get("/reports").status_code == 403
    assert client.get("/reports/volume.csv").status_code == 403
    assert client.get("/audit").status_code == 403


def test_the_api_shows_what_the_story_implies(client: FlaskClient, runtime: Runtime, story: int) -> None:
    token = make_agent(runtime, Role.SUPERVISOR)
    body = client.get("/api/reports/dashboard", query_string=RANGE, headers={"Authorization": f"Bearer {token}"}).json
    frt = body["first_response"]["overall"]
    # The clock starts at her email and stops at the agent's reply, not at her auto-reply.
    assert frt == {"count": 1, "median": pytest.approx(7200, abs=1), "p90": pytest.approx(7200, abs=1)}
    assert body["first_response"]["by_channel"]["email"]["count"] == 1
    # The second conversation (her later email) has no answer yet.
    assert body["first_response"]["unanswered"] == 1
    assert body["resolution"]["overall"]["median"] == pytest.approx(6 * 3600, abs=1)
    cross = body["cross_channel"]
    assert cross["conversations"] == 2
    assert cross["paths"] == [["email", 1], ["email>voice", 1]]
    assert cross["multichannel_share"] == pytest.approx(0.5)
    assert cross["resolved"] == 1
    assert cross["first_contact_resolution"] == 0.0  # two contacts before it closed
    assert cross["contacts_per_resolved"] == 2.0
    assert cross["closes"] == 1
    assert cross["repeat_contact_rate"] == 1.0  # she wrote again two days later
    assert body["backlog"]["open"] == 1
    assert body["backlog"]["waiting"] == 1
    inbound = {(v["day"], v["channel"]): v["inbound"] for v in body["volume"]}
    assert inbound == {("2026-11-02", "email"): 1, ("2026-11-02", "voice"): 1, ("2026-11-04", "email"): 1}


def test_bad_filters_get_a_400_naming_the_field(client: FlaskClient, runtime: Runtime) -> None:
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.SUPERVISOR)}"}
    for args, field in (
        ({"since": "yesterday"}, "since"),
        ({"channel": "fax"}, "channel"),
        ({"agent": "bob"}, "agent"),
        ({"since": "2026-12-01", "until": "2026-11-01"}, "since"),
        ({"preset": "1y"}, "preset"),
    ):
        answer = client.get("/api/reports/dashboard", query_string=args, headers=headers)
        assert answer.status_code == 400, args
        assert answer.json["error"]["field"] == field
    assert client.get("/api/audit", query_string={"cursor": "nonsense"}, headers=headers).status_code == 400
    assert (
        client.get("/api/audit", query_string={"customer": "x"}, headers=headers).json["error"]["field"] == "customer"
    )


def test_the_dashboard_page_draws_accessible_charts_with_csvs(
    client: FlaskClient, runtime: Runtime, story: int
) -> None:
    login(client, runtime, Role.SUPERVISOR)
    page = client.get("/reports", query_string=RANGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('<svg class="chart" role="img"') == 5  # no agent wrote a reply: no by-agent charts
    assert '<title id="frt-title">First response time by channel</title>' in html
    assert "email → voice" in html
    answer = client.get("/reports/first_response.csv", query_string=RANGE)
    assert answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == {"group": "all", "name": "", "conversations": "1", "median_hours": "2.00", "p90_hours": "2.00"}
    paths = list(csv.reader(io.StringIO(client.get("/reports/paths.csv", query_string=RANGE).get_data(as_text=True))))
    assert paths == [["path", "conversations"], ["email", "1"], ["email → voice", "1"]]
    # Every download is in the audit trail: who, which chart, which filters, how many rows.
    trail = client.get("/audit", query_string={"action": "export"}).get_data(as_text=True)
    assert trail.count("<td>export</td>") == 2
    assert "paths" in trail


def test_the_audit_trail_filters_and_pages(client: FlaskClient, runtime: Runtime, auth: dict[str, str]) -> None:
    from hub.customers import audit

    with runtime.database.write() as session:
        for n in range(5):
            audit(session, None, "customer.view", "customer", 7, n=n)
        audit(session, None, "customer.merge", "customer", 8, source_id=9)
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.SUPERVISOR)}"}
    first = client.get("/api/audit", query_string={"customer": 7, "limit": 3}, headers=headers).json
    assert [e["details"]["n"] for e in first["entries"]] == [4, 3, 2]
    rest = client.get("/api/audit", query_string={"customer": 7, "cursor": first["next_cursor"]}, headers=headers).json
    assert [e["details"]["n"] for e in rest["entries"]] == [1, 0]
    assert rest["next_cursor"] is None
    family = client.get("/api/audit", query_string={"action": "customer."}, headers=headers).json["entries"]
    assert len(family) == 6
    merges = client.get("/api/audit", query_string={"action": "customer.merge"}, headers=headers).json["entries"]
    assert [(e["target"]["id"], e["details"]) for e in merges] == [(8, {"source_id": 9})]
    with runtime.database.read() as session:
        assert session.scalar(select(Conversation.id)) is None


def test_looking_at_a_customer_through_the_api_is_in_the_audit_trail(
    client: FlaskClient, runtime: Runtime, story: int
) -> None:
    token = make_agent(runtime, Role.SUPERVISOR)
    headers = {"Authorization": f"Bearer {token}"}
    with runtime.database.read() as session:
        customer_id = session.get(Conversation, story).customer_id  # type: ignore[union-attr]
    assert client.get(f"/api/customers/{customer_id}", headers=headers).status_code == 200
    assert client.get(f"/api/customers/{customer_id}/timeline", headers=headers).status_code == 200
    entries = client.get("/api/audit", query_string={"customer": customer_id}, headers=headers).json["entries"]
    views = [(e["action"], e["details"]["via"], e["actor"]["name"]) for e in entries if e["action"] == "customer.view"]
    assert views == [("customer.view", "api.timeline", "Supervisor"), ("customer.view", "api.customer", "Supervisor")]


def test_audit_records_older_than_the_retention_go(make_app: object) -> None:
    from datetime import timedelta

    from flask import Flask

    from hub.models import AuditRecord, utcnow
    from hub.reports import update_reports

    app: Flask = make_app(audit={"retention_days": 30})  # type: ignore[operator]
    runtime: Runtime = app.extensions["corridor"]
    with runtime.database.write() as session:
        session.add(AuditRecord(at=utcnow() - timedelta(days=31), action="login", target_type="agent", target_id=1))
        session.add(AuditRecord(at=utcnow() - timedelta(days=29), action="login", target_type="agent", target_id=2))
    update_reports(runtime.database, runtime.settings)
    with runtime.database.read() as session:
        assert session.scalars(select(AuditRecord.target_id)).all() == [2]
