"""Agents' replies go out through twilio.rest.Client; Twilio's refusals are clear."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import requests

from connectors.twilio.sender import TwilioSender
from hub.events import Attachment, Channel
from hub.outbound import OutboundMessage, SendError
from tests.connectors.twilio.recording_http import RecordingHttpClient
from tests.connectors.twilio.samples import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CUSTOMER,
    OUR_NUMBER,
    PUBLIC_BASE_URL,
    twilio_settings,
)

MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
UK_NUMBER = "+447700900123"


def reply(channel: Channel = Channel.SMS, **changes: Any) -> OutboundMessage:
    message = OutboundMessage(
        interaction_id=7,
        channel=channel,
        external_id="corridor-7",
        to_address=CUSTOMER,
        from_address=OUR_NUMBER,
        subject="",
        text="Your replacement ships today.",
    )
    return replace(message, **changes)


@pytest.fixture
def http() -> RecordingHttpClient:
    return RecordingHttpClient()


@pytest.fixture
def sender(http: RecordingHttpClient) -> TwilioSender:
    return TwilioSender(twilio_settings(), PUBLIC_BASE_URL, http_client=http)


def test_sms_reply_is_posted_to_twilio_with_a_status_callback(sender: TwilioSender, http: RecordingHttpClient) -> None:
    result = sender.send(reply())

    (request,) = http.requests
    assert request.method == "POST"
    assert request.url == MESSAGES_URL
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.data == {
        "To": CUSTOMER,
        "From": OUR_NUMBER,
        "Body": "Your replacement ships today.",
        "StatusCallback": "https://support.example.com/webhooks/twilio/message-status",
    }
    assert result.provider_id == "SM0123456789abcdef0123456789abcdef"
    assert result.status == "queued"


def test_whatsapp_reply_uses_whatsapp_addresses(sender: TwilioSender, http: RecordingHttpClient) -> None:
    sender.send(reply(Channel.WHATSAPP, to_address="+34612345678"))

    (request,) = http.requests
    assert request.data["To"] == "whatsapp:+34612345678"
    assert request.data["From"] == "whatsapp:" + OUR_NUMBER


def test_media_with_a_public_url_is_sent(sender: TwilioSender, http: RecordingHttpClient) -> None:
    label = Attachment(
        filename="label.pdf",
        content_type="application/pdf",
        size=0,
        url="https://files.example.com/label.pdf",
    )
    sender.send(reply(attachments=(label,)))
    assert http.requests[0].data["MediaUrl"] == ["https://files.example.com/label.pdf"]


def test_an_attachment_twilio_cannot_fetch_is_refused_not_dropped(
    sender: TwilioSender, http: RecordingHttpClient
) -> None:
    private = Attachment(filename="a.pdf", content_type="application/pdf", size=3, content=b"pdf")
    with pytest.raises(SendError) as refused:
        sender.send(reply(attachments=(private,)))
    assert refused.value.permanent
    assert http.requests == []


def test_invalid_number_is_a_permanent_error_with_twilios_message(
    sender: TwilioSender, http: RecordingHttpClient
) -> None:
    http.answer(
        400,
        {
            "code": 21211,
            "message": "The 'To' number +1555 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        },
    )
    with pytest.raises(SendError) as refused:
        sender.send(reply(to_address="+1555"))

    assert refused.value.code == "21211"
    assert refused.value.permanent
    assert "The 'To' number +1555 is not a valid phone number." in refused.value.message


def test_unsubscribed_recipient_is_permanent(sender: TwilioSender, http: RecordingHttpClient) -> None:
    http.answer(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"})
    with pytest.raises(SendError) as refused:
        sender.send(reply())
    assert (refused.value.code, refused.value.permanent) == ("21610", True)


@pytest.mark.parametrize(("status", "code"), [(500, 20500), (503, 20503), (429, 20429)])
def test_server_errors_and_rate_limits_are_retried(
    sender: TwilioSender, http: RecordingHttpClient, status: int, code: int
) -> None:
    http.answer(status, {"code": code, "message": "try again later", "status": status})
    with pytest.raises(SendError) as refused:
        sender.send(reply())
    assert refused.value.code == str(code)
    assert not refused.value.permanent


def test_network_failure_is_retried(sender: TwilioSender, http: RecordingHttpClient) -> None:
    http.fail_with = requests.ConnectionError("connection refused")
    with pytest.raises(SendError) as refused:
        sender.send(reply())
    assert not refused.value.permanent
    assert "connection refused" in refused.value.message


def test_a_channel_twilio_does_not_carry_is_refused(sender: TwilioSender) -> None:
    with pytest.raises(SendError) as refused:
        sender.send(reply(Channel.EMAIL))
    assert refused.value.permanent


# --- which number a reply comes from ---------------------------------------------------


def several_numbers_sender(http: RecordingHttpClient) -> TwilioSender:
    settings = twilio_settings(
        numbers=[
            {"number": "+15005550006", "channels": ["sms", "voice"]},
            {"number": "+15005550007", "channels": ["sms", "whatsapp"]},
            {"number": UK_NUMBER, "channels": ["sms"]},
        ]
    )
    return TwilioSender(settings, PUBLIC_BASE_URL, http_client=http)


def test_reply_comes_from_the_number_the_customer_wrote_to(http: RecordingHttpClient) -> None:
    sender = several_numbers_sender(http)
    assert sender.from_address(Channel.SMS, CUSTOMER, "+15005550007") == "+15005550007"
    assert sender.from_address(Channel.WHATSAPP, CUSTOMER, "whatsapp:+15005550007") == ("+15005550007")


def test_a_number_that_no_longer_serves_the_channel_is_not_used(
    http: RecordingHttpClient,
) -> None:
    sender = several_numbers_sender(http)
    assert sender.from_address(Channel.WHATSAPP, CUSTOMER, "+15005550006") == "+15005550007"


def test_without_history_a_number_in_the_customers_country_is_chosen(
    http: RecordingHttpClient,
) -> None:
    sender = several_numbers_sender(http)
    assert sender.from_address(Channel.SMS, "+447911123456", None) == UK_NUMBER
    assert sender.from_address(Channel.SMS, CUSTOMER, None) == "+15005550006"


def test_no_number_for_the_channel_is_a_clear_permanent_error(
    http: RecordingHttpClient,
) -> None:
    settings = twilio_settings(numbers=[{"number": OUR_NUMBER, "channels": ["voice"]}])
    sender = TwilioSender(settings, PUBLIC_BASE_URL, http_client=http)
    with pytest.raises(SendError) as refused:
        sender.from_address(Channel.SMS, CUSTOMER, None)
    assert refused.value.permanent
    assert "sms" in refused.value.message


def test_the_rest_client_does_not_log_requests_at_info(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import connectors.twilio

    transport = connectors.twilio.rest_transport()
    with caplog.at_level(logging.INFO):
        transport.logger.info("-- BEGIN Twilio API Request -- Headers: Authorization ...")
    assert caplog.records == []
    assert not transport.logger.isEnabledFor(logging.INFO)
