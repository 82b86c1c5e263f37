"""Twilio's webhooks through the real app: signed, journaled, on the customer's timeline.

Every request here is signed inside the test with Twilio's RequestValidator for
the public URL Twilio would call, exactly as Twilio signs it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

import hub.ingest
from connectors.twilio import urls
from connectors.twilio.parse import WebhookForm
from hub import create_app
from hub.config import SettingsError
from hub.ingest import Arrival
from hub.journal import replay
from hub.models import AppliedUpdate, Interaction, JournalEntry
from hub.runtime import Runtime
from tests.connectors.twilio.conftest import twilio_sections
from tests.connectors.twilio.samples import ACCOUNT_SID, CUSTOMER, OUR_NUMBER, raw
from tests.connectors.twilio.webhook_client import FORM, PUBLIC_URL, count, interaction, journal, post, signature
from tests.hub.events import post_event

SMS_SID = "SM6c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def customer_of(client: FlaskClient, auth: dict[str, str], phone: str = CUSTOMER) -> dict[str, Any]:
    (found,) = client.get("/api/customers", query_string={"phone": phone}, headers=auth).json["customers"]
    summary: dict[str, Any] = client.get(f"/api/customers/{found['id']}", headers=auth).json
    return summary


def timeline(client: FlaskClient, auth: dict[str, str], customer_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/customers/{customer_id}/timeline", headers=auth)
    assert response.status_code == 200
    interactions: list[dict[str, Any]] = response.json["interactions"]
    return interactions


def only(items: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    (found,) = [i for i in items if all(i[k] == v for k, v in match.items())]
    return found


# --- authenticity ----------------------------------------------------------------------


def test_a_signed_inbound_sms_posted_twice_is_one_interaction(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    first = post(client, urls.INBOUND_MESSAGE, raw("inbound_sms.txt"))
    again = post(client, urls.INBOUND_MESSAGE, raw("inbound_sms.txt"))

    for response in (first, again):
        assert response.status_code == 200
        assert response.content_type.startswith("text/xml")
        assert response.text == EMPTY_TWIML
    assert count(runtime, Interaction) == 1
    # Both deliveries are journaled, exactly as they arrived; the retry as a duplicate.
    entries = journal(runtime)
    assert [(e.source, e.status) for e in entries] == [("twilio.message", "processed"), ("twilio.message", "duplicate")]
    assert entries[0].payload == raw("inbound_sms.txt")
    assert entries[0].content_type == FORM

    customer = customer_of(client, auth)
    (sms,) = timeline(client, auth, customer["id"])
    assert (sms["channel"], sms["direction"], sms["external_id"]) == ("sms", "inbound", SMS_SID)
    assert sms["text"] == "Hi, my order #1042 still hasn't arrived. Can you check? 📦"
    assert sms["status"] == "received"


@pytest.mark.parametrize(
    ("how", "options"),
    [
        ("no signature", {"unsigned": True}),
        ("signed with another token", {"token": "0" * 32}),
        ("signed for another URL", {"signed_for": "https://evil.example.com" + urls.INBOUND_MESSAGE}),
        ("signed for another webhook", {"signed_for": PUBLIC_URL + urls.MESSAGE_STATUS}),
        ("signed without the public URL", {"signed_for": "http://localhost" + urls.INBOUND_MESSAGE}),
    ],
)
def test_a_request_twilio_did_not_sign_is_refused_and_leaves_no_trace(
    client: FlaskClient, runtime: Runtime, how: str, options: dict[str, Any]
) -> None:
    response = post(client, urls.INBOUND_MESSAGE, raw("inbound_sms.txt"), **options)

    assert response.status_code == 403, how
    assert response.json["error"]["field"] == "X-Twilio-Signature"
    assert count(runtime, JournalEntry) == 0
    assert count(runtime, Interaction) == 0


def test_a_changed_body_is_refused(client: FlaskClient, runtime: Runtime) -> None:
    body = raw("inbound_sms.txt")
    tampered = body.replace(b"order+%231042", b"order+%239999")
    headers = {"X-Twilio-Signature": signature(PUBLIC_URL + urls.INBOUND_MESSAGE, body)}

    response = client.post(urls.INBOUND_MESSAGE, data=tampered, content_type=FORM, headers=headers)

    assert response.status_code == 403
    assert count(runtime, JournalEntry) == 0


def test_every_webhook_refuses_an_unsigned_request(client: FlaskClient, runtime: Runtime) -> None:
    # A body every parser would accept, so only the signature can refuse it.
    body = raw("incoming_call.txt") + b"&DialCallStatus=no-answer"
    paths = [
        urls.INBOUND_MESSAGE,
        urls.MESSAGE_STATUS,
        urls.INCOMING_CALL,
        urls.DIAL_COMPLETE,
        urls.VOICEMAIL_COMPLETE,
        urls.CALL_STATUS,
        urls.RECORDING_STATUS,
        urls.TRANSCRIPTION,
    ]
    for path in paths:
        assert post(client, path, body, unsigned=True).status_code == 403, path
        assert post(client, path, body, token="0" * 32).status_code == 403, path
    assert count(runtime, JournalEntry) == 0


def test_twilio_gets_no_2xx_unless_the_journal_row_committed(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    group_commit = hub.ingest._group_commit(runtime.database)
    real_write = group_commit._writer

    def refused_write(arrivals: Sequence[Arrival]) -> list[int]:
        # The database refuses the transaction after the webhook's row was
        # written in it (a row without payload violates NOT NULL): it rolls back.
        unstorable = Arrival(dataclasses.replace(arrivals[0].item, raw=None), "test", {})  # type: ignore[arg-type]
        return real_write([*arrivals, unstorable])

    monkeypatch.setattr(group_commit, "_writer", refused_write)

    response = post(client, urls.INBOUND_MESSAGE, raw("inbound_sms.txt"))

    assert response.status_code == 500  # Twilio retries
    monkeypatch.undo()
    assert count(runtime, JournalEntry) == 0


# --- behind a reverse proxy ----------------------------------------------------------------

PROXY = "10.0.0.2"
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "help.example.org", "X-Forwarded-Port": "443"}
FORWARDED_URL = "https://help.example.org" + urls.INBOUND_MESSAGE


def test_behind_a_proxy_that_is_not_trusted_the_public_base_url_is_what_counts(
    client: FlaskClient, runtime: Runtime
) -> None:
    body = raw("inbound_sms.txt")

    via_headers = post(
        client, urls.INBOUND_MESSAGE, body, signed_for=FORWARDED_URL, headers=FORWARDED, remote_addr=PROXY
    )
    assert via_headers.status_code == 403
    assert count(runtime, JournalEntry) == 0

    # Twilio calls the configured public URL; the proxy's headers change nothing.
    via_base_url = post(client, urls.INBOUND_MESSAGE, body, headers=FORWARDED, remote_addr=PROXY)
    assert via_base_url.status_code == 200
    assert count(runtime, Interaction) == 1


def test_behind_a_trusted_proxy_the_forwarded_url_is_what_counts(make_twilio_app: Any) -> None:
    app = make_twilio_app(trusted_proxies=[PROXY])
    runtime: Runtime = app.extensions["corridor"]
    client = app.test_client()
    body = raw("inbound_sms.txt")

    # Anyone else sending the same headers is not believed.
    spoofed = post(
        client, urls.INBOUND_MESSAGE, body, signed_for=FORWARDED_URL, headers=FORWARDED, remote_addr="203.0.113.9"
    )
    assert spoofed.status_code == 403
    assert count(runtime, JournalEntry) == 0

    forwarded = post(client, urls.INBOUND_MESSAGE, body, signed_for=FORWARDED_URL, headers=FORWARDED, remote_addr=PROXY)
    assert forwarded.status_code == 200
    assert count(runtime, Interaction) == 1


# --- start-up --------------------------------------------------------------------------------


def _create(tmp_path: Path, **twilio: Any) -> None:
    sections = twilio_sections(**twilio)
    sections["app"]["instance_dir"] = str(tmp_path / "instance")
    sections["database"] = {"url": f"sqlite:///{tmp_path / 'corridor.db'}"}
    create_app(overrides=sections, environ={})


def test_without_an_auth_token_corridor_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as refused:
        _create(tmp_path, auth_token="")
    assert "HUB_TWILIO_AUTH_TOKEN" in str(refused.value)


def test_without_an_account_sid_corridor_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as refused:
        _create(tmp_path, account_sid="")
    assert "HUB_TWILIO_ACCOUNT_SID" in str(refused.value)


def test_the_token_is_only_required_when_twilio_is_enabled(tmp_path: Path) -> None:
    app = create_app(
        overrides={
            "app": {"instance_dir": str(tmp_path / "instance")},
            "database": {"url": f"sqlite:///{tmp_path / 'corridor.db'}"},
        },
        environ={},
    )
    assert "twilio" not in app.blueprints


# --- bodies Corridor cannot place ---------------------------------------------------------------


def test_a_message_without_a_sid_gets_400_naming_it_and_is_journaled_as_failed(
    client: FlaskClient, runtime: Runtime
) -> None:
    body = raw("inbound_sms.txt").replace(b"&MessageSid=", b"&Ignored=")

    response = post(client, urls.INBOUND_MESSAGE, body)

    assert response.status_code == 400
    assert response.json["error"]["field"] == "MessageSid"
    assert count(runtime, Interaction) == 0
    (entry,) = journal(runtime)
    assert (entry.source, entry.status) == ("twilio.message", "failed")
    assert entry.payload == body
    assert entry.error is not None
    assert entry.error.startswith("MessageSid")
    assert "received_at" in entry.context


def test_a_signed_json_body_is_kept_but_refused(client: FlaskClient, runtime: Runtime) -> None:
    payload = b'{"MessageSid": "SMx", "Body": "hi"}'
    query = "bodySHA256=" + hashlib.sha256(payload).hexdigest()
    signed = signature(f"{PUBLIC_URL}{urls.INBOUND_MESSAGE}?{query}", b"")
    headers = {"X-Twilio-Signature": signed}

    response = client.post(
        f"{urls.INBOUND_MESSAGE}?{query}", data=payload, content_type="application/json", headers=headers
    )

    assert response.status_code == 415
    (entry,) = journal(runtime)
    assert (entry.status, entry.payload) == ("failed", payload)
    unsigned = client.post(urls.INBOUND_MESSAGE, data=payload, content_type="application/json", headers=headers)
    assert unsigned.status_code == 403
    assert count(runtime, JournalEntry) == 1


# --- inbound messages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "channel", "sender", "kind"),
    [
        ("inbound_sms.txt", "sms", CUSTOMER, "phone"),
        ("inbound_whatsapp.txt", "whatsapp", "+34612345678", "phone"),
        ("inbound_sms_short_code.txt", "sms", "72166", "short_code"),
        ("inbound_sms_alphanumeric.txt", "sms", "ParcelCo", "alphanumeric"),
        ("inbound_mms_two_media.txt", "sms", CUSTOMER, "phone"),
    ],
)
def test_each_inbound_message_lands_on_its_senders_timeline(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str], fixture: str, channel: str, sender: str, kind: str
) -> None:
    assert post(client, urls.INBOUND_MESSAGE, raw(fixture)).status_code == 200

    (stored,) = journal(runtime)
    message = interaction(runtime, str(WebhookForm.from_body(raw(fixture))["MessageSid"]))
    assert (message.channel, message.direction, message.from_address) == (channel, "inbound", sender)
    assert message.journal_id == stored.id
    customer = client.get(f"/api/customers/{message.customer_id}", headers=auth).json
    assert [identity["kind"] for identity in customer["identities"]] == [kind]


def test_mms_media_become_two_attachments_with_their_urls(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    post(client, urls.INBOUND_MESSAGE, raw("inbound_mms_two_media.txt"))

    (mms,) = timeline(client, auth, customer_of(client, auth)["id"])
    media = (
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d/Media"
    )
    assert [(a["url"], a["content_type"]) for a in mms["attachments"]] == [
        (f"{media}/ME1f2e3d4c5b6a79880a9b8c7d6e5f4a3b", "image/jpeg"),
        (f"{media}/ME9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "application/pdf"),
    ]
    assert mms["text"] == "The box arrived damaged, photos attached"


def test_a_short_code_and_a_person_never_become_one_customer(client: FlaskClient, runtime: Runtime) -> None:
    post(client, urls.INBOUND_MESSAGE, raw("inbound_sms.txt"))
    post(client, urls.INBOUND_MESSAGE, raw("inbound_sms_short_code.txt"))
    post(client, urls.INBOUND_MESSAGE, raw("inbound_sms_alphanumeric.txt"))

    customers = {interaction(runtime, m.external_id or "").customer_id for m in journal(runtime)}
    assert len(customers) == 3


def test_a_journaled_message_replays_to_the_same_interaction(client: FlaskClient, runtime: Runtime) -> None:
    post(client, urls.INBOUND_MESSAGE, raw("inbound_sms.txt"))
    (entry,) = journal(runtime)

    (outcome,) = replay(runtime.database, runtime.registry, [entry.id])

    (result,) = outcome.results
    assert result.duplicate
    assert result.interaction_id == interaction(runtime, SMS_SID).id
    assert count(runtime, Interaction) == 1


def test_every_twilio_source_has_a_replay_parser(runtime: Runtime) -> None:
    sources = ["message", "message-status", "call", "dial", "call-status", "recording", "transcription"]
    assert all(runtime.registry.parser_for(f"twilio.{source}") is not None for source in sources)


# --- calls and voicemail --------------------------------------------------------------------------

CALL_SID = "CA5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a"


def _call_status(runtime: Runtime, call_sid: str) -> tuple[str | None, int | None, str]:
    call = interaction(runtime, call_sid)
    return call.status, call.duration_seconds, call.kind


def test_an_incoming_call_is_greeted_and_dialled_to_the_agent(client: FlaskClient, runtime: Runtime) -> None:
    response = post(client, urls.INCOMING_CALL, raw("incoming_call.txt"))

    assert response.status_code == 200
    assert response.content_type.startswith("text/xml")
    assert "<Say>Thank you for calling. Connecting you to an agent.</Say>" in response.text
    assert f'action="{PUBLIC_URL}{urls.DIAL_COMPLETE}"' in response.text
    assert "<Number>+14155550100</Number>" in response.text
    # Twilio's retry of the same call gets the same TwiML and changes nothing.
    assert post(client, urls.INCOMING_CALL, raw("incoming_call.txt")).text == response.text
    assert count(runtime, Interaction) == 1
    assert _call_status(runtime, CALL_SID) == ("ringing", None, "call")


def _email_from_yesterday(client: FlaskClient, auth: dict[str, str]) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    email = {
        "channel": "email",
        "external_id": "<order-1042@mail.example.com>",
        "occurred_at": yesterday,
        "direction": "inbound",
        "from": {"address": "jane.doe@example.com", "name": "Jane Doe"},
        "subject": "Replacement blender for order 1042",
        "text": "Hello, the replacement blender for order 1042 has not shipped yet.",
    }
    outcome = post_event(client, email, auth)
    assert outcome["status"] == "processed"
    return outcome


def test_a_call_from_a_customer_known_by_email_rings_in_their_open_conversation_and_its_voicemail_is_searchable(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    email = _email_from_yesterday(client, auth)
    customer_id = email["customer_id"]
    linked = client.post(
        f"/api/customers/{customer_id}/identities", json={"kind": "phone", "value": CUSTOMER}, headers=auth
    )
    assert linked.status_code == 201

    # The call rings: it is on the customer's timeline, in the email's conversation, at once.
    assert post(client, urls.INCOMING_CALL, raw("incoming_call.txt")).status_code == 200
    call = only(timeline(client, auth, customer_id), channel="voice")
    assert (call["status"], call["kind"], call["from"]) == ("ringing", "call", CUSTOMER)
    assert call["conversation_id"] == email["conversation_id"]

    # Nobody answers: Twilio asks what next, and is told to take a voicemail.
    missed = raw("incoming_call.txt").replace(b"CallStatus=ringing", b"CallStatus=in-progress")
    missed += b"&DialCallStatus=no-answer&DialCallDuration=0"
    after_dial = post(client, urls.DIAL_COMPLETE, missed)
    assert after_dial.status_code == 200
    assert f'transcribeCallback="{PUBLIC_URL}{urls.TRANSCRIPTION}"' in after_dial.text
    assert f'recordingStatusCallback="{PUBLIC_URL}{urls.RECORDING_STATUS}"' in after_dial.text
    voicemail_left = post(client, urls.VOICEMAIL_COMPLETE, missed + b"&RecordingDuration=14")
    assert (voicemail_left.status_code, voicemail_left.text.endswith("<Hangup /></Response>")) == (200, True)

    assert post(client, urls.RECORDING_STATUS, raw("recording_completed.txt")).status_code == 204
    assert post(client, urls.TRANSCRIPTION, raw("transcription_completed.txt")).status_code == 204
    assert post(client, urls.CALL_STATUS, raw("call_status_completed.txt")).status_code == 204

    call = only(timeline(client, auth, customer_id), channel="voice")
    assert (call["kind"], call["status"], call["duration_seconds"]) == ("voicemail", "completed", 47)
    assert call["metadata"]["dial_outcome"] == "no-answer"
    assert call["metadata"]["recording"]["duration_seconds"] == 14
    (recording,) = call["attachments"]
    recording_url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/"
    assert recording["url"] == recording_url + "RE3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f.mp3"
    assert "replacement blender still hasn't shipped" in call["text"]
    assert call["conversation_id"] == email["conversation_id"]

    hits = client.get("/api/search", query_string={"q": "shipped", "channel": "voice"}, headers=auth).json["hits"]
    assert [hit["interaction_id"] for hit in hits] == [call["id"]]


def test_an_anonymous_caller_is_withheld_and_an_absent_recording_attaches_nothing(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    post(client, urls.INCOMING_CALL, raw("incoming_call_anonymous.txt"))
    assert post(client, urls.RECORDING_STATUS, raw("recording_absent.txt")).status_code == 204

    call = interaction(runtime, "CA0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e")
    assert call.from_address == "withheld:CA0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
    assert call.provider_metadata["withheld"] is True
    assert call.provider_metadata["recording"]["status"] == "absent"
    customer = client.get(f"/api/customers/{call.customer_id}", headers=auth).json
    assert [identity["kind"] for identity in customer["identities"]] == ["withheld"]
    (shown,) = timeline(client, auth, call.customer_id)
    assert (shown["kind"], shown["attachments"]) == ("call", [])


def test_a_failed_transcription_adds_no_text(client: FlaskClient, runtime: Runtime) -> None:
    post(client, urls.INCOMING_CALL, raw("incoming_call.txt"))
    post(client, urls.TRANSCRIPTION, raw("transcription_failed.txt"))

    call = interaction(runtime, CALL_SID)
    assert call.text == ""
    assert call.provider_metadata["transcription"]["status"] == "failed"


def _outbound_call(client: FlaskClient, auth: dict[str, str], call_sid: str) -> None:
    """A call an agent placed, pushed by the dialler through the generic event API."""
    event = {
        "channel": "voice",
        "kind": "call",
        "external_id": call_sid,
        "occurred_at": "2024-03-12T14:30:40Z",
        "direction": "outbound",
        "from": OUR_NUMBER,
        "to": CUSTOMER,
    }
    outcome = post_event(client, event, auth)
    assert outcome["status"] == "processed", outcome


@pytest.mark.parametrize(
    ("fixture", "status", "sip"),
    [
        ("call_status_busy.txt", "busy", "486"),
        ("call_status_no_answer.txt", "no-answer", "487"),
        ("call_status_failed.txt", "failed", "404"),
        ("call_status_canceled.txt", "canceled", "487"),
    ],
)
def test_call_outcomes_are_recorded_once(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str], fixture: str, status: str, sip: str
) -> None:
    call_sid = "CA9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
    _outbound_call(client, auth, call_sid)

    assert post(client, urls.CALL_STATUS, raw(fixture)).status_code == 204
    assert post(client, urls.CALL_STATUS, raw(fixture)).status_code == 204

    call = interaction(runtime, call_sid)
    assert (call.status, call.duration_seconds) == (status, 0)
    assert call.provider_metadata["sip_response_code"] == sip
    assert count(runtime, AppliedUpdate) == 1
    assert [e.status for e in journal(runtime) if e.source == "twilio.call-status"] == ["processed", "duplicate"]


def test_a_late_ringing_callback_does_not_reopen_a_completed_call(client: FlaskClient, runtime: Runtime) -> None:
    post(client, urls.INCOMING_CALL, raw("incoming_call.txt"))
    post(client, urls.CALL_STATUS, raw("call_status_completed.txt"))
    late = raw("call_status_completed.txt").replace(b"CallStatus=completed", b"CallStatus=in-progress")
    assert post(client, urls.CALL_STATUS, late).status_code == 204

    assert _call_status(runtime, CALL_SID) == ("completed", 47, "call")
