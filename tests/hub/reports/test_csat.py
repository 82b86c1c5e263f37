"""Satisfaction surveys end to end: a close sends one by SMS, the customer's reply is the answer.

Through the real Twilio connector and ``twilio.rest.Client``; only the HTTP
transport under the client records instead of reaching Twilio's cloud. The
answer shows on the customer's timeline and in /api/reports/dashboard, and a
low score reopens the conversation (``[csat] low_score_action = "reopen"``).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

import connectors.twilio
from connectors.twilio import urls
from hub.models import Conversation, ConversationStatus, CsatSurvey, Role, utcnow
from hub.reports import update_reports
from hub.reports.csat import on_conversation_closed, parse_reply
from hub.runtime import Runtime
from tests.conftest import AppFactory, make_agent
from tests.connectors.twilio.conftest import twilio_sections
from tests.connectors.twilio.recording_http import RecordingHttpClient
from tests.connectors.twilio.samples import CUSTOMER, raw
from tests.connectors.twilio.webhook_client import post
from tests.hub.console import form_token


@pytest.fixture
def rest(monkeypatch: pytest.MonkeyPatch) -> RecordingHttpClient:
    recording = RecordingHttpClient()
    monkeypatch.setattr(connectors.twilio, "rest_transport", lambda: recording)
    return recording


@pytest.fixture
def app(make_app: AppFactory, rest: RecordingHttpClient) -> Flask:
    return make_app(**twilio_sections(), csat={"enabled": True, "low_score_action": "reopen"})


def sms(body: str, sid: str) -> bytes:
    original = raw("inbound_sms.txt").decode()
    text = original.replace("SM6c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f", sid)
    start = text.index("Body=") + len("Body=")
    end = text.index("&", start)
    from urllib.parse import quote_plus

    return (text[:start] + quote_plus(body) + text[end:]).encode()


def close(runtime: Runtime, conversation_id: int) -> int | None:
    with runtime.database.write() as session:
        session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(status=ConversationStatus.CLOSED.value, closed_at=utcnow())
        )
        return on_conversation_closed(session, runtime, conversation_id)


def dashboard(client: FlaskClient, runtime: Runtime) -> dict[str, Any]:
    token = make_agent(runtime, Role.SUPERVISOR, email=f"s{utcnow().timestamp()}@corridor.test")
    body: dict[str, Any] = client.get(
        "/api/reports/dashboard", query_string={"preset": "7d"}, headers={"Authorization": f"Bearer {token}"}
    ).json
    return body


def test_closing_sends_an_sms_survey_and_a_low_reply_reopens(
    client: FlaskClient, runtime: Runtime, rest: RecordingHttpClient, auth: dict[str, str]
) -> None:
    assert post(client, urls.INBOUND_MESSAGE, sms("Where is my order?", "SM" + "1" * 32)).status_code == 200
    with runtime.database.read() as session:
        conversation_id = session.scalar(select(Conversation.id))
    assert conversation_id is not None
    assert close(runtime, conversation_id) is not None
    (sent,) = [r for r in rest.requests if r.url.endswith("/Messages.json")]
    assert sent.data["To"] == CUSTOMER
    assert "Reply with a number from 1 (poor) to 5 (great)" in sent.data["Body"]

    assert post(client, urls.INBOUND_MESSAGE, sms("2 - took far too long", "SM" + "2" * 32)).status_code == 200
    update_reports(runtime.database, runtime.settings)

    with runtime.database.read() as session:
        survey = session.scalar(select(CsatSurvey))
        assert survey is not None
        assert (survey.score, survey.comment, survey.flagged) == (2, "took far too long", True)
        # A low score reopens the conversation it rates.
        assert session.get(Conversation, conversation_id).status == ConversationStatus.OPEN  # type: ignore[union-attr]
        customer_id = session.get(Conversation, conversation_id).customer_id  # type: ignore[union-attr]
    timeline = client.get(f"/api/customers/{customer_id}/timeline", headers=auth).json["interactions"]
    assert "2 - took far too long" in [i["text"] for i in timeline]
    figures = dashboard(client, runtime)
    assert figures["csat"]["overall"]["sent"] == 1
    assert figures["csat"]["overall"]["answered"] == 1
    assert figures["csat"]["overall"]["mean_score"] == 2.0
    assert figures["csat"]["by_channel"]["sms"]["response_rate"] == 1.0
    assert [f[1] for f in figures["csat"]["flagged"]] == [conversation_id]
    # Neither the survey nor the answer is a contact or a response.
    assert figures["cross_channel"]["conversations"] == 1
    assert figures["first_response"]["unanswered"] == 1

    # Within the cool-down, the next close sends nothing.
    assert close(runtime, conversation_id) is None
    assert len([r for r in rest.requests if r.url.endswith("/Messages.json")]) == 1


def test_an_answer_on_the_survey_page_is_on_the_timeline(
    client: FlaskClient, runtime: Runtime, rest: RecordingHttpClient, auth: dict[str, str]
) -> None:
    assert post(client, urls.INBOUND_MESSAGE, sms("Hello", "SM" + "3" * 32)).status_code == 200
    with runtime.database.read() as session:
        conversation_id = session.scalar(select(Conversation.id))
    assert conversation_id is not None
    close(runtime, conversation_id)
    with runtime.database.read() as session:
        survey = session.scalar(select(CsatSurvey))
        assert survey is not None
        token, customer_id = survey.token, survey.customer_id
    assert client.get(f"/csat/{token}").status_code == 200
    assert client.get("/csat/not-a-token").status_code == 404
    csrf = form_token(client, f"/csat/{token}")
    bad = client.post(f"/csat/{token}", data={"score": "9", "csrf_token": csrf})
    assert bad.status_code == 400
    answered = client.post(f"/csat/{token}", data={"score": "5", "comment": "Quick and kind", "csrf_token": csrf})
    assert answered.status_code == 200
    assert "Thank you" in answered.get_data(as_text=True)
    assert client.post(f"/csat/{token}", data={"score": "1", "csrf_token": csrf}).status_code == 400  # answered already
    timeline = client.get(f"/api/customers/{customer_id}/timeline", headers=auth).json["interactions"]
    assert "Satisfaction survey: 5 out of 5\nQuick and kind" in [i["text"] for i in timeline]
    with runtime.database.read() as session:
        assert session.get(Conversation, conversation_id).status == ConversationStatus.CLOSED  # type: ignore[union-attr]
    update_reports(runtime.database, runtime.settings)
    figures = dashboard(client, runtime)
    assert figures["csat"]["overall"]["mean_score"] == 5.0
    assert figures["csat"]["overall"]["satisfied"] == 1.0
    assert figures["csat"]["flagged"] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", (5, "")), (" 4/5 ", (4, "")), ("2 - slow", (2, "slow")), ("1, never again", (1, "never again"))],
)
def test_text_replies_that_are_answers(text: str, expected: tuple[int, str]) -> None:
    assert parse_reply(text) == expected


@pytest.mark.parametrize("text", ["6", "12", "Order 48213?", "", "yes 5"])
def test_text_replies_that_are_not(text: str) -> None:
    assert parse_reply(text) is None


def test_closing_through_the_api_sends_the_survey(
    client: FlaskClient, runtime: Runtime, rest: RecordingHttpClient, auth: dict[str, str]
) -> None:
    # The agents' close action (API and console share hub.conversations.set_status).
    assert post(client, urls.INBOUND_MESSAGE, sms("Where is my order?", "SM" + "3" * 32)).status_code == 200
    with runtime.database.read() as session:
        conversation_id = session.scalar(select(Conversation.id))
    answer = client.post(f"/api/conversations/{conversation_id}/status", json={"status": "closed"}, headers=auth)
    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "closed"
    (sent,) = [r for r in rest.requests if r.url.endswith("/Messages.json")]
    assert sent.data["To"] == CUSTOMER
    assert "Reply with a number from 1 (poor) to 5 (great)" in sent.data["Body"]
    with runtime.database.read() as session:
        survey = session.scalar(select(CsatSurvey))
        assert survey is not None
        assert survey.conversation_id == conversation_id
        # The survey went out on the conversation, which stays closed.
        assert session.get(Conversation, conversation_id).status == ConversationStatus.CLOSED  # type: ignore[union-attr]
    # Closing again is no change: no second survey.
    again = client.post(f"/api/conversations/{conversation_id}/status", json={"status": "closed"}, headers=auth)
    assert again.status_code == 200
    assert len([r for r in rest.requests if r.url.endswith("/Messages.json")]) == 1
