"""Each Twilio webhook, as the agent will see it on the customer's timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import pytest

from connectors.twilio.parse import (
    MalformedWebhook,
    WebhookForm,
    is_withheld,
    parse_call_status,
    parse_dial_outcome,
    parse_inbound_message,
    parse_incoming_call,
    parse_message_status,
    parse_recording_status,
    parse_transcription,
)
from hub.events import (
    CallStatus,
    Channel,
    DeliveryStatus,
    Direction,
    IdentityKind,
    InteractionKind,
    Party,
)
from tests.connectors.twilio.samples import (
    ACCOUNT_SID,
    CUSTOMER,
    OUR_NUMBER,
    RECEIVED_AT,
    form,
    raw,
)

API = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
CALL_SID = "CA5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a"
OUTBOUND_SID = "SMa1b2c3d4e5f60718293a4b5c6d7e8f90"
CALLBACK_TIME = datetime(2024, 3, 12, 14, 31, 2, tzinfo=UTC)


# --- inbound messages ----------------------------------------------------------


def test_inbound_sms_is_a_message_from_the_customers_phone() -> None:
    event = parse_inbound_message(form("inbound_sms.txt"), RECEIVED_AT)

    assert event.channel is Channel.SMS
    assert event.direction is Direction.INBOUND
    assert event.kind is InteractionKind.MESSAGE
    assert event.external_id == "SM6c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"
    assert event.customer_party == Party(address=CUSTOMER, kind=IdentityKind.PHONE)
    assert event.recipients == (Party(address=OUR_NUMBER, kind=IdentityKind.PHONE),)
    assert event.text == "Hi, my order #1042 still hasn't arrived. Can you check? 📦"
    assert event.attachments == ()
    assert event.delivery_status is DeliveryStatus.RECEIVED
    assert event.occurred_at == RECEIVED_AT
    assert event.metadata["to"] == OUR_NUMBER
    assert event.metadata["num_segments"] == 1
    assert event.metadata["account_sid"] == ACCOUNT_SID
    assert event.metadata["from_location"] == {
        "city": "SAN FRANCISCO",
        "state": "CA",
        "zip": "94107",
        "country": "US",
    }
    # The journal keeps exactly what arrived.
    assert event.raw == raw("inbound_sms.txt")
    assert event.raw_content_type == "application/x-www-form-urlencoded"
    assert event.defects == ()


def test_mms_media_become_attachments_named_after_their_media_sid() -> None:
    event = parse_inbound_message(form("inbound_mms_two_media.txt"), RECEIVED_AT)

    assert event.channel is Channel.SMS
    assert event.text == "The box arrived damaged, photos attached"
    photo, document = event.attachments
    media = f"{API}/Messages/MM7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d/Media"
    assert photo.url == f"{media}/ME1f2e3d4c5b6a79880a9b8c7d6e5f4a3b"
    assert photo.content_type == "image/jpeg"
    assert photo.filename == "ME1f2e3d4c5b6a79880a9b8c7d6e5f4a3b.jpg"
    assert photo.size == 0
    assert photo.content is None
    assert document.url == f"{media}/ME9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
    assert document.content_type == "application/pdf"
    assert document.filename == "ME9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d.pdf"


def test_whatsapp_sender_is_a_phone_without_the_whatsapp_prefix() -> None:
    event = parse_inbound_message(form("inbound_whatsapp.txt"), RECEIVED_AT)

    assert event.channel is Channel.WHATSAPP
    assert event.sender == Party(address="+34612345678", name="María José", kind=IdentityKind.PHONE)
    assert event.recipients == (Party(address=OUR_NUMBER, kind=IdentityKind.PHONE),)
    assert event.text == "Hola, ¿puedo cambiar la dirección de entrega?"
    assert event.metadata["profile_name"] == "María José"
    assert event.metadata["wa_id"] == "34612345678"
    assert event.metadata["to"] == "whatsapp:" + OUR_NUMBER


def test_short_code_sender_is_its_own_kind_of_identity() -> None:
    event = parse_inbound_message(form("inbound_sms_short_code.txt"), RECEIVED_AT)

    assert event.sender == Party(address="72166", kind=IdentityKind.SHORT_CODE)
    assert event.text == "Your verification code is 482913"
    # Empty location fields are left out rather than shown as blanks.
    assert event.metadata["from_location"] == {"country": "US"}


def test_alphanumeric_sender_is_its_own_kind_of_identity() -> None:
    event = parse_inbound_message(form("inbound_sms_alphanumeric.txt"), RECEIVED_AT)

    assert event.sender == Party(address="ParcelCo", kind=IdentityKind.ALPHANUMERIC)
    assert event.recipients == (Party(address="+447700900123", kind=IdentityKind.PHONE),)
    assert event.text.startswith("ParcelCo: your parcel 7H2K")


@pytest.mark.parametrize(
    ("sender", "kind"),
    [
        ("+14155550123", IdentityKind.PHONE),
        ("0412345678", IdentityKind.PHONE),  # national format: the hub applies the region
        ("898", IdentityKind.SHORT_CODE),
        ("247365", IdentityKind.SHORT_CODE),
        ("VERIFY", IdentityKind.ALPHANUMERIC),
        ("Shop 24", IdentityKind.ALPHANUMERIC),
        ("Bank-Info!", IdentityKind.ALPHANUMERIC),
        ("+1 (415) 555-0123", IdentityKind.PHONE),
    ],
)
def test_sender_kind_hint(sender: str, kind: IdentityKind) -> None:
    body = urlencode({"MessageSid": "SMx", "From": sender, "To": OUR_NUMBER}).encode()
    event = parse_inbound_message(WebhookForm.from_body(body), RECEIVED_AT)
    assert event.sender == Party(address=sender, kind=kind)


def test_a_message_without_a_sid_is_refused_naming_the_field() -> None:
    body = raw("inbound_sms.txt").replace(b"MessageSid=", b"Ignored=")
    with pytest.raises(MalformedWebhook) as refused:
        parse_inbound_message(WebhookForm.from_body(body), RECEIVED_AT)
    assert refused.value.field == "MessageSid"


def test_media_count_without_its_url_is_refused_naming_the_missing_url() -> None:
    body = b"MessageSid=MMx&From=%2B14155550123&To=%2B15005550006&NumMedia=1&Body="
    with pytest.raises(MalformedWebhook) as refused:
        parse_inbound_message(WebhookForm.from_body(body), RECEIVED_AT)
    assert refused.value.field == "MediaUrl0"


def test_a_channel_corridor_does_not_serve_is_refused_not_guessed() -> None:
    body = b"MessageSid=SMx&From=messenger%3A1234567&To=messenger%3A7654321&Body=hi"
    with pytest.raises(MalformedWebhook) as refused:
        parse_inbound_message(WebhookForm.from_body(body), RECEIVED_AT)
    assert refused.value.field == "From"


def test_text_that_is_not_utf8_is_kept_with_a_defect() -> None:
    body = b"MessageSid=SMx&From=%2B14155550123&To=%2B15005550006&Body=caf%E9+ok"
    event = parse_inbound_message(WebhookForm.from_body(body), RECEIVED_AT)
    assert event.text == "caf\ufffd ok"
    assert event.defects == ("Body: not valid UTF-8; undecodable bytes were replaced",)


# --- message status --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("status_queued.txt", DeliveryStatus.QUEUED),
        ("status_sent.txt", DeliveryStatus.SENT),
        ("status_delivered.txt", DeliveryStatus.DELIVERED),
    ],
)
def test_delivery_receipt_moves_the_reply_on(fixture: str, status: DeliveryStatus) -> None:
    update = parse_message_status(form(fixture), RECEIVED_AT)

    assert update.channel is Channel.SMS
    assert update.external_id == OUTBOUND_SID
    assert update.update_id == f"{OUTBOUND_SID}:{status}"
    assert update.status == status
    assert update.error_code is None
    assert update.error_message is None
    assert update.raw == raw(fixture)


def test_delivered_receipt_keeps_the_carriers_time() -> None:
    update = parse_message_status(form("status_delivered.txt"), RECEIVED_AT)
    assert update.metadata["carrier_done_date"] == "2403121431"


def test_whatsapp_read_receipt() -> None:
    update = parse_message_status(form("status_read.txt"), RECEIVED_AT)

    assert update.channel is Channel.WHATSAPP
    assert update.external_id == "SMb2c3d4e5f6071829304a5b6c7d8e9f01"
    assert update.status == DeliveryStatus.READ


def test_failed_message_shows_the_error_code_and_what_it_means() -> None:
    update = parse_message_status(form("status_failed.txt"), RECEIVED_AT)

    assert update.status == DeliveryStatus.FAILED
    assert update.update_id == f"{OUTBOUND_SID}:failed"
    assert update.error_code == "30008"
    assert update.error_message == "Unknown error from the carrier."


def test_undelivered_message_shows_the_error_code_and_what_it_means() -> None:
    update = parse_message_status(form("status_undelivered.txt"), RECEIVED_AT)

    assert update.status == DeliveryStatus.UNDELIVERED
    assert update.error_code == "30003"
    assert update.error_message is not None
    assert update.error_message.startswith("Unreachable destination handset")


def test_twilios_own_error_message_wins_over_the_built_in_one() -> None:
    body = raw("status_failed.txt") + b"&ErrorMessage=Carrier+says+no"
    update = parse_message_status(WebhookForm.from_body(body), RECEIVED_AT)
    assert update.error_message == "Carrier says no"


def test_unknown_message_status_is_refused_naming_the_field() -> None:
    body = raw("status_sent.txt").replace(b"MessageStatus=sent", b"MessageStatus=teleported")
    with pytest.raises(MalformedWebhook) as refused:
        parse_message_status(WebhookForm.from_body(body), RECEIVED_AT)
    assert refused.value.field == "MessageStatus"
    assert "teleported" in str(refused.value)


# --- calls -----------------------------------------------------------------------


def test_incoming_call_shows_who_is_calling_while_it_rings() -> None:
    event = parse_incoming_call(form("incoming_call.txt"), RECEIVED_AT)

    assert event.channel is Channel.VOICE
    assert event.kind is InteractionKind.CALL
    assert event.direction is Direction.INBOUND
    assert event.external_id == CALL_SID
    assert event.sender == Party(address=CUSTOMER, name="DOE JANE", kind=IdentityKind.PHONE)
    assert event.recipients == (Party(address=OUR_NUMBER, kind=IdentityKind.PHONE),)
    assert event.metadata["call_status"] == "ringing"
    assert event.metadata["caller_name"] == "DOE JANE"
    assert event.metadata["stir_verstat"] == "TN-Validation-Passed-A"
    assert "withheld" not in event.metadata
    assert event.thread_refs == ()
    assert event.raw == raw("incoming_call.txt")


def test_anonymous_caller_is_withheld_and_never_shared_between_calls() -> None:
    event = parse_incoming_call(form("incoming_call_anonymous.txt"), RECEIVED_AT)

    assert event.sender == Party(address="withheld:CA0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", kind=IdentityKind.WITHHELD)
    assert event.metadata["withheld"] is True
    assert event.metadata["caller_id"] == "+266696687"

    other_call = raw("incoming_call_anonymous.txt").replace(b"CA0b1c", b"CA9f9f")
    other = parse_incoming_call(WebhookForm.from_body(other_call), RECEIVED_AT)
    assert other.sender is not None
    assert other.sender.address == "withheld:CA9f9f2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
    assert other.sender.kind is IdentityKind.WITHHELD


@pytest.mark.parametrize(
    "caller_id",
    [
        "+266696687",
        "+7378742833",
        "+2562533",
        "+86282452253",
        "+8656696",
        "anonymous",
        "Restricted",
        "unknown",
        "",
    ],
)
def test_withheld_caller_ids(caller_id: str) -> None:
    assert is_withheld(caller_id)


@pytest.mark.parametrize("caller_id", ["+14155550123", "+442071838750", "72166"])
def test_real_numbers_are_not_withheld(caller_id: str) -> None:
    assert not is_withheld(caller_id)


def test_a_call_leg_points_at_its_parent_call() -> None:
    body = raw("incoming_call.txt") + b"&ParentCallSid=CA1111111111111111111111111111aaaa"
    event = parse_incoming_call(WebhookForm.from_body(body), RECEIVED_AT)
    assert event.thread_refs == ("CA1111111111111111111111111111aaaa",)


def test_completed_call_records_outcome_duration_and_its_own_time() -> None:
    update = parse_call_status(form("call_status_completed.txt"), RECEIVED_AT)

    assert update.channel is Channel.VOICE
    assert update.external_id == CALL_SID
    assert update.update_id == f"{CALL_SID}:completed"
    assert update.status == CallStatus.COMPLETED
    assert update.duration_seconds == 47
    assert update.occurred_at == CALLBACK_TIME
    assert update.metadata["sip_response_code"] == "200"


@pytest.mark.parametrize(
    ("fixture", "status", "sip"),
    [
        ("call_status_busy.txt", CallStatus.BUSY, "486"),
        ("call_status_no_answer.txt", CallStatus.NO_ANSWER, "487"),
        ("call_status_failed.txt", CallStatus.FAILED, "404"),
        ("call_status_canceled.txt", CallStatus.CANCELED, "487"),
    ],
)
def test_unanswered_call_outcomes(fixture: str, status: CallStatus, sip: str) -> None:
    update = parse_call_status(form(fixture), RECEIVED_AT)

    assert update.external_id == "CA9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
    assert update.update_id == f"CA9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b:{status}"
    assert update.status == status
    assert update.duration_seconds == 0
    assert update.metadata["sip_response_code"] == sip


def test_unknown_call_status_is_refused_naming_the_field() -> None:
    body = raw("call_status_busy.txt").replace(b"CallStatus=busy", b"CallStatus=exploded")
    with pytest.raises(MalformedWebhook) as refused:
        parse_call_status(WebhookForm.from_body(body), RECEIVED_AT)
    assert refused.value.field == "CallStatus"


def test_bad_duration_is_refused_naming_the_field() -> None:
    body = raw("call_status_completed.txt").replace(b"CallDuration=47", b"CallDuration=long")
    with pytest.raises(MalformedWebhook) as refused:
        parse_call_status(WebhookForm.from_body(body), RECEIVED_AT)
    assert refused.value.field == "CallDuration"


def test_missed_dial_is_recorded_on_the_call() -> None:
    body = f"CallSid={CALL_SID}&DialCallStatus=no-answer&DialCallDuration=0".encode()
    update = parse_dial_outcome(WebhookForm.from_body(body), RECEIVED_AT)

    assert update.external_id == CALL_SID
    assert update.update_id == f"{CALL_SID}:dial:no-answer"
    assert update.status is None  # the caller's call goes on, to voicemail
    assert update.metadata == {"dial_outcome": "no-answer", "dial_duration_seconds": 0}


# --- voicemail -------------------------------------------------------------------


def test_voicemail_recording_is_attached_and_turns_the_call_into_a_voicemail() -> None:
    update = parse_recording_status(form("recording_completed.txt"), RECEIVED_AT)

    recording_sid = "RE3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"
    assert update.external_id == CALL_SID
    assert update.update_id == f"{recording_sid}:completed"
    assert update.kind is InteractionKind.VOICEMAIL
    (recording,) = update.attachments
    assert recording.url == f"{API}/Recordings/{recording_sid}.mp3"
    assert recording.content_type == "audio/mpeg"
    assert recording.filename == f"{recording_sid}.mp3"
    assert update.metadata["recording"] == {
        "sid": recording_sid,
        "status": "completed",
        "duration_seconds": 14,
        "source": "RecordVerb",
        "channels": "1",
    }
    # The call's own length comes from its status callback and is not overwritten.
    assert update.duration_seconds is None
    assert update.error_code is None


def test_absent_recording_attaches_nothing_and_says_so() -> None:
    update = parse_recording_status(form("recording_absent.txt"), RECEIVED_AT)

    assert update.external_id == "CA0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
    assert update.update_id == "RE4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a:absent"
    assert update.attachments == ()
    assert update.kind is None
    assert update.metadata["recording"]["status"] == "absent"


def test_failed_recording_keeps_its_error_code() -> None:
    body = (
        raw("recording_absent.txt")
        .replace(b"RecordingStatus=absent", b"RecordingStatus=failed")
        .replace(b"ErrorCode=0", b"ErrorCode=13617")
    )
    update = parse_recording_status(WebhookForm.from_body(body), RECEIVED_AT)
    assert update.attachments == ()
    assert update.metadata["recording"]["error_code"] == "13617"


def test_recording_of_a_dialled_call_is_attached_but_is_not_a_voicemail() -> None:
    body = raw("recording_completed.txt").replace(b"RecordVerb", b"DialVerb")
    update = parse_recording_status(WebhookForm.from_body(body), RECEIVED_AT)
    assert len(update.attachments) == 1
    assert update.kind is None


def test_transcript_is_added_to_the_voicemail_as_searchable_text() -> None:
    update = parse_transcription(form("transcription_completed.txt"), RECEIVED_AT)

    assert update.external_id == CALL_SID
    assert update.update_id == "TR6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c:completed"
    assert update.text_append == (
        "Hi, this is Jane Doe calling about order 1042, the replacement blender still "
        "hasn't shipped. Please call me back."
    )
    assert update.kind is InteractionKind.VOICEMAIL
    assert update.metadata["transcription"]["status"] == "completed"


def test_failed_transcription_adds_no_text_but_is_recorded() -> None:
    update = parse_transcription(form("transcription_failed.txt"), RECEIVED_AT)

    assert update.text_append is None
    assert update.metadata["transcription"] == {
        "sid": "TR7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
        "status": "failed",
        "recording_sid": "RE3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f",
    }


# --- the form itself -------------------------------------------------------------


def test_form_decoding_matches_the_standard_library() -> None:
    for fixture in ("inbound_whatsapp.txt", "incoming_call.txt", "transcription_completed.txt"):
        body = raw(fixture)
        expected = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        assert list(WebhookForm.from_body(body).items()) == expected


def test_repeated_fields_keep_every_value_for_the_signature() -> None:
    decoded = WebhookForm.from_body(b"Tag=a&Tag=b&Body=x")
    assert decoded["Tag"] == "a"
    assert decoded.getall("Tag") == ["a", "b"]
