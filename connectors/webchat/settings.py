"""The ``[webchat]`` settings section: the sites that embed the widget, and the limits.

``config/defaults.toml`` documents every key. A site is a table in ``sites``;
:meth:`WebchatSettings.validate` turns each into a :class:`Site` and refuses
what TOML cannot: an origin that is not ``scheme://host[:port]``, a pre-chat
field that is not off/optional/required, opening hours that do not parse, an
unknown time zone, a site that requires verification without a secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.contract import SettingsError, read_secret

PRECHAT_FIELDS = ("name", "email", "phone")
PRECHAT_MODES = ("off", "optional", "required")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SITE_KEYS = frozenset(
    {
        "name", "title", "origins", "greeting", "offline_message", "colour", "text_colour", "prechat",
        "hours", "timezone", "secret", "secret_file", "require_verification",
    }
)  # fmt: skip
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")
_SITE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_HOURS = re.compile(r"([0-2][0-9]):([0-5][0-9])-([0-2][0-9]):([0-5][0-9])")


@dataclass(frozen=True)
class Site:
    """One website that embeds the widget."""

    name: str
    title: str
    #: Pages on these origins may embed the chat (``frame-ancestors``) and call it (CORS).
    origins: tuple[str, ...]
    greeting: str
    offline_message: str
    colour: str
    text_colour: str
    #: name/email/phone -> off, optional or required.
    prechat: dict[str, str]
    #: Weekday (0 = Monday) -> (opens, closes) in ``timezone``; no entry: closed that day.
    #: Empty: always open.
    hours: dict[int, tuple[time, time]]
    timezone: str
    #: Signs visitors' identities on the site's backend (HMAC-SHA256); never shown.
    secret: str = field(repr=False)
    #: Refuse anonymous chats and unverified identities.
    require_verification: bool

    def is_open(self, now: datetime) -> bool:
        """Whether ``now`` (timezone-aware) falls in the opening hours."""
        if not self.hours:
            return True
        local = now.astimezone(ZoneInfo(self.timezone))
        window = self.hours.get(local.weekday())
        return window is not None and window[0] <= local.time() < window[1]

    def opens_next(self, now: datetime) -> datetime | None:
        """When the team is next back (UTC), or None when always open or never."""
        if not self.hours:
            return None
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            window = self.hours.get(day.weekday())
            if window is None:
                continue
            opens = datetime.combine(day, window[0], tzinfo=zone)
            if opens > local:
                return opens.astimezone(ZoneInfo("UTC"))
        return None

    def public(self) -> dict[str, Any]:
        """What the widget is told about the site (never the secret)."""
        return {
            "name": self.name,
            "title": self.title,
            "greeting": self.greeting,
            "offline_message": self.offline_message,
            "colour": self.colour,
            "text_colour": self.text_colour,
            "prechat": dict(self.prechat),
            "require_verification": self.require_verification,
        }


def _site(position: int, entry: Any) -> Site:
    name = f"[webchat] sites[{position}]"
    if not isinstance(entry, dict):
        raise SettingsError(f'{name}: expected a table like {{name = "shop", origins = ["https://shop.example"]}}')
    unknown = entry.keys() - _SITE_KEYS
    if unknown:
        raise SettingsError(f"{name}: unknown key {min(unknown)!r}")
    site_name = entry.get("name")
    if not isinstance(site_name, str) or not _SITE_NAME.fullmatch(site_name):
        raise SettingsError(f"{name} name: expected lower-case letters, digits and dashes, got {site_name!r}")
    name = f"[webchat] site {site_name!r}"
    origins = entry.get("origins", [])
    if not isinstance(origins, list) or not origins:
        raise SettingsError(f"{name} origins: expected a non-empty list like ['https://shop.example']")
    for origin in origins:
        if not isinstance(origin, str) or not _ORIGIN.fullmatch(origin):
            raise SettingsError(f"{name} origins: expected scheme://host[:port] without a path, got {origin!r}")
    prechat_in = entry.get("prechat", {})
    if not isinstance(prechat_in, dict):
        raise SettingsError(f"{name} prechat: expected a table like {{email = 'optional'}}")
    prechat = dict.fromkeys(PRECHAT_FIELDS, "off")
    for key, mode in prechat_in.items():
        if key not in PRECHAT_FIELDS:
            raise SettingsError(f"{name} prechat: unknown field {key!r} (known: {', '.join(PRECHAT_FIELDS)})")
        if mode not in PRECHAT_MODES:
            raise SettingsError(f"{name} prechat {key}: expected off, optional or required, got {mode!r}")
        prechat[key] = mode
    timezone = entry.get("timezone", "UTC")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name} timezone: unknown time zone {timezone!r}") from None
    hours: dict[int, tuple[time, time]] = {}
    hours_in = entry.get("hours", {})
    if not isinstance(hours_in, dict):
        raise SettingsError(f"{name} hours: expected a table like {{mon = '09:00-17:00'}}")
    for day, span in hours_in.items():
        if day not in DAYS:
            raise SettingsError(f"{name} hours: unknown day {day!r} (known: {', '.join(DAYS)})")
        match = _HOURS.fullmatch(str(span))
        if match is None:
            raise SettingsError(f"{name} hours {day}: expected HH:MM-HH:MM, got {span!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or (h2, m2) <= (h1, m1):
            raise SettingsError(f"{name} hours {day}: the opening must be before the closing, got {span!r}")
        hours[DAYS.index(day)] = (time(h1, m1), time(h2, m2))
    colours = {}
    for key, default in (("colour", "#1f4e79"), ("text_colour", "#ffffff")):
        value = entry.get(key, default)
        if not isinstance(value, str) or not _COLOUR.fullmatch(value):
            raise SettingsError(f"{name} {key}: expected #rrggbb, got {value!r}")
        colours[key] = value
    secret = read_secret(str(entry.get("secret", "")), str(entry.get("secret_file", "")), f"{name} secret")
    require = entry.get("require_verification", False)
    if not isinstance(require, bool):
        raise SettingsError(f"{name} require_verification: expected true or false")
    if require and not secret:
        raise SettingsError(f"{name} require_verification: needs the site's secret (secret or secret_file)")
    return Site(
        name=site_name,
        title=str(entry.get("title", "Chat with us")),
        origins=tuple(origins),
        greeting=str(entry.get("greeting", "Hello! How can we help?")),
        offline_message=str(
            entry.get("offline_message", "We are away right now. Leave a message and how to reach you.")
        ),
        colour=colours["colour"],
        text_colour=colours["text_colour"],
        prechat=prechat,
        hours=hours,
        timezone=str(timezone),
        secret=secret,
        require_verification=require,
    )


@dataclass(frozen=True)
class WebchatSettings:
    """The sites and the limits that protect the chat from abuse."""

    sites: list[dict[str, Any]]
    away_after_seconds: int
    messages_per_minute: int
    conversations_per_hour: int
    max_text_chars: int
    max_attachment_bytes: int
    visitor_token_days: int
    demo_site: bool
    #: With no agent's console open within this many seconds the chat says the team is away; 0: hours only.
    agents_online_seconds: int

    def validate(self) -> None:
        """Raise :class:`SettingsError` naming the first malformed key."""
        names = [site.name for site in self.all_sites()]
        if len(set(names)) != len(names):
            raise SettingsError("[webchat] sites: two sites share a name")
        for key in ("away_after_seconds", "messages_per_minute", "conversations_per_hour", "max_text_chars"):
            if getattr(self, key) < 1:
                raise SettingsError(f"[webchat] {key}: expected at least 1")
        if self.agents_online_seconds < 0 or 0 < self.agents_online_seconds < 90:
            # Consoles say they are open every minute: a shorter window would call a staffed team away.
            raise SettingsError("[webchat] agents_online_seconds: expected 0 (opening hours only) or at least 90")
        if self.max_attachment_bytes < 0:
            raise SettingsError("[webchat] max_attachment_bytes: expected 0 (no attachments) or more")

    def all_sites(self) -> list[Site]:
        """Every configured site, in order."""
        return [_site(position, entry) for position, entry in enumerate(self.sites)]


def demo_site(name: str, origin: str) -> Site:
    """The site ``make run`` embeds on ``/chat/demo``: Corridor's own origin, open all day."""
    origins = [origin]
    # The same server under its other loopback name, so either address works in the browser.
    for one, other in (("//127.0.0.1", "//localhost"), ("//localhost", "//127.0.0.1")):
        if one in origin:
            origins.append(origin.replace(one, other))
    return _site(
        0,
        {
            "name": name,
            "title": "Corridor demo shop",
            "origins": origins,
            "greeting": "Hi! Ask us anything about your order.",
            "prechat": {"name": "optional", "email": "optional"},
        },
    )
