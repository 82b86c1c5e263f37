"""When nobody is there: the widget says when the team is back, and a reply the visitor
missed goes by email, threaded so that the customer's answer lands in the same conversation.

The email side is real: replies leave through aiosmtpd, the answer arrives in Dovecot
and the email connector's intake reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from imapclient import IMAPClient
from sqlalchemy import select

from connectors.webchat.settings import WebchatSettings
from hub.config import SettingsError
from hub.models import Interaction, Role
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.connectors.email.conftest import intake_of, mailbox_table, sync
from tests.connectors.email.messages import MAILBOX_ADDRESS, append_all, customer_message
from tests.connectors.webchat.conftest import SITE_ORIGIN, say, shop_site, start
from tests.services import Dovecot, SmtpServer

CUSTOMER = "jane.doe@example.org"
# Open one minute a week: closed whenever the suite runs, bar Monday 00:00 in Berlin.
HOURS = {"mon": "00:00-00:01"}


@pytest.fixture
def app(make_chat_app: Any, dovecot: Dovecot, smtp_server: SmtpServer, tmp_path: Path) -> Flask:
    password = tmp_path / "imap-password"
    password.write_text("secret\n")
    dovecot.add_user("support", "secret")
    mailbox = mailbox_table(dovecot, smtp_server, password, user="support")
    app: Flask = make_chat_app(
        shop_site(hours=HOURS, timezone="Europe/Berlin"),
        connectors=["email"],
        email={"mailboxes": [mailbox], "idle_timeout": 60, "poll_interval": 1},
    )
    return app


def test_closed_the_widget_says_when_the_team_is_back_and_a_missed_reply_goes_by_email_and_threads_back(
    app: Flask, runtime: Runtime, smtp_server: SmtpServer, dovecot: Dovecot
) -> None:
    client = app.test_client()
    visitor = start(client)
    assert visitor["open"] is False
    back = datetime.fromisoformat(visitor["opens_at"].replace("Z", "+00:00"))
    assert back > datetime.now(UTC)
    assert back.astimezone().weekday() in (0, 6)  # Monday in Berlin, which may be Sunday in UTC
    token = visitor["visitor_token"]
    token = client.post("/chat/api/shop/identify", json={"visitor_token": token, "email": CUSTOMER, "name": "Jane"},
                        headers={"Origin": SITE_ORIGIN}).json["visitor_token"]  # fmt: skip
    assert say(client, token, "My parcel never came. Order 4711.", "m-1").status_code == 202
    client.post("/chat/api/shop/presence", data=f'{{"visitor_token": "{token}", "state": "left"}}',
                content_type="text/plain", headers={"Origin": SITE_ORIGIN})  # fmt: skip
    runtime.journal.drain()
    with runtime.database.read() as session:
        conversation = session.scalar(select(Interaction.conversation_id).where(Interaction.channel == "chat"))

    agent = {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}
    answer = client.post(
        f"/api/conversations/{conversation}/replies",
        json={"channel": "chat", "text": "Sorry! A new parcel leaves today."},
        headers=agent,
    )
    assert answer.status_code == 201, answer.json

    (sent,) = smtp_server.wait_for(1)
    mime = BytesParser(policy=policy.default).parsebytes(sent.data)
    assert sent.rcpt_tos == (CUSTOMER,)
    assert mime["From"] == MAILBOX_ADDRESS
    assert "A new parcel leaves today" in mime.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    message_id = mime["Message-ID"].strip("<>")

    # Jane answers the email from her mail client; it threads back into the chat's conversation.
    imap = IMAPClient(dovecot.host, port=dovecot.port, ssl=False)
    imap.login("support", "secret")
    try:
        reply = customer_message(
            1, sender=CUSTOMER, message_id="jane-answer@example.org", in_reply_to=message_id,
            subject=str(mime["Subject"]), body="Thank you, I'll watch for it.",
            date=datetime.now(UTC) + timedelta(minutes=1),
        )  # fmt: skip
        append_all(imap, "INBOX", [reply])
    finally:
        imap.logout()
    sync(intake_of(runtime))
    with runtime.database.read() as session:
        rows = session.execute(
            select(Interaction.channel, Interaction.direction, Interaction.conversation_id).order_by(Interaction.id)
        ).all()
    assert {row.conversation_id for row in rows} == {conversation}
    assert [(row.channel, row.direction) for row in rows] == [
        ("chat", "inbound"), ("chat", "outbound"), ("email", "outbound"), ("email", "inbound"),
    ]  # fmt: skip
    # The chat reply says where it went; the visitor sees it when they come back, too.
    chat_reply = client.get(f"/api/conversations/{conversation}", headers=agent).json["interactions"]
    continued = [i for i in chat_reply if i["channel"] == "chat" and i["direction"] == "outbound"]
    assert continued[0]["metadata"]["continued_on"] == "email"
    assert "Sorry! A new parcel leaves today." in [m["text"] for m in start(client, token=token)["messages"]]


def test_a_visitor_can_have_the_chat_emailed(app: Flask, runtime: Runtime, smtp_server: SmtpServer) -> None:
    client = app.test_client()
    token = start(client)["visitor_token"]
    token = client.post("/chat/api/shop/identify", json={"visitor_token": token, "email": CUSTOMER},
                        headers={"Origin": SITE_ORIGIN}).json["visitor_token"]  # fmt: skip
    say(client, token, "Please send me this chat", "m-1")
    runtime.journal.drain()
    answer = client.post("/chat/api/shop/transcript", json={"visitor_token": token}, headers={"Origin": SITE_ORIGIN})
    assert answer.status_code == 202, answer.json
    (sent,) = smtp_server.wait_for(1)
    mime = BytesParser(policy=policy.default).parsebytes(sent.data)
    assert sent.rcpt_tos == (CUSTOMER,)
    assert "You: Please send me this chat" in mime.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_site_settings_name_what_is_wrong() -> None:
    def check(agents_online_seconds: int = 180, **site: Any) -> None:
        WebchatSettings(
            sites=[shop_site(**site)], away_after_seconds=90, messages_per_minute=20, conversations_per_hour=30,
            max_text_chars=4000, max_attachment_bytes=0, visitor_token_days=30, demo_site=False,
            agents_online_seconds=agents_online_seconds,
        ).validate()  # fmt: skip

    check()  # the defaults pass
    check(agents_online_seconds=0)  # hours only
    with pytest.raises(SettingsError, match="agents_online_seconds"):
        check(agents_online_seconds=30)  # shorter than the consoles' minutely heartbeat: always "away"

    for bad, words in [
        ({"origins": ["https://shop.example/path"]}, "origins"),
        ({"prechat": {"email": "sometimes"}}, "prechat email"),
        ({"hours": {"mon": "17:00-09:00"}}, "hours mon"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"secret": "", "require_verification": True}, "require_verification"),
        ({"colour": "red"}, "colour"),
    ]:
        with pytest.raises(SettingsError, match=words):
            check(**bad)
