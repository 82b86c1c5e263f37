"""Recordings and MMS media still at Twilio, fetched through Corridor with the account's credentials.

Twilio's media API is the loopback stand-in of ``media_api`` (real HTTP, real
Basic credentials); everything else is the real app: signed webhooks, the
journal, the pipeline, the attachment views, the worker's prefetch.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from hub import media
from hub.models import AttachmentBlob, AttachmentRecord, Interaction, Role, utcnow
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.connectors.twilio.media_api import MediaApi, media_api
from tests.connectors.twilio.samples import ACCOUNT_SID, AUTH_TOKEN, raw
from tests.connectors.twilio.webhook_client import count, post
from tests.hub.console import log_in

RECORDING_SID = "RE3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"
MESSAGE_SID = "MM7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
MEDIA_SID = "ME1f2e3d4c5b6a79880a9b8c7d6e5f4a3b"
#: A token Twilio does not know: the account is set up with the wrong one.
WRONG_TOKEN = "0" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(200) + b"\xff\xd9"


def silent_mp3(frames: int = 100) -> bytes:
    """A real MP3 a browser decodes: MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, mono) of silence.

    Each frame is 417 bytes, 1152 samples (26 ms): 100 frames play 2.6 s.
    All-zero side information means no coded audio: silence.
    """
    frame = b"\xff\xfb\x90\xc0" + bytes(413)
    return b"ID3\x03\x00\x00\x00\x00\x00\x00" + frame * frames


def with_values(fixture: str, **values: str) -> bytes:
    form = dict(parse_qsl(raw(fixture).decode(), keep_blank_values=True))
    form.update(values)
    return urlencode(form).encode()


def recorded_call(client: FlaskClient, recording_url: str, token: str = AUTH_TOKEN) -> None:
    """A call comes in, the caller leaves a voicemail: Twilio's two webhooks."""
    assert post(client, "/webhooks/twilio/voice", raw("incoming_call.txt"), token=token).status_code in (200, 204)
    body = with_values("recording_completed.txt", RecordingUrl=recording_url)
    assert post(client, "/webhooks/twilio/recording-status", body, token=token).status_code in (200, 204)


def mms(client: FlaskClient, media_url: str, content_type: str = "image/jpeg") -> None:
    body = with_values("inbound_mms_two_media.txt", NumMedia="1", MediaUrl0=media_url, MediaContentType0=content_type)
    assert post(client, "/webhooks/twilio/message", body).status_code == 200


def only_attachment(runtime: Runtime) -> AttachmentRecord:
    with runtime.database.read() as session:
        records = list(session.scalars(select(AttachmentRecord)))
    assert len(records) == 1, records
    return records[0]


@pytest.fixture
def twilio() -> Iterator[MediaApi]:
    with media_api() as api:
        yield api


@pytest.fixture
def app(make_twilio_app: Any, twilio: MediaApi) -> Flask:
    app: Flask = make_twilio_app(api_base_url=twilio.url, media_timeout=2.0)
    return app


@pytest.fixture
def agent(runtime: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}


def test_a_recording_is_fetched_with_the_account_credentials_once_then_served_from_corridor(
    client: FlaskClient, runtime: Runtime, twilio: MediaApi, agent: dict[str, str]
) -> None:
    sound = silent_mp3()
    recorded_call(client, twilio.add_recording(RECORDING_SID, sound))
    attachment = only_attachment(runtime)
    assert attachment.sha256 is None  # the webhook stored the URL only, and did not wait for Twilio

    first = client.get(f"/api/attachments/{attachment.id}", headers=agent)
    assert first.status_code == 200
    assert first.data == sound
    assert [r.credentials for r in twilio.requests] == [(ACCOUNT_SID, AUTH_TOKEN)]
    assert twilio.requests[0].path.endswith(f"/Recordings/{RECORDING_SID}.mp3")

    twilio.delete_everything()  # Twilio's retention deletes it: Corridor still has it
    second = client.get(f"/api/attachments/{attachment.id}", headers=agent)
    assert second.status_code == 200
    assert second.data == sound
    assert len(twilio.requests) == 1
    stored = only_attachment(runtime)
    assert stored.content_type == "audio/mpeg"
    assert stored.size == len(sound)
    assert count(runtime, AttachmentBlob) == 1


def test_mms_media_follows_twilios_redirect_to_storage_without_the_credentials(
    client: FlaskClient, runtime: Runtime, twilio: MediaApi, agent: dict[str, str]
) -> None:
    mms(client, twilio.add_media(MESSAGE_SID, MEDIA_SID, JPEG, "image/jpeg"))
    attachment = only_attachment(runtime)

    response = client.get(f"/api/attachments/{attachment.id}", headers=agent)

    assert response.status_code == 200
    assert response.data == JPEG
    assert response.headers["Content-Type"] == "image/jpeg"
    api_request, storage_request = twilio.requests
    assert api_request.credentials == (ACCOUNT_SID, AUTH_TOKEN)
    assert storage_request.path.startswith("/storage/")
    assert storage_request.credentials is None


def test_wrong_credentials_are_a_clear_502_and_a_message_on_the_agents_page(
    make_twilio_app: Any, twilio: MediaApi
) -> None:
    app = make_twilio_app(api_base_url=twilio.url, auth_token=WRONG_TOKEN)
    client = app.test_client()
    runtime: Runtime = app.extensions["corridor"]
    make_agent(runtime, Role.AGENT, email="ana@corridor.test", password="ana-password-1")
    recorded_call(client, twilio.add_recording(RECORDING_SID, silent_mp3()), token=WRONG_TOKEN)
    attachment = only_attachment(runtime)
    log_in(client, "ana@corridor.test", "ana-password-1")

    played = client.get(f"/attachments/{attachment.id}")
    assert played.status_code == 502
    assert "Twilio refused Corridor's credentials" in html.unescape(played.get_data(as_text=True))
    assert twilio.requests[0].credentials == (ACCOUNT_SID, WRONG_TOKEN)
    note = client.get(f"/attachments/{attachment.id}/problem").get_json()
    assert "check [twilio] account_sid and auth_token" in note["problem"]
    with runtime.database.read() as session:
        customer_id = session.scalar(select(Interaction.customer_id))
    page = html.unescape(client.get(f"/customers/{customer_id}").get_data(as_text=True))
    assert "Twilio refused Corridor's credentials for this recording" in page


def test_a_deleted_recording_is_a_404_saying_so_and_is_not_tried_again_by_the_worker(
    client: FlaskClient, runtime: Runtime, twilio: MediaApi, agent: dict[str, str]
) -> None:
    recorded_call(client, twilio.recording_url(RECORDING_SID))  # never added: deleted at Twilio
    attachment = only_attachment(runtime)

    response = client.get(f"/api/attachments/{attachment.id}", headers=agent)

    assert response.status_code == 404
    assert "no longer has this recording" in response.get_json()["error"]["message"]
    assert only_attachment(runtime).fetch_due_at is None
    assert (
        media.prefetch(runtime.database, runtime.registry.media_fetchers, frozenset(runtime.registry.media_fetchers))
        == media.PrefetchPass()
    )
    assert len(twilio.requests) == 1


def test_a_url_on_another_host_is_never_requested(
    client: FlaskClient, runtime: Runtime, twilio: MediaApi, agent: dict[str, str]
) -> None:
    with media_api() as elsewhere:
        mms(client, elsewhere.add_media(MESSAGE_SID, MEDIA_SID, JPEG, "image/jpeg"))
        attachment = only_attachment(runtime)

        response = client.get(f"/api/attachments/{attachment.id}", headers=agent)

        assert response.status_code == 404
        assert "only from Twilio's API for this account" in response.get_json()["error"]["message"]
        assert elsewhere.requests == []
        assert twilio.requests == []


def test_another_accounts_url_on_twilios_host_is_never_requested(
    client: FlaskClient, runtime: Runtime, twilio: MediaApi, agent: dict[str, str]
) -> None:
    other = twilio.add_media(MESSAGE_SID, MEDIA_SID, JPEG, "image/jpeg").replace(ACCOUNT_SID, "AC" + "9" * 32)
    mms(client, other)
    response = client.get(f"/api/attachments/{only_attachment(runtime).id}", headers=agent)
    assert response.status_code == 404
    assert twilio.requests == []


def test_a_provider_that_does_not_answer_in_time_is_a_502(
    client: FlaskClient, runtime: Runtime, twilio: MediaApi, agent: dict[str, str]
) -> None:
    recorded_call(client, twilio.add_recording(RECORDING_SID, silent_mp3()))
    twilio.delay = 3.0  # media_timeout is 2 s

    response = client.get(f"/api/attachments/{only_attachment(runtime).id}", headers=agent)

    assert response.status_code == 502
    assert "within 2 s" in response.get_json()["error"]["message"]
    assert only_attachment(runtime).fetch_due_at is not None  # the worker may try again


def test_a_picture_that_is_not_one_is_never_served_as_a_page_or_inline(
    client: FlaskClient, runtime: Runtime, twilio: MediaApi, agent: dict[str, str]
) -> None:
    page = b"<html><script>alert(document.cookie)</script></html>"
    mms(client, twilio.add_media(MESSAGE_SID, MEDIA_SID, page, "image/jpeg"))

    response = client.get(f"/api/attachments/{only_attachment(runtime).id}", headers=agent)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert only_attachment(runtime).content_type == "application/octet-stream"


def test_a_file_larger_than_the_limit_is_refused(make_twilio_app: Any, twilio: MediaApi) -> None:
    app = make_twilio_app(api_base_url=twilio.url, media_max_bytes=1000)
    client = app.test_client()
    runtime: Runtime = app.extensions["corridor"]
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}
    recorded_call(client, twilio.add_recording(RECORDING_SID, silent_mp3()))

    response = client.get(f"/api/attachments/{only_attachment(runtime).id}", headers=headers)

    assert response.status_code == 502
    assert "larger than [twilio] media_max_bytes (1000 bytes)" in response.get_json()["error"]["message"]
    assert count(runtime, AttachmentBlob) == 0


def test_prefetch_stores_new_media_once_even_when_run_twice(make_twilio_app: Any, twilio: MediaApi) -> None:
    app = make_twilio_app(api_base_url=twilio.url, fetch_media=True)
    client = app.test_client()
    runtime: Runtime = app.extensions["corridor"]
    sound = silent_mp3()
    recorded_call(client, twilio.add_recording(RECORDING_SID, sound))
    mms(client, twilio.add_media(MESSAGE_SID, MEDIA_SID, JPEG, "image/jpeg"))
    channels = frozenset(runtime.registry.prefetch_channels)
    assert channels  # fetch_media = true asks the worker to prefetch

    first = media.prefetch(runtime.database, runtime.registry.media_fetchers, channels)
    # Long after the first pass's claim has run out: what is stored left the queue.
    later = utcnow() + timedelta(hours=1)
    second = media.prefetch(runtime.database, runtime.registry.media_fetchers, channels, now=later)

    assert (first.stored, second.stored) == (2, 0)
    assert twilio.asked_for(f"/Recordings/{RECORDING_SID}.mp3") == 1
    assert twilio.asked_for(f"/Media/{MEDIA_SID}") == 2  # the API's redirect, then storage: once each
    assert count(runtime, AttachmentBlob) == 2
    twilio.delete_everything()
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}
    with runtime.database.read() as session:
        ids = list(session.scalars(select(AttachmentRecord.id).order_by(AttachmentRecord.id)))
    assert [client.get(f"/api/attachments/{i}", headers=headers).data for i in ids] == [sound, JPEG]


def test_prefetch_retries_with_backoff_after_a_failure(make_twilio_app: Any, twilio: MediaApi) -> None:
    app = make_twilio_app(api_base_url=twilio.url, fetch_media=True, media_timeout=1.0)
    client = app.test_client()
    runtime: Runtime = app.extensions["corridor"]
    recorded_call(client, twilio.add_recording(RECORDING_SID, silent_mp3()))
    fetchers, channels = runtime.registry.media_fetchers, frozenset(runtime.registry.prefetch_channels)
    twilio.delay = 1.5  # Twilio slower than media_timeout

    failed = media.prefetch(runtime.database, fetchers, channels)
    again = media.prefetch(runtime.database, fetchers, channels)

    assert (failed.retrying, again) == (1, media.PrefetchPass())
    assert len(twilio.requests) == 1  # not asked again before the backoff is over
    waiting = only_attachment(runtime)
    assert waiting.fetch_attempts == 1
    assert waiting.fetch_due_at is not None
    assert waiting.fetch_error is not None
    assert "within 1 s" in waiting.fetch_error
    twilio.delay = 0.0
    later = media.prefetch(runtime.database, fetchers, channels, now=waiting.fetch_due_at + timedelta(seconds=1))
    assert later.stored == 1
    stored = only_attachment(runtime)
    assert stored.sha256 is not None
    assert stored.fetch_due_at is None
    assert stored.fetch_error is None


def test_without_prefetch_the_worker_downloads_nothing(client: FlaskClient, runtime: Runtime, twilio: MediaApi) -> None:
    recorded_call(client, twilio.add_recording(RECORDING_SID, silent_mp3()))
    assert runtime.registry.prefetch_channels == set()  # fetch_media = false (the default)
    assert twilio.requests == []
