"""The visitor API: messages journaled once, identities claimed or verified, limits, origins.

Runs on SQLite and PostgreSQL through the app's own routes.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from hub import auth
from hub.models import Agent, Customer, Identity, Interaction, Role, utcnow
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.connectors.webchat.conftest import SITE_ORIGIN, say, shop_site, signed, start
from tests.hub.console import form_token, log_in


def _chat(runtime: Runtime) -> list[Interaction]:
    runtime.journal.drain()
    with runtime.database.read() as session:
        found = list(session.scalars(select(Interaction).where(Interaction.channel == "chat").order_by(Interaction.id)))
        session.expunge_all()
        return found


def test_a_visitor_message_is_journaled_once_however_often_the_widget_retries(
    runtime: Runtime, client: FlaskClient
) -> None:
    visitor = start(client)
    for _ in range(3):
        answer = say(client, visitor["visitor_token"], "Where is order 1042?", "m-1")
        assert answer.status_code == 202
    [message] = _chat(runtime)
    assert message.text == "Where is order 1042?"
    assert message.direction == "inbound"
    assert message.provider_metadata["identity"] == "anonymous"
    # A reload continues the same chat with the same token.
    again = start(client, token=visitor["visitor_token"])
    assert [m["text"] for m in again["messages"]] == ["Where is order 1042?"]
    assert again["messages"][0]["client_id"] == "m-1"


def test_a_claimed_email_lands_on_that_customer_flagged_unverified_and_shows_nothing_else(
    runtime: Runtime, client: FlaskClient
) -> None:
    from hub.ingest import ingest
    from tests.hub.events import event

    with runtime.database.write() as session:
        known = ingest(session, event(sender="ana.lima@example.com", text="My invoice is wrong"), source="test")
    visitor = start(client)
    token = visitor["visitor_token"]
    claim = client.post(
        "/chat/api/shop/identify", json={"visitor_token": token, "email": "ana.lima@example.com", "name": "Ana"},
        headers={"Origin": SITE_ORIGIN},
    )  # fmt: skip
    assert claim.status_code == 200
    assert claim.json["identity"]["verified"] is False
    # The widget keeps the token the claim comes back with: it carries the identity, signed.
    token = claim.json["visitor_token"]
    assert say(client, token, "Hi, it's Ana", "m-1").status_code == 202
    [message] = _chat(runtime)
    assert message.customer_id == known.customer_id
    assert message.provider_metadata["identity"] == "unverified"
    # The visitor's own chat only: never Ana's email.
    again = start(client, token=token)
    assert [m["text"] for m in again["messages"]] == ["Hi, it's Ana"]
    # A second visitor claiming the same address is not merged with the first, and does not see them.
    other = start(client)["visitor_token"]
    other = client.post("/chat/api/shop/identify", json={"visitor_token": other, "email": "ana.lima@example.com"},
                        headers={"Origin": SITE_ORIGIN}).json["visitor_token"]  # fmt: skip
    say(client, other, "I am also Ana", "m-1")
    assert len(_chat(runtime)) == 2
    assert [m["text"] for m in start(client, token=other)["messages"]] == ["I am also Ana"]
    with runtime.database.read() as session:
        assert (
            session.scalar(select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_not(None))) == 0
        )


def test_a_signed_identity_is_trusted_and_a_forged_one_refused(runtime: Runtime, client: FlaskClient) -> None:
    token = start(client)["visitor_token"]
    forged = client.post(
        "/chat/api/shop/identify",
        json={"visitor_token": token, "email": "boss@example.com", "signature": signed("someone@else.example")},
        headers={"Origin": SITE_ORIGIN},
    )
    assert forged.status_code == 403
    assert forged.json["error"]["field"] == "signature"
    good = client.post(
        "/chat/api/shop/identify",
        json={"visitor_token": token, "email": "boss@example.com", "signature": signed("boss@example.com")},
        headers={"Origin": SITE_ORIGIN},
    )
    assert good.json["identity"]["verified"] is True
    # The old token still speaks for the visitor as they were: anonymous.
    say(client, token, "Before", "m-0")
    say(client, good.json["visitor_token"], "Verified hello", "m-1")
    before, message = _chat(runtime)
    assert before.provider_metadata["identity"] == "anonymous"
    assert message.provider_metadata["identity"] == "verified"
    with runtime.database.read() as session:
        identity = session.scalar(select(Identity).where(Identity.customer_id == message.customer_id))
        assert identity is not None
        assert identity.value == "boss@example.com"


def test_a_site_that_requires_verification_refuses_anonymous_chats_too(make_chat_app: Any) -> None:
    client = make_chat_app(shop_site(require_verification=True)).test_client()
    token = start(client)["visitor_token"]
    anonymous = say(client, token, "hello?", "m-1")
    assert anonymous.status_code == 403
    claim = client.post("/chat/api/shop/identify", json={"visitor_token": token, "email": "a@example.com"},
                        headers={"Origin": SITE_ORIGIN})  # fmt: skip
    assert claim.status_code == 403
    verified = client.post(
        "/chat/api/shop/identify",
        json={"visitor_token": token, "email": "a@example.com", "signature": signed("a@example.com")},
        headers={"Origin": SITE_ORIGIN},
    )
    assert say(client, token, "hello", "m-2").status_code == 403
    assert say(client, verified.json["visitor_token"], "hello", "m-2").status_code == 202


def test_tokens_cannot_be_forged_or_moved_to_another_site(make_chat_app: Any) -> None:
    client = make_chat_app(shop_site(), shop_site(name="blog", origins=["https://blog.example"])).test_client()
    shop_token = start(client)["visitor_token"]
    moved = client.post(
        "/chat/api/blog/messages",
        json={"visitor_token": shop_token, "client_id": "m-1", "text": "hi"},
        headers={"Origin": "https://blog.example"},
    )
    assert moved.status_code == 401
    assert moved.json["error"]["field"] == "visitor_token"
    forged = say(client, shop_token[:-2] + "xx", "hi", "m-1")
    assert forged.status_code == 401


def test_only_the_sites_origins_may_call_and_cors_names_only_them(client: FlaskClient) -> None:
    refused = client.post("/chat/api/shop/session", json={}, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    preflight = client.options("/chat/api/shop/messages", headers={"Origin": SITE_ORIGIN})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == SITE_ORIGIN
    frame = client.get("/chat/frame?site=shop")
    policy = frame.headers["Content-Security-Policy"]
    assert f"frame-ancestors {SITE_ORIGIN}" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert b"<script>" not in frame.data
    assert b"style=" not in frame.data


def test_limits_refuse_floods_big_bodies_and_files_that_are_not_images_or_pdf(make_chat_app: Any) -> None:
    client = make_chat_app(webchat={"messages_per_minute": 3}).test_client()
    token = start(client)["visitor_token"]
    assert [say(client, token, "hi", f"m-{n}").status_code for n in range(4)] == [202, 202, 202, 429]
    token = start(client)["visitor_token"]
    long = say(client, token, "x" * 5000, "m-long")
    assert long.status_code == 413
    assert long.json["error"]["field"] == "text"
    html = base64.b64encode(b"<html><script>alert(1)</script></html>").decode()
    refused = client.post(
        "/chat/api/shop/messages",
        json={
            "visitor_token": token,
            "client_id": "m-file",
            "text": "see",
            "attachment": {"filename": "a.png", "data": html},
        },
        headers={"Origin": SITE_ORIGIN},
    )
    assert refused.status_code == 415
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
    accepted = client.post(
        "/chat/api/shop/messages",
        json={
            "visitor_token": token,
            "client_id": "m-png",
            "text": "",
            "attachment": {"filename": "a.png", "data": png},
        },
        headers={"Origin": SITE_ORIGIN},
    )
    assert accepted.status_code == 202


def test_the_widget_is_small(client: FlaskClient) -> None:
    import gzip

    total = sum(
        len(gzip.compress(client.get(path).data))
        for path in ("/chat/widget.js", "/chat/frame.js", "/chat/frame.css", "/chat/frame?site=shop")
    )
    assert total < 30_000


def test_the_demo_site_serves_a_page_embedding_the_widget(make_chat_app: Any) -> None:
    client = make_chat_app(webchat={"demo_site": True}, app={"public_base_url": "http://127.0.0.1:5000"}).test_client()
    page = client.get("/chat/demo")
    assert page.status_code == 200
    assert b'src="/chat/widget.js" data-site="demo"' in page.data
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    frame = client.get("/chat/frame?site=demo").headers["Content-Security-Policy"]
    assert "frame-ancestors http://127.0.0.1:5000 http://localhost:5000" in frame


def test_with_no_agent_at_a_console_the_chat_says_the_team_is_away(make_chat_app: Any) -> None:
    """In the opening hours (here: always) the chat is open only while some agent's console is."""
    app = make_chat_app(webchat={"agents_online_seconds": 120})
    runtime = app.extensions["corridor"]
    visitor = app.test_client()
    nobody = start(visitor)
    assert (nobody["open"], nobody["agents_online"]) == (False, False)

    make_agent(runtime, Role.AGENT, email="priya@corridor.test", password="a long enough password")
    console = app.test_client()
    assert log_in(console, "priya@corridor.test", "a long enough password").status_code == 302
    assert start(visitor)["open"] is True  # logging in is a sign of life

    with runtime.database.write() as session:  # the console was closed ten minutes ago
        session.execute(update(Agent).values(last_seen_at=utcnow() - timedelta(minutes=10)))
    assert start(visitor)["open"] is False
    auth._seen_marked.clear()  # a new process, as far as the write throttle knows
    seen = console.post("/console/seen", headers={"X-CSRF-Token": form_token(console, "/inbox")})
    assert seen.status_code == 204
    assert start(visitor)["open"] is True  # the console's minutely "I am open"
    assert console.post("/console/seen").status_code == 403  # no CSRF token: refused
