"""The ``[twilio]`` settings section, typed and validated.

``config/defaults.toml`` documents every key; this dataclass has exactly those
keys (``Settings.section`` refuses any drift) and checks what the TOML types
cannot: the shape of each configured number, the form of the agent endpoint,
the proxy addresses. The auth token is read only through :meth:`token` and never
appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hub.contract import Channel, SettingsError, read_secret

#: The channels a Twilio number can serve. MMS travels on the SMS channel.
NUMBER_CHANNELS = frozenset({Channel.SMS, Channel.VOICE, Channel.WHATSAPP})

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
# Twilio Client identities: letters, digits and underscore only, because the
# mobile SDKs cannot register anything else and a call to such an identity would
# ring nowhere.
_CLIENT_IDENTITY = re.compile(r"[A-Za-z0-9_]{1,256}")
# Twilio accepts <Dial timeout> between 5 and 600 seconds and silently clamps
# anything else; refusing it here keeps the setting honest.
_DIAL_TIMEOUT_RANGE = range(5, 601)


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    """The Twilio account, its numbers and how incoming calls are handled."""

    account_sid: str
    # repr=False: the token must never reach a log or a traceback's locals.
    auth_token: str = field(repr=False)
    auth_token_file: str
    numbers: list[dict[str, Any]]
    agent_endpoint: str
    dial_timeout: int
    greeting: str
    trusted_proxies: list[str]
    fetch_media: bool
    api_base_url: str
    media_max_bytes: int
    media_timeout: float

    def validate(self) -> None:
        """Raise :class:`SettingsError` naming the first malformed key."""
        if self.account_sid and not _ACCOUNT_SID.fullmatch(self.account_sid):
            raise SettingsError("[twilio] account_sid: expected 'AC' followed by 32 hexadecimal digits")
        self._validate_numbers()
        self._validate_agent_endpoint()
        if self.dial_timeout not in _DIAL_TIMEOUT_RANGE:
            raise SettingsError(f"[twilio] dial_timeout: expected 5 to 600 seconds, got {self.dial_timeout}")
        self._validate_api_base_url()
        if self.media_max_bytes < 1:
            raise SettingsError(f"[twilio] media_max_bytes: at least 1 byte, got {self.media_max_bytes}")
        if not 0 < self.media_timeout <= 600:
            raise SettingsError(f"[twilio] media_timeout: between 0 and 600 seconds, got {self.media_timeout}")
        for position, proxy in enumerate(self.trusted_proxies):
            try:
                ipaddress.ip_network(proxy, strict=False)
            except (TypeError, ValueError):
                raise SettingsError(
                    f"[twilio] trusted_proxies[{position}]: expected an IP address or network, got {proxy!r}"
                ) from None

    def _validate_api_base_url(self) -> None:
        # The account's credentials go to this address with every media fetch:
        # over plain http they would cross the network readable, so http is
        # allowed only where nothing crosses it (a loopback stand-in in tests).
        parts = urlsplit(self.api_base_url)
        expected = "expected https://host[:port] with no path, like https://api.twilio.com"
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
            raise SettingsError(f"[twilio] api_base_url: {expected}, got {self.api_base_url!r}")
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise SettingsError(f"[twilio] api_base_url: {expected}, got {self.api_base_url!r}")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise SettingsError(
                f"[twilio] api_base_url: https is required (http only on loopback), got {self.api_base_url!r}"
            )

    def _validate_numbers(self) -> None:
        known = ", ".join(sorted(NUMBER_CHANNELS))
        for position, entry in enumerate(self.numbers):
            name = f"[twilio] numbers[{position}]"
            if not isinstance(entry, dict):
                raise SettingsError(
                    f'{name}: expected a table like {{"number": "+15005550006", "channels": ["sms"]}}, got {entry!r}'
                )
            unknown = entry.keys() - {"number", "channels"}
            if unknown:
                raise SettingsError(f"{name}: unknown key {min(unknown)!r}")
            number = entry.get("number")
            if not isinstance(number, str) or not _E164.fullmatch(number):
                raise SettingsError(f"{name} number: expected an E.164 number like +15005550006, got {number!r}")
            channels = entry.get("channels")
            if not isinstance(channels, list) or not channels:
                raise SettingsError(f"{name} channels: expected a non-empty list of {known}")
            for channel in channels:
                if channel not in NUMBER_CHANNELS:
                    raise SettingsError(f"{name} channels: unknown channel {channel!r} (known: {known})")

    def _validate_agent_endpoint(self) -> None:
        endpoint = self.agent_endpoint
        if not endpoint:
            # No agent endpoint is a valid set-up: every caller goes to voicemail.
            return
        if endpoint.startswith("sip:"):
            if "@" in endpoint and len(endpoint) > len("sip:") + 2:
                return
            raise SettingsError(
                f"[twilio] agent_endpoint: a SIP address looks like sip:agent@pbx.example.com, got {endpoint!r}"
            )
        if endpoint.startswith("client:"):
            if _CLIENT_IDENTITY.fullmatch(endpoint.removeprefix("client:")):
                return
            raise SettingsError(
                f"[twilio] agent_endpoint: a client identity has only letters, digits and underscores, got {endpoint!r}"
            )
        if _E164.fullmatch(endpoint):
            return
        raise SettingsError(
            f"[twilio] agent_endpoint: expected an E.164 number (+14155550100), "
            f"sip:user@host or client:identity, got {endpoint!r}"
        )

    def token(self) -> str:
        """The auth token, from the setting or the file it names.

        An empty token is refused rather than returned: an HMAC keyed with the
        empty string can be computed by anyone, so it would make every forged
        webhook look authentic.
        """
        token = read_secret(self.auth_token, self.auth_token_file, "[twilio] auth_token")
        if not token:
            raise SettingsError(
                "[twilio] auth_token: not set; give it as HUB_TWILIO_AUTH_TOKEN or in "
                "auth_token_file (webhooks cannot be verified without it)"
            )
        return token

    def numbers_for(self, channel: Channel) -> tuple[str, ...]:
        """The configured Twilio numbers that serve ``channel``, in configured order."""
        return tuple(entry["number"] for entry in self.numbers if channel in entry.get("channels", ()))


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
