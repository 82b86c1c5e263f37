"""Agents' SMS and WhatsApp replies: queued on the timeline, sent through Twilio, tracked by MessageSid.

The reply goes through the real API, the real hub reply path and the real
``twilio.rest.Client``; only the HTTP transport under the client records instead
of reaching Twilio's cloud (unreachable from here).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from connectors.twilio import urls
from hub.journal import replay
from hub.runtime import Runtime
from tests.connectors.twilio.recording_http import RecordingHttpClient
from tests.connectors.twilio.samples import ACCOUNT_SID, AUTH_TOKEN, CUSTOMER, OUR_NUMBER, raw
from tests.connectors.twilio.webhook_client import PUBLIC_URL, interaction, journal, post

#: The MessageSid the status_* fixtures report on.
MESSAGE_SID = "SMa1b2c3d4e5f60718293a4b5c6d7e8f90"
WHATSAPP_SID = "SMb2c3d4e5f6071829304a5b6c7d8e9f01"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
REPLY = "Your replacement ships today."


def twilio_accepts(rest: RecordingHttpClient, sid: str) -> None:
    """Queue Twilio's answer to the next Messages.json POST: created, queued, with ``sid``."""
    rest.answer(201, {"sid": sid, "account_sid": ACCOUNT_SID, "status": "queued", "num_segments": "1"})


def conversation_of(client: FlaskClient, auth: dict[str, str], phone: str) -> int:
    (customer,) = client.get("/api/customers", query_string={"phone": phone}, headers=auth).json["customers"]
    (conversation,) = client.get(f"/api/customers/{customer['id']}", headers=auth).json["conversations"]
    conversation_id: int = conversation["id"]
    return conversation_id


def send_reply(client: FlaskClient, auth: dict[str, str], conversation_id: int, channel: str = "sms") -> TestResponse:
    return client.post(
        f"/api/conversations/{conversation_id}/replies", json={"channel": channel, "text": REPLY}, headers=auth
    )


def shown(client: FlaskClient, auth: dict[str, str], conversation_id: int) -> dict[str, Any]:
    """The agent's reply as the conversation API shows it."""
    interactions = client.get(f"/api/conversations/{conversation_id}", headers=auth).json["interactions"]
    (outbound,) = [i for i in interactions if i["direction"] == "outbound"]
    return dict(outbound)


@pytest.fixture
def conversation(client: FlaskClient, auth: dict[str, str]) -> int:
    """The conversation a customer's SMS opened."""
    assert post(client, urls.INBOUND_MESSAGE, raw("inbound_sms.txt")).status_code == 200
    return conversation_of(client, auth, CUSTOMER)


@pytest.fixture
def replied(client: FlaskClient, auth: dict[str, str], rest: RecordingHttpClient, conversation: int) -> int:
    """An SMS reply Twilio accepted as MESSAGE_SID; returns its conversation."""
    twilio_accepts(rest, MESSAGE_SID)
    assert send_reply(client, auth, conversation).status_code == 202
    return conversation


def test_a_reply_is_sent_through_twilio_and_tracked_by_its_message_sid(
    client: FlaskClient, auth: dict[str, str], rest: RecordingHttpClient, conversation: int
) -> None:
    twilio_accepts(rest, MESSAGE_SID)

    response = send_reply(client, auth, conversation)

    assert response.status_code == 202
    assert response.json["status"] == "queued"
    (request,) = rest.requests
    assert (request.method, request.url, request.auth) == ("POST", MESSAGES_URL, (ACCOUNT_SID, AUTH_TOKEN))
    assert request.data == {
        "To": CUSTOMER,
        # The number the customer wrote to.
        "From": OUR_NUMBER,
        "Body": REPLY,
        "StatusCallback": PUBLIC_URL + urls.MESSAGE_STATUS,
    }
    reply = shown(client, auth, conversation)
    assert reply["id"] == response.json["interaction_id"]
    assert (reply["channel"], reply["status"], reply["external_id"]) == ("sms", "queued", MESSAGE_SID)
    assert (reply["from"], reply["to"], reply["text"]) == (OUR_NUMBER, CUSTOMER, REPLY)

    # Twilio's callbacks name the MessageSid and move the reply on.
    assert post(client, urls.MESSAGE_STATUS, raw("status_sent.txt")).status_code == 204
    assert shown(client, auth, conversation)["status"] == "sent"


def test_delivered_followed_by_a_late_sent_stays_delivered(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str], replied: int
) -> None:
    post(client, urls.MESSAGE_STATUS, raw("status_delivered.txt"))
    assert post(client, urls.MESSAGE_STATUS, raw("status_sent.txt")).status_code == 204

    reply = shown(client, auth, replied)
    assert reply["status"] == "delivered"
    assert reply["metadata"]["carrier_done_date"] == "2403121431"
    statuses = [e.status for e in journal(runtime) if e.source == "twilio.message-status"]
    assert statuses == ["processed", "processed"]  # both kept; the late one moved nothing


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("status_queued.txt", "queued"),
        ("status_sent.txt", "sent"),
        ("status_delivered.txt", "delivered"),
        ("status_failed.txt", "failed"),
        ("status_undelivered.txt", "undelivered"),
    ],
)
def test_each_delivery_status_reaches_the_reply(
    client: FlaskClient, auth: dict[str, str], replied: int, fixture: str, status: str
) -> None:
    assert post(client, urls.MESSAGE_STATUS, raw(fixture)).status_code == 204
    assert post(client, urls.MESSAGE_STATUS, raw(fixture)).status_code == 204  # Twilio's retry
    assert shown(client, auth, replied)["status"] == status


@pytest.mark.parametrize(
    ("fixture", "status", "code", "message"),
    [
        ("status_failed.txt", "failed", "30008", "Unknown error from the carrier."),
        (
            "status_undelivered.txt",
            "undelivered",
            "30003",
            "Unreachable destination handset: the phone is off or out of coverage.",
        ),
    ],
)
def test_a_failed_delivery_keeps_and_shows_its_error(
    client: FlaskClient, auth: dict[str, str], replied: int, fixture: str, status: str, code: str, message: str
) -> None:
    post(client, urls.MESSAGE_STATUS, raw(fixture))
    post(client, urls.MESSAGE_STATUS, raw("status_delivered.txt"))  # too late: failure is final

    reply = shown(client, auth, replied)
    assert (reply["status"], reply["error_code"], reply["error_message"]) == (status, code, message)


def test_an_invalid_number_is_a_clear_422_and_the_reply_is_marked_failed(
    client: FlaskClient, auth: dict[str, str], rest: RecordingHttpClient, conversation: int
) -> None:
    twilio_says = "The 'To' number +14155550123 is not a valid phone number."
    rest.answer(400, {"code": 21211, "message": twilio_says, "more_info": "https://www.twilio.com/docs/errors/21211"})

    response = send_reply(client, auth, conversation)

    assert response.status_code == 422
    assert (response.json["status"], response.json["error_code"]) == ("failed", "21211")
    assert twilio_says in response.json["error"]["message"]
    reply = shown(client, auth, conversation)
    assert (reply["status"], reply["error_code"]) == ("failed", "21211")
    assert twilio_says in reply["error_message"]


def test_a_whatsapp_reply_and_its_read_receipt(
    client: FlaskClient, auth: dict[str, str], rest: RecordingHttpClient
) -> None:
    post(client, urls.INBOUND_MESSAGE, raw("inbound_whatsapp.txt"))
    conversation = conversation_of(client, auth, "+34612345678")
    twilio_accepts(rest, WHATSAPP_SID)

    assert send_reply(client, auth, conversation, channel="whatsapp").status_code == 202
    (request,) = rest.requests
    assert (request.data["To"], request.data["From"]) == ("whatsapp:+34612345678", f"whatsapp:{OUR_NUMBER}")

    assert post(client, urls.MESSAGE_STATUS, raw("status_read.txt")).status_code == 204
    reply = shown(client, auth, conversation)
    assert (reply["channel"], reply["external_id"], reply["status"]) == ("whatsapp", WHATSAPP_SID, "read")


def test_a_status_callback_that_overtakes_its_reply_is_applied_on_replay(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str], rest: RecordingHttpClient, conversation: int
) -> None:
    # Twilio can call back before the request that created the message has
    # returned its MessageSid to us: the callback is kept, not lost.
    assert post(client, urls.MESSAGE_STATUS, raw("status_sent.txt")).status_code == 204
    (early,) = [e for e in journal(runtime) if e.source == "twilio.message-status"]
    assert early.status == "deferred"

    twilio_accepts(rest, MESSAGE_SID)
    send_reply(client, auth, conversation)
    (outcome,) = replay(runtime.database, runtime.registry, [early.id])

    assert outcome.ok
    assert interaction(runtime, MESSAGE_SID).status == "sent"
