"""The [twilio] section: a typo stops start-up naming the key; the token stays secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.twilio.settings import TwilioSettings
from hub.config import SettingsError, load_settings
from hub.events import Channel
from tests.connectors.twilio.samples import AUTH_TOKEN, twilio_settings


def test_the_dataclass_matches_the_defaults_file() -> None:
    settings = load_settings(environ={}).section("twilio", TwilioSettings)
    assert settings.dial_timeout == 20
    assert settings.trusted_proxies == []


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"agent_endpoint": "555-0100"}, "[twilio] agent_endpoint"),
        ({"agent_endpoint": "sip:"}, "[twilio] agent_endpoint"),
        ({"agent_endpoint": "client:support desk"}, "[twilio] agent_endpoint"),
        ({"numbers": ["+15005550006"]}, "[twilio] numbers[0]"),
        (
            {"numbers": [{"number": "5005550006", "channels": ["sms"]}]},
            "[twilio] numbers[0] number",
        ),
        ({"numbers": [{"number": "+15005550006", "channels": []}]}, "[twilio] numbers[0] channels"),
        (
            {"numbers": [{"number": "+15005550006", "channels": ["fax"]}]},
            "[twilio] numbers[0] channels",
        ),
        (
            {"numbers": [{"number": "+15005550006", "channels": ["sms"], "nme": "x"}]},
            "[twilio] numbers[0]",
        ),
        ({"dial_timeout": 2}, "[twilio] dial_timeout"),
        ({"trusted_proxies": ["proxy.local"]}, "[twilio] trusted_proxies[0]"),
        ({"account_sid": "SK123"}, "[twilio] account_sid"),
    ],
)
def test_malformed_settings_name_the_key(changes: dict[str, object], named: str) -> None:
    with pytest.raises(SettingsError) as refused:
        twilio_settings(**changes)
    assert str(refused.value).startswith(named)


def test_token_from_the_environment_never_shows_in_repr_or_errors() -> None:
    settings = load_settings(environ={"HUB_TWILIO_AUTH_TOKEN": AUTH_TOKEN}).section("twilio", TwilioSettings)
    assert settings.token() == AUTH_TOKEN
    assert AUTH_TOKEN not in repr(settings)

    with pytest.raises(SettingsError) as refused:
        twilio_settings(auth_token=AUTH_TOKEN, agent_endpoint="nonsense")
    assert AUTH_TOKEN not in str(refused.value)


def test_token_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "twilio_token"
    secret.write_text(AUTH_TOKEN + "\n")
    settings = twilio_settings(auth_token="", auth_token_file=str(secret))
    assert settings.token() == AUTH_TOKEN


def test_a_missing_token_is_refused_rather_than_used_empty() -> None:
    with pytest.raises(SettingsError) as refused:
        twilio_settings(auth_token="").token()
    assert "[twilio] auth_token" in str(refused.value)


def test_numbers_for_a_channel() -> None:
    settings = twilio_settings(
        numbers=[
            {"number": "+15005550006", "channels": ["voice"]},
            {"number": "+15005550007", "channels": ["sms", "whatsapp"]},
        ]
    )
    assert settings.numbers_for(Channel.SMS) == ("+15005550007",)
    assert settings.numbers_for(Channel.VOICE) == ("+15005550006",)
