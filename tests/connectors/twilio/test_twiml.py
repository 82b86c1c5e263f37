"""What a caller hears: greeting, the agent's phone ringing, else voicemail."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from connectors.twilio import twiml
from tests.connectors.twilio.samples import PUBLIC_BASE_URL, twilio_settings


def parse(document: str) -> ET.Element:
    # Our own generated TwiML, not untrusted input.
    root = ET.fromstring(document)  # noqa: S314
    assert root.tag == "Response"
    return root


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


def test_incoming_call_is_greeted_and_rings_the_agent_with_a_timeout() -> None:
    settings = twilio_settings(agent_endpoint="+14155550100", dial_timeout=25, greeting="Hello!")
    root = parse(twiml.incoming_call(settings, PUBLIC_BASE_URL))

    assert verbs(root) == ["Say", "Dial"]
    assert root[0].text == "Hello!"
    dial = root[1]
    assert dial.get("timeout") == "25"
    assert dial.get("action") == "https://support.example.com/webhooks/twilio/voice/dial-complete"
    assert dial.get("method") == "POST"
    (number,) = list(dial)
    assert number.tag == "Number"
    assert number.text == "+14155550100"


@pytest.mark.parametrize(
    ("endpoint", "tag", "text"),
    [
        ("sip:agents@pbx.example.com", "Sip", "sip:agents@pbx.example.com"),
        ("client:support_desk", "Client", "support_desk"),
    ],
)
def test_agent_endpoint_can_be_sip_or_a_client(endpoint: str, tag: str, text: str) -> None:
    root = parse(twiml.incoming_call(twilio_settings(agent_endpoint=endpoint), PUBLIC_BASE_URL))
    dial = root.find("Dial")
    assert dial is not None
    (target,) = list(dial)
    assert (target.tag, target.text) == (tag, text)


def test_the_greeting_comes_from_settings_by_default() -> None:
    root = parse(twiml.incoming_call(twilio_settings(agent_endpoint="+14155550100"), PUBLIC_BASE_URL))
    assert root[0].text == "Thank you for calling. Connecting you to an agent."


def _assert_voicemail(root: ET.Element) -> None:
    record = root.find("Record")
    assert record is not None
    assert record.get("transcribe") == "true"
    assert record.get("transcribeCallback") == "https://support.example.com/webhooks/twilio/transcription"
    assert record.get("recordingStatusCallback") == "https://support.example.com/webhooks/twilio/recording-status"
    assert record.get("recordingStatusCallbackEvent") == "completed absent"
    # Twilio transcribes up to two minutes; longer voicemails would never be searchable.
    assert record.get("maxLength") == "120"
    assert record.get("action") == "https://support.example.com/webhooks/twilio/voice/voicemail-complete"
    assert verbs(root)[-2:] == ["Record", "Hangup"]


@pytest.mark.parametrize("outcome", ["no-answer", "busy", "failed", "canceled"])
def test_unanswered_dial_offers_voicemail_with_transcription(outcome: str) -> None:
    root = parse(twiml.dial_complete(outcome, PUBLIC_BASE_URL))

    assert verbs(root) == ["Say", "Record", "Hangup"]
    assert root[0].text == twiml.VOICEMAIL_PROMPT
    _assert_voicemail(root)


@pytest.mark.parametrize("outcome", ["completed", "answered"])
def test_answered_dial_just_hangs_up(outcome: str) -> None:
    assert verbs(parse(twiml.dial_complete(outcome, PUBLIC_BASE_URL))) == ["Hangup"]


def test_without_an_agent_endpoint_callers_go_straight_to_voicemail() -> None:
    root = parse(twiml.incoming_call(twilio_settings(agent_endpoint=""), PUBLIC_BASE_URL))

    assert verbs(root) == ["Say", "Say", "Record", "Hangup"]
    assert root.find("Dial") is None
    _assert_voicemail(root)


def test_text_is_escaped_in_the_xml() -> None:
    settings = twilio_settings(agent_endpoint="+14155550100", greeting="Smith & Sons <support>")
    root = parse(twiml.incoming_call(settings, PUBLIC_BASE_URL))
    assert root[0].text == "Smith & Sons <support>"
