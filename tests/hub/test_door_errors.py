"""Requests a probe sends: each is a 4xx naming what is wrong, never a 500 (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text, update
from sqlalchemy.exc import SQLAlchemyError

from hub.db import failure_text
from hub.models import JournalEntry, Role
from hub.runtime import Runtime
from tests.conftest import AppFactory, make_agent
from tests.hub.console import form_token, log_in
from tests.hub.events import event_json, post_event

HUGE = "99999999999999999999"  # above 2**63 - 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", f"/api/customers/{HUGE}"),
        ("get", f"/api/customers/{2**63}/timeline"),
        ("get", f"/api/conversations/{HUGE}"),
        ("get", f"/api/journal/{HUGE}"),
        ("delete", f"/api/customers/1/identities/{HUGE}"),
        ("post", f"/api/merges/{HUGE}/undo"),
    ],
)
def test_an_id_no_database_key_holds_in_a_path_is_a_404(
    client: FlaskClient, auth: dict[str, str], method: str, path: str
) -> None:
    response = getattr(client, method)(path, headers=auth)
    assert response.status_code == 404


def test_an_id_no_database_key_holds_in_a_body_or_argument_is_a_400(client: FlaskClient, auth: dict[str, str]) -> None:
    customer_id = post_event(client, event_json(), auth)["customer_id"]
    merge = client.post(f"/api/customers/{customer_id}/merge", json={"source_id": 2**64}, headers=auth)
    assert (merge.status_code, merge.json["error"]["field"]) == (400, "source_id")
    search = client.get(f"/api/search?q=order&customer={HUGE}", headers=auth)
    assert (search.status_code, search.json["error"]["field"]) == (400, "customer")
    before_utc = client.get("/api/search?q=order&since=0001-01-01T00:00:00%2B05:00", headers=auth)
    assert (before_utc.status_code, before_utc.json["error"]["field"]) == (400, "since")


def test_json_nested_a_thousand_deep_is_a_400(client: FlaskClient, auth: dict[str, str]) -> None:
    deep = "[" * 1000 + "]" * 1000
    body = json.dumps(event_json(metadata={"x": 1})).replace('{"x": 1}', '{"x": ' + deep + "}")
    response = client.post("/api/events", data=body, content_type="application/json", headers=auth)
    assert (response.status_code, response.json["error"]["field"]) in {(400, "metadata"), (400, "body")}
    bomb = "[" * 100_000 + "]" * 100_000
    response = client.post("/api/events", data=bomb, content_type="application/json", headers=auth)
    assert (response.status_code, response.json["error"]["field"]) == (400, "body")
    response = client.post("/api/merges/1/undo", data=bomb, content_type="application/json", headers=auth)
    assert response.status_code in {400, 404}


@pytest.mark.parametrize(
    ("address", "channel"),
    [("not-an-email", "email"), ("12", "sms"), ("ana@", "email"), ("++", "voice")],
)
def test_an_unusable_sender_address_through_the_api_is_a_400_naming_it(
    client: FlaskClient, auth: dict[str, str], address: str, channel: str
) -> None:
    response = client.post("/api/events", json=event_json(channel=channel, **{"from": address}), headers=auth)
    assert response.status_code == 400, response.json
    assert response.json["error"]["field"] == "from.address"
    outbound = event_json(channel=channel, direction="outbound", to=[address])
    del outbound["from"]
    response = client.post("/api/events", json=outbound, headers=auth)
    assert (response.status_code, response.json["error"]["field"]) == (400, "to[0].address")


@pytest.mark.parametrize(
    "next_",
    [
        "/%09/evil.example/",
        "/%0A/evil.example/",
        "//evil.example/",
        "/%5Cevil.example",
        "https://evil.example/",
        "/\\/evil.example",
        "javascript:alert(1)",
        "/customers%0D%0ASet-Cookie:x=1",
    ],
)
def test_after_login_only_a_path_on_this_site_is_followed(client: FlaskClient, runtime: Runtime, next_: str) -> None:
    make_agent(runtime, Role.AGENT, email="mia@corridor.test", password="correct horse")
    data = {"email": "mia@corridor.test", "password": "correct horse", "csrf_token": form_token(client)}
    response = client.post(f"/login?next={next_}", data=data)
    assert response.status_code == 302
    assert response.headers["Location"] == "/inbox"  # the console opens on the inbox


def test_after_login_a_local_path_is_followed(client: FlaskClient, runtime: Runtime) -> None:
    make_agent(runtime, Role.AGENT, email="mia@corridor.test", password="correct horse")
    data = {"email": "mia@corridor.test", "password": "correct horse", "csrf_token": form_token(client)}
    response = client.post("/login?next=/customers/7%3Fcursor%3Dabc", data=data)
    assert response.headers["Location"] == "/customers/7?cursor=abc"


def test_the_console_search_and_the_login_form_with_a_nul_are_a_400(client: FlaskClient, runtime: Runtime) -> None:
    make_agent(runtime, Role.AGENT, email="mia@corridor.test", password="correct horse")
    nul = {"email": "mia\x00@corridor.test", "password": "x", "csrf_token": form_token(client)}
    assert client.post("/login", data=nul).status_code == 400
    log_in(client, "mia@corridor.test", "correct horse")
    assert client.get("/customers?q=a%00b").status_code == 400


def test_an_sms_reply_without_a_twilio_number_is_a_422_naming_the_setting(make_app: AppFactory) -> None:
    # The README's demo setup: Twilio enabled with a token and an account, no numbers.
    app = make_app(
        app={"connectors": ["twilio"]},
        twilio={"auth_token": "demo-token", "account_sid": "AC00000000000000000000000000000000"},
    )
    runtime: Runtime = app.extensions["corridor"]
    client = app.test_client()
    auth = {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}
    conversation_id = post_event(client, event_json(channel="sms", **{"from": "+493023125042"}), auth)[
        "conversation_id"
    ]
    response = client.post(
        f"/api/conversations/{conversation_id}/replies", json={"channel": "sms", "text": "hi"}, headers=auth
    )
    assert response.status_code == 422
    assert response.json["error"]["field"] == "channel"
    assert "[twilio] numbers" in response.json["error"]["message"]


def test_the_journal_is_for_admins_and_an_integration_reads_its_own_events(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    agent = {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}
    response = client.post("/api/events", json=event_json(), headers=agent)
    journal_id = response.json["journal_id"]
    assert response.headers["Location"] == f"/api/events/{journal_id}"
    assert client.get(f"/api/events/{journal_id}", headers=agent).json["status"] == "received"
    assert client.get(f"/api/journal/{journal_id}", headers=agent).status_code == 403
    assert client.get(f"/api/journal/{journal_id}", headers=auth).json["source"] == "api"


def test_a_database_error_is_stored_and_shown_without_its_sql_or_customer_data(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    errors = []
    statements = [
        # A duplicate key on both databases; PostgreSQL's message quotes the row in DETAIL.
        "INSERT INTO customer (id, display_name, created_at) VALUES (1, :n, '2026-01-01'), (1, :n, '2026-01-01')",
        # PostgreSQL quotes the value in its very first line.
        "UPDATE journal_entry SET attempts = :n",
    ]
    with runtime.database.write() as session:
        for statement in statements:
            try:
                with session.begin_nested():
                    session.execute(text(statement), {"n": "ana.lima@example.com secret"})
            except SQLAlchemyError as exc:
                errors.append(failure_text(exc))
    assert errors
    for error in errors:
        assert "secret" not in error
        assert "INSERT" not in error
        assert "UPDATE" not in error
    # An error stored before the rule (as SQLAlchemy words it) is shown without its SQL too.
    journal_id = client.post("/api/events", json=event_json(), headers=auth).json["journal_id"]
    runtime.journal.drain()  # on SQLite, out of the inbox into the journal table
    stored = (
        "IntegrityError: (sqlite3.IntegrityError) UNIQUE failed\n"
        "[SQL: INSERT INTO x VALUES (?)]\n[parameters: ('ana.lima@example.com',)]"
    )
    with runtime.database.write() as session:
        session.execute(update(JournalEntry).where(JournalEntry.id == journal_id).values(status="failed", error=stored))
    for path in (f"/api/journal/{journal_id}", f"/api/events/{journal_id}"):
        shown = client.get(path, headers=auth).json["error"]
        assert shown == "IntegrityError: (sqlite3.IntegrityError) UNIQUE failed"


def test_a_console_page_argument_past_any_id_is_a_400(client: FlaskClient, runtime: Runtime) -> None:
    make_agent(runtime, Role.AGENT, email="mia@corridor.test", password="correct horse")
    log_in(client, "mia@corridor.test", "correct horse")
    assert client.get(f"/customers?after={HUGE}").status_code == 400
