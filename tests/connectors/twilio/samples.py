"""The fixture bodies and settings the Twilio tests share."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.twilio.parse import WebhookForm
from connectors.twilio.settings import TwilioSettings
from hub.config import load_settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECEIVED_AT = datetime(2024, 3, 12, 14, 30, 5, tzinfo=UTC)

ACCOUNT_SID = "AC3f8a1c2e9b7d4f6a8c0e2b4d6f8a1c3e"
AUTH_TOKEN = "5f0c2d7e9a1b4c6d8e0f2a4b6c8d0e1f"
OUR_NUMBER = "+15005550006"
CUSTOMER = "+14155550123"
PUBLIC_BASE_URL = "https://support.example.com"


def raw(name: str) -> bytes:
    """The exact bytes of one fixture body."""
    return (FIXTURES / name).read_bytes()


def form(name: str) -> WebhookForm:
    """One fixture body, decoded as the webhook decodes it."""
    return WebhookForm.from_body(raw(name))


def twilio_settings(**twilio: Any) -> TwilioSettings:
    """``[twilio]`` settings loaded through the real settings loader.

    The environment is left out so that a developer's HUB_* variables cannot
    change what a test sees.
    """
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "numbers": [{"number": OUR_NUMBER, "channels": ["sms", "voice", "whatsapp"]}],
    }
    values.update(twilio)
    return load_settings(environ={}, overrides={"twilio": values}).section("twilio", TwilioSettings)
