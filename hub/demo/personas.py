"""Who is in the demo: the shop, the regions its customers live in, and the people invented there."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import phonenumbers

from hub.events import Channel, Ingestible, Party

SHOWCASE_EMAIL = "maria.keller@example.com"
SHOWCASE_ORDER = "48213"

SHOP = "Larkspur Home & Garden"
SUPPORT_ADDRESS = "support@larkspur.example.com"
SUPPORT = Party(address=SUPPORT_ADDRESS, name="Larkspur Support")
MAIL_HOST = "larkspur.example.com"
CHAT_PAGE = "https://www.larkspur.example.com"


# -- where the customers live ----------------------------------------------------------


@dataclass(frozen=True)
class _Region:
    code: str
    #: Hours from UTC, standard time: close enough to put mail in office hours.
    utc_offset: int
    currency: str
    carrier: str
    #: Larkspur's support line in this country (also a number reserved for fiction).
    our_number: str
    numbers: tuple[str, ...]
    #: Space-separated: a mix of the names people there have.
    first_names: str
    last_names: str


def _range(prefix: str, digits: int, first: int, last: int) -> list[str]:
    return [f"{prefix}{n:0{digits}d}" for n in range(first, last + 1)]


_REGIONS = (
    _Region(
        code="US",
        utc_offset=-6,
        currency="$",
        carrier="UPS",
        our_number="+14155550100",
        numbers=tuple(
            n
            for area in ("212", "312", "415", "512", "617", "206", "303")
            for n in _range(f"+1{area}55501", 2, 0, 99)
            if n != "+14155550100"
        ),
        first_names="James Olivia Marcus Sofía Wei Priya Jamal Emily Diego Hannah Kenji Aaliyah Connor Mei "
        "Rafael Grace",
        last_names="Johnson Nguyen Martinez Okafor Chen Patel Whitaker Rivera Kim Brooks Goldberg Hernández "
        "Sullivan Yamamoto",
    ),
    _Region(
        code="GB",
        utc_offset=0,
        currency="£",
        carrier="Royal Mail",
        our_number="+442079460000",
        numbers=tuple(_range("+44207946", 4, 1, 999) + _range("+447700900", 3, 0, 999)),
        first_names="Oliver Amelia Harry Isla Ravi Siobhan Kwame Charlotte Hamish Aisha Freya Tomasz",
        last_names="Hughes Evans O'Brien MacLeod Ahmed Campbell Clarke Mensah Thompson Nowak Fitzgerald Bhatt",
    ),
    _Region(
        code="DE",
        utc_offset=1,
        currency="€",
        carrier="DHL",
        our_number="+493023125000",
        numbers=tuple(
            _range("+493023125", 3, 1, 999)
            + _range("+496990009", 3, 0, 999)
            + _range("+494066969", 3, 0, 999)
            + _range("+492214710", 3, 0, 999)
            + _range("+498999998", 3, 0, 999)
        ),
        first_names="Lukas Anna Jonas Lea Mehmet Sophie Felix Katarina Jan Elif Tobias Marie",
        last_names="Schneider Müller Becker Yılmaz Hoffmann Wagner Schulz Krüger Lehmann Zimmermann Fischer Weiß",
    ),
    _Region(
        code="FR",
        utc_offset=1,
        currency="€",
        carrier="Colissimo",
        our_number="+33199000000",
        numbers=tuple(_range("+3319900", 4, 1, 9999)),
        first_names="Camille Louis Chloé Hugo Inès Théo Manon Karim Léa Julien",
        last_names="Dubois Laurent Moreau Lefèvre Benali Girard Rousseau Fontaine Mercier Tran",
    ),
    _Region(
        code="AU",
        utc_offset=10,
        currency="A$",
        carrier="Australia Post",
        our_number="+61491570006",
        numbers=tuple(_range("+61491570", 3, 7, 159)),
        first_names="Jack Matilda Noah Chloe Liam Ruby Arjun Zoe Tane Ella",
        last_names="Wilson O'Connor Taylor Singh Walker Papadopoulos Anderson Murray Tran Kelly",
    ),
)
_REGION = {r.code: r for r in _REGIONS}

_PRODUCTS = (
    ("Aster teak garden bench", 389),
    ("Fern linen duvet cover", 119),
    ("Birch floor lamp", 145),
    ("Juniper ceramic planter set", 74),
    ("Moss wool throw", 89),
    ("Hazel oak side table", 210),
    ("Willow rattan armchair", 329),
    ("Clover hose reel", 59),
    ("Sorrel outdoor cushions (set of 4)", 96),
    ("Linden bamboo bath mat", 32),
)
_AGENT_NAMES = ("Sam", "Priya", "Jonas", "Aroha", "Mateo", "Claire")
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")


def _typed(e164: str) -> str:
    """A number as people write it: +44 20 7946 0123."""
    return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@dataclass
class _Persona:
    """One person who contacts Larkspur, and the addresses they use."""

    name: str
    region: _Region
    email: str | None
    #: E.164.
    phone: str | None
    whatsapp: bool
    chat: bool
    #: The channel of their very first contact: one that carries their name,
    #: so the customer record Corridor creates is called by it.
    opener: Channel
    #: Anonymous web-chat visitors only: the widget's visitor id.
    visitor_id: str | None = None

    @property
    def first_name(self) -> str:
        return self.name.split()[0]

    @property
    def phone_as_typed(self) -> str:
        """The phone number the way an agent copies it from an email signature."""
        assert self.phone is not None
        return _typed(self.phone)

    @property
    def messaging(self) -> list[Channel]:
        """Channels this person writes on, besides the web chat."""
        channels = [Channel.EMAIL] if self.email else []
        if self.whatsapp:
            channels.append(Channel.WHATSAPP)
        if self.phone:
            channels.append(Channel.SMS)
        return channels


_SPELLED_OUT = str.maketrans({"ı": "i", "ß": "ss", "ø": "o", "æ": "ae", "ł": "l", "đ": "d"})


def _sid(rng: random.Random, prefix: str) -> str:
    """A Twilio-style id: two letters and 32 hex digits."""
    return f"{prefix}{rng.getrandbits(128):032x}"


def _token(rng: random.Random, prefix: str, length: int) -> str:
    return prefix + "".join(rng.choices("abcdefghijkmnpqrstuvwxyz23456789", k=length))


def _ascii(value: str) -> str:
    """A name as people write it in an email address (Müller -> muller)."""
    folded = unicodedata.normalize("NFKD", value.translate(_SPELLED_OUT)).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


# -- the planned events ----------------------------------------------------------------


@dataclass
class _Planned:
    at: datetime
    seq: int
    item: Ingestible
    persona: _Persona | None


class _Demo:
    """Invents the personas and their stories; collects what to ingest, in order."""

    def __init__(self, seed: int, now: datetime, window: timedelta) -> None:
        self.seed = seed
        #: Names, addresses and numbers only. Stories draw from an rng of
        #: their own person (``rng_for``): where a story lands depends on the
        #: time of day it is loaded, and that must not change who the people are.
        self.rng = random.Random(seed)
        self.now = now
        self.window = window
        self.account_sid = _sid(self.rng, "AC")
        self.planned: list[_Planned] = []
        self.used_orders = {SHOWCASE_ORDER, "47102"}
        self.used_numbers: set[str] = set()
        self.used_emails: set[str] = set()
        self._seq = 0

    # -- ids ---------------------------------------------------------------------------

    def rng_for(self, key: str) -> random.Random:
        return random.Random(f"{self.seed}/{key}")

    def order(self, rng: random.Random) -> str:
        while True:
            number = str(rng.randint(40000, 49999))
            if number not in self.used_orders:
                self.used_orders.add(number)
                return number

    def phone_in(self, region: _Region) -> str:
        while True:
            number = self.rng.choice(region.numbers)
            if number not in self.used_numbers and number != region.our_number:
                self.used_numbers.add(number)
                return number

    def email_for(self, name: str) -> str:
        first, *rest = name.split()
        last = _ascii(rest[-1]) if rest else "mail"
        first_ascii = _ascii(first)
        styles = (
            f"{first_ascii}.{last}",
            f"{first_ascii[0]}{last}",
            f"{first_ascii}{last[0]}",
            f"{last}.{first_ascii}",
            f"{first_ascii}_{last}",
        )
        for attempt in range(50):
            local = self.rng.choice(styles) + (str(self.rng.randint(2, 98)) if attempt else "")
            address = f"{local}@{self.rng.choice(_EMAIL_DOMAINS)}"
            if address not in self.used_emails:
                self.used_emails.add(address)
                return address
        raise AssertionError("ran out of demo email addresses")

    # -- planning ----------------------------------------------------------------------

    def plan(self, at: datetime, item: Ingestible, persona: _Persona | None) -> None:
        self._seq += 1
        self.planned.append(_Planned(at, self._seq, item, persona))

    def personas(self, count: int) -> list[_Persona]:
        """``count`` people with varied names, countries and channel habits."""
        people: list[_Persona] = []
        names = {"Maria Keller", "Tomás Ferreira"}
        visitors = count // 20 if count >= 20 else min(count, 1)
        retries = 0
        while len(people) < count - visitors:
            region = self.rng.choices(_REGIONS, weights=(5, 4, 3, 2, 2))[0]
            name = f"{self.rng.choice(region.first_names.split())} {self.rng.choice(region.last_names.split())}"
            # Distinct names read better; namesakes are fine once they run out.
            if name in names and retries < 20:
                retries += 1
                continue
            retries = 0
            names.add(name)
            has_email = self.rng.random() < 0.88
            has_phone = not has_email or self.rng.random() < 0.7
            whatsapp = has_phone and self.rng.random() < 0.45
            if has_email:
                opener = Channel.EMAIL
            elif whatsapp:
                opener = Channel.WHATSAPP
            else:
                opener = Channel.VOICE
            people.append(
                _Persona(
                    name=name,
                    region=region,
                    email=self.email_for(name) if has_email else None,
                    phone=self.phone_in(region) if has_phone else None,
                    whatsapp=whatsapp,
                    chat=has_email and self.rng.random() < 0.5,
                    opener=opener,
                )
            )
        for n in range(visitors):
            region = self.rng.choice(_REGIONS)
            people.append(
                _Persona(
                    name=f"Visitor {self.rng.randint(1000, 9999)}",
                    region=region,
                    email=None,
                    phone=None,
                    whatsapp=False,
                    chat=True,
                    opener=Channel.CHAT,
                    visitor_id=_token(self.rng, f"cv{n}_", 10),
                )
            )
        return people

    @staticmethod
    def local_time(region: _Region, day: datetime, hour: float) -> datetime:
        """``hour`` o'clock, local time, on the region's calendar day at ``day``; in UTC."""
        local_date = (day + timedelta(hours=region.utc_offset)).date()
        midnight = datetime(local_date.year, local_date.month, local_date.day, tzinfo=UTC)
        return midnight + timedelta(hours=hour - region.utc_offset)

    def business(self, region: _Region, at: datetime, rng: random.Random) -> datetime:
        """``at``, or the next morning if it falls outside the region's waking hours.

        People write at night too, but a demo whose messages all arrive at
        3 a.m. local time looks wrong to anyone who reads the times.
        """
        local_hour = (at + timedelta(hours=region.utc_offset)).hour
        if 8 <= local_hour < 21:
            return at
        day = at + timedelta(days=1) if local_hour >= 21 else at
        return self.local_time(region, day, rng.uniform(8.5, 10.5))
