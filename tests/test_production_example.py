"""The production example configuration is valid, for the hub and for both connectors."""

from __future__ import annotations

from pathlib import Path

from connectors.email.settings import EmailSettings
from connectors.twilio.settings import TwilioSettings
from hub.config import HubSettings, load_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "production.example.toml"


def test_the_production_example_loads_and_validates() -> None:
    settings = load_settings(environ={"HUB_CONFIG": str(EXAMPLE)})
    hub = HubSettings.from_settings(settings)
    assert hub.app.connectors == ["email", "twilio"]
    assert hub.database.url.startswith("postgresql+psycopg://")
    email = settings.section("email", EmailSettings)
    assert [m.address for m in email.mailbox_settings()] == ["support@example.com"]
    twilio = settings.section("twilio", TwilioSettings)
    assert twilio.agent_endpoint.startswith("sip:")
