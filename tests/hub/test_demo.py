"""The demo data: what a person trying Corridor for the first time sees.

``corridor demo`` must give them a realistic support history (dozens of
customers, every channel, months of it) and, above all, one customer whose
email, call and chat about one order read as one conversation. Everything is
checked through the JSON API and the database the demo was loaded into, on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.auth import agent_for_login
from hub.demo import (
    CLOSE_AFTER,
    DEMO_AGENT_EMAIL,
    DEMO_PASSWORD,
    DEMO_SUPERVISOR_EMAIL,
    SHOWCASE_EMAIL,
    SHOWCASE_ORDER,
    load_demo,
)
from hub.events import Channel, IdentityKind
from hub.models import (
    Conversation,
    ConversationStatus,
    Customer,
    Identity,
    Interaction,
    JournalEntry,
    JournalStatus,
    Role,
    utcnow,
)
from hub.runtime import Runtime


@pytest.fixture
def loaded(runtime: Runtime) -> tuple[str, list[str]]:
    """The demo, loaded once into this test's database: (summary, echoed lines)."""
    lines: list[str] = []
    summary = load_demo(runtime, echo=lines.append, now=utcnow())
    return summary, lines


def _get(client: FlaskClient, url: str, auth: dict[str, str]) -> Any:
    response = client.get(url, headers=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _maria(client: FlaskClient, auth: dict[str, str]) -> dict[str, Any]:
    found = _get(client, f"/api/customers?email={SHOWCASE_EMAIL}", auth)["customers"]
    assert len(found) == 1
    customer: dict[str, Any] = _get(client, f"/api/customers/{found[0]['id']}", auth)
    return customer


def test_demo_is_months_of_history_on_every_channel(
    runtime: Runtime, loaded: tuple[str, list[str]], client: FlaskClient, auth: dict[str, str]
) -> None:
    summary, _ = loaded
    with runtime.database.read() as session:
        customers = session.scalar(select(func.count()).select_from(Customer)) or 0
        by_channel = dict(
            session.execute(select(Interaction.channel, func.count()).group_by(Interaction.channel)).all()
        )
        kinds = set(session.scalars(select(Interaction.kind).distinct()))
        newest_customer = session.scalar(
            select(Interaction.customer_id).order_by(Interaction.occurred_at.desc()).limit(1)
        )
        maria_id = session.scalar(select(Identity.customer_id).where(Identity.value == SHOWCASE_EMAIL))
        span = session.execute(select(func.min(Interaction.occurred_at), func.max(Interaction.occurred_at))).one()
        cross_channel = session.scalar(
            select(func.count()).select_from(
                select(Interaction.customer_id)
                .group_by(Interaction.customer_id)
                .having(func.count(Interaction.channel.distinct()) >= 2)
                .subquery()
            )
        )
    assert customers >= 50
    assert all(by_channel.get(Channel(c), 0) >= 10 for c in ("email", "voice", "sms", "whatsapp", "chat")), by_channel
    assert {"message", "call", "voicemail", "note"} <= set(kinds)
    # Months of history, ending minutes ago.
    assert span[1] - span[0] > timedelta(days=90)
    assert utcnow() - span[1] < timedelta(hours=1)
    assert (cross_channel or 0) >= 15
    # Maria's chat is the newest activity of all: she heads a list by last contact.
    assert newest_customer == maria_id
    assert f"{customers} customers" in summary
    assert "/customers/" in summary
    assert DEMO_AGENT_EMAIL in summary
    assert DEMO_PASSWORD in summary


def test_senders_that_are_not_people_stay_apart_and_old_conversations_are_closed(
    runtime: Runtime, loaded: tuple[str, list[str]]
) -> None:
    with runtime.database.read() as session:
        kinds = dict(session.execute(select(Identity.kind, func.count()).group_by(Identity.kind)).all())
        withheld = session.scalar(select(Identity).where(Identity.kind == IdentityKind.WITHHELD))
        assert withheld is not None
        channels_by_kind: dict[IdentityKind, set[str]] = {}
        for kind, channel in session.execute(
            select(Identity.kind, Interaction.channel)
            .join(Interaction, Interaction.customer_id == Identity.customer_id)
            .where(Identity.kind.in_([IdentityKind.WITHHELD, IdentityKind.SHORT_CODE, IdentityKind.CHAT_VISITOR]))
            .distinct()
        ):
            channels_by_kind.setdefault(kind, set()).add(channel)
        conversations = session.scalars(select(Conversation)).all()
    # A withheld caller, a short code and anonymous chat visitors are kept,
    # each as a customer of their own, never joined to anyone.
    assert kinds[IdentityKind.WITHHELD] == 1
    assert kinds[IdentityKind.SHORT_CODE] == 1
    assert kinds[IdentityKind.CHAT_VISITOR] >= 1
    # Nothing of anyone else's ever lands on them.
    assert channels_by_kind == {
        IdentityKind.WITHHELD: {"voice"},
        IdentityKind.SHORT_CODE: {"sms"},
        IdentityKind.CHAT_VISITOR: {"chat"},
    }
    assert withheld.value.startswith("withheld:CA")

    # Agents closed what went quiet two weeks ago; recent conversations are open.
    cutoff = utcnow() - CLOSE_AFTER
    old = [c for c in conversations if c.last_activity_at < cutoff - timedelta(minutes=5)]
    recent = [c for c in conversations if c.last_activity_at > cutoff + timedelta(minutes=5)]
    assert len(old) > 30
    assert all(c.status == ConversationStatus.CLOSED for c in old)
    assert all(c.closed_at is not None and c.closed_at > c.last_activity_at for c in old)
    assert recent
    assert all(c.status == ConversationStatus.OPEN for c in recent)


def test_marias_email_call_and_chat_are_one_conversation(
    loaded: tuple[str, list[str]], client: FlaskClient, auth: dict[str, str]
) -> None:
    summary, _ = loaded
    maria = _maria(client, auth)
    assert maria["display_name"] == "Maria Keller"
    assert f"/customers/{maria['id']}" in summary
    # The phone she called from was linked to her by an agent, not guessed.
    assert {(i["kind"], i["value"]) for i in maria["identities"]} == {
        ("email", SHOWCASE_EMAIL),
        ("phone", "+493023125042"),
    }
    timeline = _get(client, f"/api/customers/{maria['id']}/timeline?limit=200", auth)
    items = timeline["interactions"]
    times = [i["occurred_at"] for i in items]
    assert times == sorted(times, reverse=True), "the timeline reads newest first"

    # Her newest conversation holds the whole story about the late order.
    latest = items[0]["conversation_id"]
    story = [i for i in items if i["conversation_id"] == latest]
    channels = [i["channel"] for i in reversed(story)]
    assert {"email", "voice", "chat"} <= set(channels)
    assert channels.index("email") < channels.index("voice") < channels.index("chat"), channels
    conversation = timeline["conversations"][str(latest)]
    assert SHOWCASE_ORDER in conversation["subject"]
    assert conversation["status"] == "open"
    first_email = next(i for i in reversed(story) if i["channel"] == "email")
    assert first_email["direction"] == "inbound"
    assert SHOWCASE_ORDER in first_email["subject"]
    call = next(i for i in story if i["channel"] == "voice")
    assert call["status"] == "completed"
    assert call["duration_seconds"] > 60
    assert call["from"] == "+493023125042"
    chat = [i for i in story if i["channel"] == "chat"]
    assert len(chat) >= 3
    assert {i["direction"] for i in chat} == {"inbound", "outbound"}

    # Her older exchange is a separate conversation, closed long ago.
    older = {i["conversation_id"] for i in items} - {latest}
    assert len(older) == 1
    assert timeline["conversations"][str(older.pop())]["status"] == "closed"

    # Her order is found by search, and only hers.
    hits = _get(client, f"/api/search?q={SHOWCASE_ORDER}", auth)["hits"]
    assert hits
    assert {h["customer_id"] for h in hits} == {maria["id"]}

    # Email, then WhatsApp with photos, one conversation: Tomás.
    found = _get(client, "/api/customers?email=tomas.ferreira@example.org", auth)["customers"]
    items = _get(client, f"/api/customers/{found[0]['id']}/timeline", auth)["interactions"]
    assert {i["channel"] for i in items} == {"email", "whatsapp"}
    assert len({i["conversation_id"] for i in items}) == 1
    photos = [a for i in items for a in i["attachments"]]
    assert len(photos) == 2
    assert all(a["content_type"] == "image/jpeg" for a in photos)


def test_every_demo_interaction_came_through_the_journal_and_logins_work(
    runtime: Runtime, loaded: tuple[str, list[str]]
) -> None:
    _, lines = loaded
    with runtime.database.read() as session:
        rows = session.execute(
            select(Interaction.channel, Interaction.external_id, JournalEntry).join(
                JournalEntry, JournalEntry.id == Interaction.journal_id, isouter=True
            )
        ).all()
        failed = session.scalar(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.status == JournalStatus.FAILED)
        )
        agent = agent_for_login(session, DEMO_AGENT_EMAIL, DEMO_PASSWORD)
        supervisor = agent_for_login(session, DEMO_SUPERVISOR_EMAIL, DEMO_PASSWORD)
    assert rows
    assert failed == 0
    for channel, external_id, entry in rows:
        assert entry is not None, f"{channel} {external_id} has no journal entry"
        assert entry.source == "demo"
        assert entry.payload
    # The payloads look like what providers send: an email is a real RFC 822
    # message whose Message-ID is the interaction's id; Twilio's are forms.
    emails = [(external_id, entry) for channel, external_id, entry in rows if channel == "email"]
    for external_id, entry in emails:
        assert entry.content_type == "message/rfc822"
        message = email.message_from_bytes(entry.payload, policy=policy.default)
        assert isinstance(message, EmailMessage)
        assert message["Message-ID"] == f"<{external_id}>"
        assert message["From"]
        assert message["Date"]
        assert message.get_body(("plain",)) is not None
    calls = [entry for channel, _, entry in rows if channel == "voice"]
    assert all(e.content_type == "application/x-www-form-urlencoded" for e in calls)
    assert all(b"CallSid=CA" in e.payload for e in calls)

    assert agent is not None
    assert agent.role == Role.AGENT
    assert supervisor is not None
    assert supervisor.role == Role.SUPERVISOR
    assert any(DEMO_AGENT_EMAIL in line and DEMO_PASSWORD in line for line in lines)


def test_loading_again_adds_nothing_and_if_empty_changes_nothing(runtime: Runtime) -> None:
    def counts() -> tuple[int, int, int]:
        with runtime.database.read() as session:
            return (
                session.scalar(select(func.count()).select_from(Customer)) or 0,
                session.scalar(select(func.count()).select_from(Interaction)) or 0,
                session.scalar(select(func.count()).select_from(JournalEntry)) or 0,
            )

    now = utcnow()
    load_demo(runtime, echo=lambda _line: None, now=now)
    customers, interactions, journal = counts()

    # The same history again: every event is a duplicate the pipeline drops.
    summary = load_demo(runtime, echo=lambda _line: None, now=now)
    assert counts()[:2] == (customers, interactions)
    assert "already present" in summary
    with runtime.database.read() as session:
        duplicates = session.scalar(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.status == JournalStatus.DUPLICATE)
        )
    assert duplicates == journal

    # What `make run` does before every start: nothing, once there are customers.
    before = counts()
    lines: list[str] = []
    result = load_demo(runtime, if_empty=True, echo=lines.append)
    assert counts() == before
    assert any("not loaded" in line for line in lines)
    assert DEMO_AGENT_EMAIL in result
