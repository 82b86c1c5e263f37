"""Fixtures for the Twilio tests that go through the real app.

``app`` is overridden here: in this directory the suite's ``runtime``,
``client`` and ``auth`` fixtures are those of a Corridor with the Twilio
connector enabled, on the per-test database (SQLite and PostgreSQL lanes).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

import connectors.twilio
from tests.conftest import AppFactory
from tests.connectors.twilio.recording_http import RecordingHttpClient
from tests.connectors.twilio.samples import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER
from tests.connectors.twilio.webhook_client import PUBLIC_URL

AGENT_ENDPOINT = "+14155550100"


def twilio_sections(**twilio: Any) -> dict[str, dict[str, Any]]:
    """Settings of a Corridor that Twilio reaches at PUBLIC_URL."""
    values: dict[str, Any] = {
        "auth_token": AUTH_TOKEN,
        "account_sid": ACCOUNT_SID,
        "numbers": [{"number": OUR_NUMBER, "channels": ["sms", "voice", "whatsapp"]}],
        "agent_endpoint": AGENT_ENDPOINT,
    }
    values.update(twilio)
    return {"app": {"connectors": ["twilio"], "public_base_url": PUBLIC_URL}, "twilio": values}


@pytest.fixture
def rest(monkeypatch: pytest.MonkeyPatch) -> RecordingHttpClient:
    """The transport replies go out through (Twilio's cloud is unreachable here)."""
    recording = RecordingHttpClient()
    monkeypatch.setattr(connectors.twilio, "rest_transport", lambda: recording)
    return recording


@pytest.fixture
def make_twilio_app(make_app: AppFactory, rest: RecordingHttpClient) -> Any:
    def factory(**twilio: Any) -> Flask:
        return make_app(**twilio_sections(**twilio))

    return factory


@pytest.fixture
def app(make_twilio_app: Any) -> Flask:
    app: Flask = make_twilio_app()
    return app
