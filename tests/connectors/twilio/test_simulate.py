"""``corridor twilio simulate``: a signed webhook posted over HTTP to a running Corridor."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskClient

from hub.cli import cli
from hub.models import Interaction, JournalEntry
from hub.runtime import Runtime
from tests.conftest import AppFactory, serving
from tests.connectors.twilio.conftest import twilio_sections
from tests.connectors.twilio.samples import OUR_NUMBER
from tests.connectors.twilio.webhook_client import PUBLIC_URL, count, interaction, journal
from tests.services import free_port

CALLER = "+14155550177"


def corridor(app: Flask, *args: str) -> Result:
    """Run a ``corridor`` command against the served app, then its journal processor, as a deployment would."""
    result = CliRunner().invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app), catch_exceptions=False)
    app.extensions["corridor"].journal.drain()
    return result


def test_a_simulated_sms_arrives_on_the_timeline(app: Flask, runtime: Runtime, served: str) -> None:
    result = corridor(app, "twilio", "simulate", "sms", "--url", served, "--from", CALLER, "--body", "Where is 1042?")

    assert result.exit_code == 0, result.output
    assert f"inbound message: POST {served}/webhooks/twilio/message -> 200" in result.output
    (entry,) = journal(runtime)
    assert entry.source == "twilio.message"
    assert entry.external_id is not None
    sms = interaction(runtime, entry.external_id)
    assert (sms.channel, sms.from_address, sms.to_address, sms.text) == ("sms", CALLER, OUR_NUMBER, "Where is 1042?")


def test_the_same_sid_twice_is_one_interaction(app: Flask, runtime: Runtime, served: str) -> None:
    sid = "SM" + "7" * 32
    for _ in range(2):
        assert corridor(app, "twilio", "simulate", "whatsapp", "--url", served, "--sid", sid).exit_code == 0

    assert count(runtime, Interaction) == 1
    assert interaction(runtime, sid).channel == "whatsapp"


def test_a_simulated_call_rings_until_it_ends(app: Flask, runtime: Runtime, served: str) -> None:
    sid = "CA" + "1" * 32
    rang = corridor(app, "twilio", "simulate", "call", "--url", served, "--sid", sid, "--from", CALLER)

    assert rang.exit_code == 0, rang.output
    assert "Twilio would be told:" in rang.output
    assert "<Dial" in rang.output
    assert interaction(runtime, sid).status == "ringing"

    ended = corridor(app, "twilio", "simulate", "call-end", "--url", served, "--sid", sid)
    assert ended.exit_code == 0, ended.output
    call = interaction(runtime, sid)
    assert (call.status, call.duration_seconds) == ("completed", 47)


def test_a_simulated_voicemail_is_transcribed_and_searchable(
    app: Flask, runtime: Runtime, client: FlaskClient, auth: dict[str, str], served: str
) -> None:
    result = corridor(app, "twilio", "simulate", "voicemail", "--url", served, "--body", "My toaster is smoking")

    assert result.exit_code == 0, result.output
    (call_sid,) = {e.external_id.split("#")[0] for e in journal(runtime) if e.external_id}
    call = interaction(runtime, call_sid)
    assert (call.kind, call.status, call.text) == ("voicemail", "completed", "My toaster is smoking")
    hits = client.get("/api/search", query_string={"q": "toaster"}, headers=auth).json["hits"]
    assert [hit["interaction_id"] for hit in hits] == [call.id]


def test_a_token_that_differs_from_the_servers_is_explained(
    make_twilio_app: Any, app: Flask, runtime: Runtime, served: str
) -> None:
    elsewhere = make_twilio_app(auth_token="f" * 32)

    result = corridor(elsewhere, "twilio", "simulate", "sms", "--url", served)

    assert result.exit_code == 1
    assert "HUB_TWILIO_AUTH_TOKEN" in result.output
    assert f"{PUBLIC_URL}/webhooks/twilio/message" in result.output
    assert count(runtime, JournalEntry) == 0


def test_nothing_listening_is_a_clear_error(app: Flask) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = corridor(app, "twilio", "simulate", "sms", "--url", url)

    assert result.exit_code == 1
    assert f"could not reach Corridor at {url}" in result.output


def test_call_end_needs_the_call(app: Flask) -> None:
    result = corridor(app, "twilio", "simulate", "call-end")
    assert result.exit_code == 2
    assert "--sid" in result.output


def test_without_url_it_posts_to_the_public_base_url(make_app: AppFactory) -> None:
    # The README's demo on another port: HUB_APP_PUBLIC_BASE_URL says where Corridor is.
    port = free_port()
    sections = twilio_sections()
    sections["app"]["public_base_url"] = f"http://127.0.0.1:{port}"
    app = make_app(**sections)
    with serving(app, port):
        result = corridor(app, "twilio", "simulate", "sms", "--from", CALLER)
    assert result.exit_code == 0, result.output
    assert f"POST http://127.0.0.1:{port}/webhooks/twilio/message -> 200" in result.output
