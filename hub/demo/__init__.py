"""Demo data: a support team's last six months, through the real write path.

``corridor demo`` (and ``make run``) fills an empty Corridor with customers of
a fictional home-and-garden shop, Larkspur, who wrote, called, texted and
chatted about orders, refunds, late deliveries, logins and bills. Nothing here
writes to the timeline directly: every event is a :class:`ChannelEvent` or an
:class:`InteractionUpdate` with a raw payload shaped like the provider's (an
RFC 822 message, a Twilio webhook form, a chat frame), ingested by
:func:`hub.ingest.ingest_many`, and every phone number linked to a customer
known by email is linked with :func:`hub.customers.add_identity`, as an agent
would. So the demo also exercises journal, dedupe, identity, threading and
search the way production traffic does.

The data is deterministic per seed (people, addresses, stories, ids), and
placed relative to *now*, so the newest conversations are always minutes to
hours old. Loading it again soon after adds nothing: the ids repeat and the
pipeline drops them as duplicates. (Days later, the stories that had not
happened yet at the first load arrive as new events.)

Its showcase is Maria Keller: she emails about a late order, calls the next
day from a phone an agent linked to her, then writes in the web chat. The three
land in one conversation, which is the point of Corridor.

Phone numbers come from ranges regulators reserve for fiction: NANP 555-0100
to 555-0199, Ofcom's drama numbers (020 7946 0xxx, 07700 900xxx), the
Bundesnetzagentur's Filmrufnummern (Berlin 030 23125 xxx and four other
cities), Arcep's 01 99 00 xx xx and ACMA's 0491 570 006-159. Emails use
example.com, example.org and example.net (RFC 2606).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr
from typing import Any
from urllib.parse import urlencode

import phonenumbers
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.auth import create_agent
from hub.customers import add_identity
from hub.events import (
    NON_PERSONAL_KINDS,
    Attachment,
    CallStatus,
    Channel,
    ChannelEvent,
    DeliveryStatus,
    Direction,
    IdentityKind,
    Ingestible,
    InteractionKind,
    InteractionUpdate,
    Party,
)
from hub.identity import normalise_email
from hub.ingest import IngestResult, ingest_many
from hub.models import Agent, Conversation, ConversationStatus, Customer, Interaction, Role, utcnow
from hub.runtime import Runtime

#: The demo logins. Printed by ``corridor demo``; never use them outside a demo.
DEMO_AGENT_EMAIL = "demo@corridor.local"
DEMO_SUPERVISOR_EMAIL = "supervisor@corridor.local"
DEMO_PASSWORD = "corridor-demo"  # noqa: S105 -- a published demo login, by design

SHOWCASE_EMAIL = "maria.keller@example.com"
SHOWCASE_ORDER = "48213"

SHOP = "Larkspur Home & Garden"
SUPPORT_ADDRESS = "support@larkspur.example.com"
SUPPORT = Party(address=SUPPORT_ADDRESS, name="Larkspur Support")
MAIL_HOST = "larkspur.example.com"
CHAT_PAGE = "https://www.larkspur.example.com"

#: Most people ``corridor demo --customers`` invents: the fictional phone
#: ranges of the smallest country run out beyond this.
MAX_CUSTOMERS = 500
#: How far back the invented history reaches.
HISTORY = timedelta(days=180)
#: Conversations quiet for longer than this are closed, as agents would have.
CLOSE_AFTER = timedelta(days=14)
#: Stories stop this long before "now": no event is in the future by the time
#: the load commits, and Maria's chat, a quarter of an hour old, is the newest
#: activity of all, so she heads any list sorted by last contact.
LATEST = timedelta(minutes=30)
#: The journal's name for who delivered the demo's payloads. The payloads
#: themselves are shaped like the real connectors' (RFC 822, Twilio forms,
#: chat frames), so the journal reads like production's.
SOURCE = "demo"

FORM = "application/x-www-form-urlencoded"
TWILIO_API = "https://api.twilio.com/2010-04-01"


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


# -- the planned events ----------------------------------------------------------------


@dataclass
class _Planned:
    at: datetime
    seq: int
    item: Ingestible
    persona: _Persona | None


@dataclass
class _Mail:
    """An email already in the story, for the next one to quote and reference."""

    message_id: str
    subject: str
    body: str
    at: datetime
    author: str
    refs: tuple[str, ...]


#: Letters NFKD does not decompose into an ASCII base letter.
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


def _quote(mail: _Mail) -> str:
    quoted = "\n".join(f"> {line}" if line else ">" for line in mail.body.splitlines())
    return f"On {mail.at:%a, %d %b %Y at %H:%M}, {mail.author} wrote:\n{quoted}"


def _rfc822(
    sender: Party,
    recipient: Party,
    subject: str,
    at: datetime,
    message_id: str,
    refs: Sequence[str],
    text: str,
    html: str | None,
) -> bytes:
    """The message as a mailer sends it: RFC 2047 names, quoted-printable UTF-8 bodies.

    Built with the compat32 MIME classes: the modern EmailMessage API parses
    every header it is given, which made it most of the demo's load time.
    """
    utf8 = Charset("utf-8")
    utf8.body_encoding = QP
    plain = MIMEText(text, "plain", utf8)  # type: ignore[arg-type]  # typeshed wants str; a Charset works
    message: Message
    if html is None:
        message = plain
    else:
        # A boundary derived from the Message-ID keeps the payload reproducible.
        boundary = "==_" + hashlib.sha256(message_id.encode()).hexdigest()[:28]
        message = MIMEMultipart("alternative", boundary=boundary)
        rich = MIMEText(html, "html", utf8)  # type: ignore[arg-type]
        for part in (plain, rich):
            del part["MIME-Version"]  # only the top level carries it
            message.attach(part)
    message["From"] = formataddr((sender.name, sender.address))
    message["To"] = formataddr((recipient.name, recipient.address))
    message["Subject"] = Header(subject, "utf-8").encode() if not subject.isascii() else subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = f"<{message_id}>"
    if refs:
        message["In-Reply-To"] = f"<{refs[-1]}>"
        message["References"] = " ".join(f"<{r}>" for r in refs)
    return message.as_bytes(policy=compat32.clone(linesep="\r\n"))


def _html(text: str) -> str:
    """A plain reply as the simple HTML a help-desk mailer sends beside it."""
    paragraphs = "".join(
        "<p>" + block.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>") + "</p>"
        for block in text.split("\n\n")
    )
    return f'<div style="font-family:Arial,sans-serif;font-size:14px">{paragraphs}</div>'


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

    def histories(self, people: Sequence[_Persona]) -> None:
        """Each person's conversations, spread over the last six months."""
        for person in people:
            rng = self.rng_for(f"{person.name}/{person.email or person.phone or person.visitor_id}")
            if person.visitor_id is not None:
                start = self.now - timedelta(days=rng.uniform(1.5, 120))
                _anonymous_chat(_Story(self, person, self.business(person.region, start, rng), rng=rng))
                continue
            count = rng.choices((1, 2, 3, 4, 5), weights=(2, 4, 4, 3, 1))[0]
            # The first contact is at least a day and a half old, so it has
            # happened even after being moved into the person's waking hours.
            oldest = rng.uniform(1.5, HISTORY.days)
            starts = sorted([oldest, *(rng.uniform(0.1, oldest) for _ in range(count - 1))])
            not_before = self.now - HISTORY
            for index, days_ago in enumerate(reversed(starts)):
                start = self.business(person.region, max(self.now - timedelta(days=days_ago), not_before), rng)
                # The first contact is on the channel that introduces them; later
                # ones on whichever channel they pick that day.
                channel = rng.choice(person.messaging) if index and person.messaging else None
                story = _Story(self, person, start, rng=rng, channel=channel)
                stories = _OPENING_STORIES if index == 0 else _STORIES
                usable = [s for s in stories if s.fits(person, first=index == 0)]
                rng.choice(usable).write(story)
                # The next conversation starts after this one has gone quiet
                # for longer than the continuation window, or it would continue it.
                not_before = story.t + self.window + timedelta(days=2)
                if not_before > self.now:
                    break


# -- one conversation, as it is written ------------------------------------------------


class _Story:
    """A conversation being written: its clock, its channel, the mail to reply to."""

    _t: datetime

    def __init__(
        self, demo: _Demo, person: _Persona, start: datetime, *, rng: random.Random, channel: Channel | None = None
    ) -> None:
        self.demo = demo
        self.p = person
        self.t = start
        self.rng = rng
        self.mail: _Mail | None = None
        self.truncated = False
        #: Nothing in this story happens after this moment.
        self.latest = demo.now - LATEST
        self.agent = self.rng.choice(_AGENT_NAMES)
        if channel is None:
            channel = person.opener if person.opener is not Channel.VOICE else None
        if channel is None and person.messaging:
            channel = self.rng.choice(person.messaging)
        self.channel: Channel = channel or Channel.SMS

    # -- the clock ---------------------------------------------------------------------

    @property
    def t(self) -> datetime:
        """The story's time: when its next event happens."""
        return self._t

    @t.setter
    def t(self, value: datetime) -> None:
        # Whole seconds, as providers' timestamps are.
        self._t = value.replace(microsecond=0)

    def wait(self, low: float, high: float) -> None:
        """Advance by ``low`` to ``high`` minutes, into waking hours."""
        self.t = self.demo.business(self.p.region, self.t + timedelta(minutes=self.rng.uniform(low, high)), self.rng)

    def wait_hours(self, low: float, high: float) -> None:
        self.wait(low * 60, high * 60)

    def next_day(self) -> None:
        self.wait_hours(20, 27)

    def _keep(self, at: datetime) -> bool:
        """Whether an event at ``at`` has happened yet; a story stops at "now"."""
        if self.truncated or at > self.latest:
            self.truncated = True
            return False
        return True

    def plan(self, item: Ingestible, at: datetime | None = None) -> None:
        self.demo.plan(at or self.t, item, self.p)

    # -- who the customer is on each channel -------------------------------------------

    def _customer(self, channel: Channel) -> Party:
        p = self.p
        if channel is Channel.EMAIL:
            assert p.email is not None
            return Party(address=p.email, name=p.name)
        if channel is Channel.CHAT:
            if p.email:
                # The visitor gave their email in the widget: that is who they are.
                return Party(address=p.email, name=p.name, kind=IdentityKind.EMAIL)
            assert p.visitor_id is not None
            return Party(address=p.visitor_id, name=p.name, kind=IdentityKind.CHAT_VISITOR)
        assert p.phone is not None
        if channel is Channel.WHATSAPP:
            return Party(address=f"whatsapp:{p.phone}", name=p.name, kind=IdentityKind.PHONE)
        # SMS carries no name; a call carries the caller-id name.
        return Party(address=p.phone, name=p.name if channel is Channel.VOICE else "", kind=IdentityKind.PHONE)

    # -- email -------------------------------------------------------------------------

    def email_in(self, subject: str, body: str) -> None:
        """The customer writes (a reply when there is mail to reply to)."""
        p = self.p
        assert p.email is not None
        signature = self.rng.choice((f"\n\n{p.first_name}", f"\n\nBest,\n{p.name}", f"\n\nThanks,\n{p.name}"))
        self._email(Direction.INBOUND, subject, body + signature, f"{self.mail_id()}@mail.{p.email.split('@')[1]}")

    def email_out(self, body: str) -> None:
        signature = f"\n\nBest wishes,\n{self.agent}\n{SHOP} · Customer Care"
        self._email(Direction.OUTBOUND, "", body + signature, f"{self.mail_id()}@{MAIL_HOST}", html=True)

    def sid(self, prefix: str) -> str:
        return _sid(self.rng, prefix)

    def token(self, prefix: str, length: int = 12) -> str:
        return _token(self.rng, prefix, length)

    def mail_id(self) -> str:
        """The unique part of a Message-ID, as mailers make them."""
        return f"{self.rng.getrandbits(64):016x}.{self.rng.getrandbits(32):08x}"

    def _email(self, direction: Direction, subject: str, body: str, message_id: str, *, html: bool = False) -> None:
        if not self._keep(self.t):
            return
        p = self.p
        assert p.email is not None
        customer = Party(address=p.email, name=p.name)
        sender, recipient = (customer, SUPPORT) if direction is Direction.INBOUND else (SUPPORT, customer)
        previous = self.mail
        if previous is not None:
            subject = subject or (
                previous.subject if previous.subject.lower().startswith("re:") else f"Re: {previous.subject}"
            )
            refs = (*previous.refs, previous.message_id)
            text = f"{body}\n\n{_quote(previous)}"
        else:
            refs = ()
            text = body
        raw = _rfc822(sender, recipient, subject, self.t, message_id, refs, text, _html(text) if html else None)
        event = ChannelEvent(
            channel=Channel.EMAIL,
            external_id=message_id,
            occurred_at=self.t,
            direction=direction,
            sender=sender,
            recipients=(recipient,),
            subject=subject,
            text=text,
            reply_text=body if previous is not None else "",
            html=_html(text) if html else "",
            thread_refs=tuple(reversed(refs)),
            metadata={
                "message_id": message_id,
                "in_reply_to": refs[-1] if refs else None,
                "references_count": len(refs),
                "from": f"{sender.name} <{sender.address}>",
                "to": [recipient.address],
                "cc": [],
                "auto_reply": False,
                "bounce": False,
            },
            raw=raw,
            raw_content_type="message/rfc822",
            delivery_status=DeliveryStatus.RECEIVED if direction is Direction.INBOUND else DeliveryStatus.SENT,
        )
        self.plan(event)
        author = p.name if direction is Direction.INBOUND else f"{SHOP} Customer Care"
        self.mail = _Mail(message_id, subject, body, self.t, author, refs)

    # -- SMS and WhatsApp --------------------------------------------------------------

    def message_in(self, channel: Channel, text: str, *, photos: int = 0) -> None:
        if not self._keep(self.t):
            return
        p = self.p
        assert p.phone is not None
        ours = p.region.our_number
        prefix = "whatsapp:" if channel is Channel.WHATSAPP else ""
        sid = self.sid("MM" if photos else "SM")
        form: dict[str, str] = {
            "ToCountry": p.region.code,
            "SmsMessageSid": sid,
            "NumMedia": str(photos),
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": text,
            "To": prefix + ours,
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.demo.account_sid,
            "From": prefix + p.phone,
            "ApiVersion": "2010-04-01",
        }
        metadata: dict[str, Any] = {"to": prefix + ours, "account_sid": self.demo.account_sid, "num_segments": 1}
        if channel is Channel.WHATSAPP:
            form.update(ProfileName=p.name, WaId=p.phone.lstrip("+"), MessageType="image" if photos else "text")
            metadata.update(profile_name=p.name, wa_id=p.phone.lstrip("+"))
        else:
            form["FromCountry"] = p.region.code
        attachments = []
        for n in range(photos):
            url = f"{TWILIO_API}/Accounts/{self.demo.account_sid}/Messages/{sid}/Media/{self.sid('ME')}"
            form[f"MediaUrl{n}"] = url
            form[f"MediaContentType{n}"] = "image/jpeg"
            attachments.append(
                Attachment(filename=url.rsplit("/", 1)[1] + ".jpg", content_type="image/jpeg", size=0, url=url)
            )
        self.plan(
            ChannelEvent(
                channel=channel,
                external_id=sid,
                occurred_at=self.t,
                direction=Direction.INBOUND,
                sender=Party(address=prefix + p.phone, name=p.name if prefix else "", kind=IdentityKind.PHONE),
                recipients=(Party(address=prefix + ours, name=SHOP),),
                text=text,
                attachments=tuple(attachments),
                metadata=metadata,
                raw=urlencode(form).encode(),
                raw_content_type=FORM,
                delivery_status=DeliveryStatus.RECEIVED,
            ),
        )

    def message_out(self, channel: Channel, text: str, *, fails: bool = False) -> None:
        """An agent's SMS or WhatsApp reply, then Twilio's status callbacks."""
        if not self._keep(self.t):
            return
        p = self.p
        assert p.phone is not None
        prefix = "whatsapp:" if channel is Channel.WHATSAPP else ""
        sid = self.sid("SM")
        ours, theirs = prefix + p.region.our_number, prefix + p.phone
        # What Twilio's REST API answers when the message is created.
        created = {
            "sid": sid,
            "account_sid": self.demo.account_sid,
            "from": ours,
            "to": theirs,
            "body": text,
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": "1",
            "api_version": "2010-04-01",
            "date_created": format_datetime(self.t),
        }
        self.plan(
            ChannelEvent(
                channel=channel,
                external_id=sid,
                occurred_at=self.t,
                direction=Direction.OUTBOUND,
                sender=Party(address=ours, name=SHOP),
                recipients=(Party(address=theirs, kind=IdentityKind.PHONE),),
                text=text,
                metadata={"agent": self.agent},
                raw=json.dumps(created).encode(),
                raw_content_type="application/json",
                delivery_status=DeliveryStatus.QUEUED,
            ),
        )
        final = ("undelivered",) if fails else (("delivered", "read") if prefix else ("delivered",))
        at = self.t
        for status in ("sent", *final):
            at += timedelta(seconds=self.rng.randint(1, 20 if status != "read" else 900))
            self._message_status(channel, sid, status, at, ours, theirs)

    def _message_status(self, channel: Channel, sid: str, status: str, at: datetime, ours: str, theirs: str) -> None:
        form = {
            "MessageSid": sid,
            "MessageStatus": status,
            "AccountSid": self.demo.account_sid,
            "From": ours,
            "To": theirs,
            "ApiVersion": "2010-04-01",
        }
        error_code = error_message = None
        if status == "undelivered":
            error_code, error_message = "30003", "Unreachable destination handset"
            form.update(ErrorCode=error_code)
        self.plan(
            InteractionUpdate(
                channel=channel,
                external_id=sid,
                update_id=f"{sid}:{status}",
                occurred_at=min(at, self.demo.now),
                raw=urlencode(form).encode(),
                raw_content_type=FORM,
                status=status,
                error_code=error_code,
                error_message=error_message,
            ),
            at=min(at, self.demo.now),
        )

    # -- calls -------------------------------------------------------------------------

    def call_in(self, seconds: int, *, answered: bool = True, withheld: bool = False) -> str:
        """A call to our number; answered (``seconds`` long) or not. Returns its CallSid."""
        sid = self.sid("CA")
        if not self._keep(self.t):
            return sid
        p = self.p
        ours = p.region.our_number
        if withheld:
            caller_id = "anonymous"
            caller = Party(address=f"withheld:{sid}", kind=IdentityKind.WITHHELD)
        else:
            assert p.phone is not None
            caller_id = p.phone
            caller = self._customer(Channel.VOICE)
        form = {
            "Called": ours,
            "ToCountry": p.region.code,
            "Direction": "inbound",
            "CallSid": sid,
            "To": ours,
            "CallStatus": "ringing",
            "From": caller_id,
            "Caller": caller_id,
            "AccountSid": self.demo.account_sid,
            "ApiVersion": "2010-04-01",
            "Timestamp": format_datetime(self.t),
        }
        metadata: dict[str, Any] = {
            "call_status": "ringing",
            "to": ours,
            "caller_id": caller_id,
            "account_sid": self.demo.account_sid,
        }
        if withheld:
            metadata["withheld"] = True
        elif caller.name:
            form["CallerName"] = caller.name
            metadata["caller_name"] = caller.name
        self.plan(
            ChannelEvent(
                channel=Channel.VOICE,
                external_id=sid,
                occurred_at=self.t,
                direction=Direction.INBOUND,
                sender=caller,
                recipients=(Party(address=ours, name=SHOP),),
                kind=InteractionKind.CALL,
                metadata=metadata,
                raw=urlencode(form).encode(),
                raw_content_type=FORM,
            ),
        )
        ended = self.t + timedelta(seconds=seconds + self.rng.randint(5, 25))
        status = CallStatus.COMPLETED if answered else CallStatus.NO_ANSWER
        self._call_status(sid, status, seconds if answered else 0, ended, caller_id, ours)
        self.t = ended
        return sid

    def call_out(self, seconds: int) -> None:
        """An agent calls the customer back."""
        sid = self.sid("CA")
        if not self._keep(self.t):
            return
        p = self.p
        assert p.phone is not None
        ours = p.region.our_number
        form = {
            "Called": p.phone,
            "Direction": "outbound-api",
            "CallSid": sid,
            "To": p.phone,
            "CallStatus": "initiated",
            "From": ours,
            "AccountSid": self.demo.account_sid,
            "ApiVersion": "2010-04-01",
            "Timestamp": format_datetime(self.t),
        }
        self.plan(
            ChannelEvent(
                channel=Channel.VOICE,
                external_id=sid,
                occurred_at=self.t,
                direction=Direction.OUTBOUND,
                sender=Party(address=ours, name=SHOP),
                recipients=(Party(address=p.phone, kind=IdentityKind.PHONE),),
                kind=InteractionKind.CALL,
                metadata={"call_status": "queued", "to": p.phone, "agent": self.agent},
                raw=urlencode(form).encode(),
                raw_content_type=FORM,
            ),
        )
        ended = self.t + timedelta(seconds=seconds + self.rng.randint(8, 30))
        self._call_status(sid, CallStatus.COMPLETED, seconds, ended, ours, p.phone)
        self.t = ended

    def _call_status(self, sid: str, status: CallStatus, seconds: int, at: datetime, caller: str, called: str) -> None:
        at = min(at, self.demo.now)
        form = {
            "CallSid": sid,
            "CallStatus": status.value,
            "CallDuration": str(seconds),
            "From": caller,
            "To": called,
            "AccountSid": self.demo.account_sid,
            "CallbackSource": "call-progress-events",
            "ApiVersion": "2010-04-01",
            "Timestamp": format_datetime(at),
        }
        self.plan(
            InteractionUpdate(
                channel=Channel.VOICE,
                external_id=sid,
                update_id=f"{sid}:{status.value}",
                occurred_at=at,
                raw=urlencode(form).encode(),
                raw_content_type=FORM,
                status=status.value,
                duration_seconds=seconds,
            ),
            at=at,
        )

    def voicemail(self, transcript: str) -> None:
        """Nobody answered, so the caller left a message; Twilio transcribed it."""
        start = self.t
        seconds = max(12, len(transcript) // 14)
        sid = self.call_in(seconds)
        if self.truncated:
            return
        assert self.p.phone is not None
        recording = self.sid("RE")
        url = f"{TWILIO_API}/Accounts/{self.demo.account_sid}/Recordings/{recording}"
        at = start + timedelta(seconds=8)
        form = {
            "RecordingSid": recording,
            "CallSid": sid,
            "RecordingStatus": "completed",
            "RecordingUrl": url,
            "RecordingDuration": str(seconds - 6),
            "RecordingSource": "RecordVerb",
            "RecordingChannels": "1",
            "AccountSid": self.demo.account_sid,
            "RecordingStartTime": format_datetime(at),
        }
        self.plan(
            InteractionUpdate(
                channel=Channel.VOICE,
                external_id=sid,
                update_id=f"{recording}:completed",
                occurred_at=at,
                raw=urlencode(form).encode(),
                raw_content_type=FORM,
                kind=InteractionKind.VOICEMAIL,
                attachments=(
                    Attachment(filename=f"{recording}.mp3", content_type="audio/mpeg", size=0, url=url + ".mp3"),
                ),
                metadata={
                    "recording": {
                        "sid": recording,
                        "status": "completed",
                        "duration_seconds": seconds - 6,
                        "source": "RecordVerb",
                        "channels": "1",
                    }
                },
            ),
            at=at,
        )
        transcription = self.sid("TR")
        at = min(self.t + timedelta(seconds=self.rng.randint(30, 90)), self.demo.now)
        form = {
            "TranscriptionSid": transcription,
            "TranscriptionStatus": "completed",
            "TranscriptionText": transcript,
            "TranscriptionType": "fast",
            "RecordingSid": recording,
            "RecordingUrl": url,
            "CallSid": sid,
            "AccountSid": self.demo.account_sid,
            "From": self.p.phone,
            "To": self.p.region.our_number,
            "ApiVersion": "2010-04-01",
        }
        self.plan(
            InteractionUpdate(
                channel=Channel.VOICE,
                external_id=sid,
                update_id=f"{transcription}:completed",
                occurred_at=at,
                raw=urlencode(form).encode(),
                raw_content_type=FORM,
                text_append=transcript,
                kind=InteractionKind.VOICEMAIL,
                metadata={"transcription": {"sid": transcription, "status": "completed", "recording_sid": recording}},
            ),
            at=at,
        )

    # -- web chat ----------------------------------------------------------------------

    def chat(self, lines: Sequence[tuple[str, str]], *, page: str = "/") -> None:
        """A chat session: ("c", text) from the customer, ("a", text) from the agent."""
        session = self.token("chs_", 16)
        customer = self._customer(Channel.CHAT)
        agent = Party(address=f"agent:{self.agent.lower()}@{MAIL_HOST}", name=f"{self.agent} ({SHOP})")
        for n, (who, text) in enumerate(lines):
            if n:
                self.t += timedelta(seconds=self.rng.randint(25, 140))
            if not self._keep(self.t):
                return
            inbound = who == "c"
            message_id = self.token("chm_", 16)
            frame = {
                "type": "message",
                "session_id": session,
                "message_id": message_id,
                "sent_at": self.t.isoformat().replace("+00:00", "Z"),
                "author": "visitor" if inbound else "agent",
                "visitor": {
                    "id": self.p.visitor_id or f"cv_{_ascii(self.p.name)}",
                    "name": self.p.name,
                    **({"email": self.p.email} if self.p.email else {}),
                },
                "text": text,
                "page_url": CHAT_PAGE + page,
            }
            if not inbound:
                frame["agent"] = {"name": self.agent}
            self.plan(
                ChannelEvent(
                    channel=Channel.CHAT,
                    external_id=message_id,
                    occurred_at=self.t,
                    direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
                    sender=customer if inbound else agent,
                    recipients=(agent,) if inbound else (customer,),
                    text=text,
                    session=session,
                    metadata={"page_url": CHAT_PAGE + page, **({} if inbound else {"agent": self.agent})},
                    raw=json.dumps(frame, ensure_ascii=False).encode(),
                    raw_content_type="application/json",
                    delivery_status=DeliveryStatus.RECEIVED if inbound else DeliveryStatus.DELIVERED,
                ),
            )

    # -- notes -------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """An agent's internal note on the customer's conversation."""
        if not self._keep(self.t):
            return
        p = self.p
        # A note is about the customer: the pipeline finds them by this address.
        about = self._customer(Channel.EMAIL) if p.email else self._customer(Channel.VOICE)
        note_id = self.token("note_", 16)
        self.plan(
            ChannelEvent(
                channel=Channel.OTHER,
                external_id=note_id,
                occurred_at=self.t,
                direction=Direction.INTERNAL,
                sender=about,
                kind=InteractionKind.NOTE,
                text=text,
                metadata={"agent": self.agent},
                raw=json.dumps(
                    {
                        "note": {
                            "id": note_id,
                            "customer": about.address,
                            "agent": self.agent,
                            "text": text,
                            "at": self.t.isoformat(),
                        }
                    }
                ).encode(),
                raw_content_type="application/json",
            ),
        )

    # -- channel-neutral steps, for stories told on whichever channel fits --------------

    def customer_writes(self, subject: str, body: str, short: str) -> None:
        if self.channel is Channel.EMAIL:
            self.email_in(subject, body)
        else:
            self.message_in(self.channel, short)

    def agent_replies(self, body: str, short: str) -> None:
        if self.channel is Channel.EMAIL:
            self.email_out(body)
        else:
            self.message_out(self.channel, short)


# -- the stories -----------------------------------------------------------------------


@dataclass(frozen=True)
class _StoryKind:
    write: Callable[[_Story], None]
    #: Needs: "email", "phone", "whatsapp", "chat".
    needs: frozenset[str] = frozenset()
    #: Whether it can be someone's first contact (it must start with them,
    #: on a channel that carries their name).
    opens: bool = True
    #: Starts with the customer calling (when they have a phone): the only
    #: way a person known by nothing but a phone number gets in touch first.
    calls_first: bool = False

    def fits(self, person: _Persona, *, first: bool) -> bool:
        has = {
            "email": person.email is not None,
            "phone": person.phone is not None,
            "whatsapp": person.whatsapp,
            "chat": person.chat,
        }
        if first and not self.opens:
            return False
        if first and person.opener is Channel.VOICE and not self.calls_first:
            return False
        return all(has[n] for n in self.needs) and person.visitor_id is None


def _product(story: _Story) -> tuple[str, str, str]:
    name, price = story.rng.choice(_PRODUCTS)
    return name, story.demo.order(story.rng), f"{story.p.region.currency}{price}"


def _late_delivery(s: _Story) -> None:
    product, order, _ = _product(s)
    carrier = s.p.region.carrier
    s.customer_writes(
        f"Where is my order #{order}?",
        s.rng.choice(
            (
                f"Hello,\n\nI ordered the {product} (order #{order}) two weeks ago and the {carrier} tracking has "
                "said 'in transit' for six days now. Can you tell me what is going on?",
                f"Hi there,\n\nmy order #{order} was supposed to arrive on Friday. Nothing came and the tracking "
                "link doesn't load. Could you check where it is?",
            )
        ),
        f"Hi, my order #{order} still hasn't arrived and the tracking hasn't moved in days. Can you check?",
    )
    s.wait(40, 300)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nsorry about the wait. {carrier} tell us the parcel for order #{order} was held "
        "at their depot after a scanning fault; it is back on the road and should reach you within two working "
        "days. If it hasn't by then, reply here and we'll send a replacement straight away.",
        f"Hi {s.p.first_name}, sorry! {carrier} held #{order} at their depot; it's moving again and should arrive "
        "within 2 working days. If not, just reply and we'll send a replacement.",
    )
    if s.rng.random() < 0.6:
        s.wait_hours(26, 50)
        s.customer_writes("", "It arrived this morning. Thanks for chasing it!", "Arrived today, thank you!")


def _refund(s: _Story) -> None:
    product, order, price = _product(s)
    if s.p.phone:
        s.call_in(s.rng.randint(180, 560))
        s.wait(1, 6)
        s.note(
            f"Caller returned the {product} (#{order}) three weeks ago; refund was stuck in review. "
            f"Released {price} to the original card."
        )
        s.wait(10, 90)
        text = (
            f"{SHOP}: we've issued your refund of {price} for order #{order}. It can take 3-5 working days "
            "to show on your statement."
        )
        if s.p.email and s.rng.random() < 0.5:
            s.channel = Channel.EMAIL
            s.email_out(
                f"Hi {s.p.first_name},\n\nas promised on the phone: your refund of {price} for order "
                f"#{order} has been issued today. It can take 3-5 working days to appear."
            )
        else:
            s.message_out(Channel.SMS, text)
        return
    s.customer_writes(
        f"Refund for order #{order}",
        f"Hello,\n\nI sent the {product} back on the 3rd (order #{order}) and the return shows as received, "
        "but I still haven't had my refund.",
        f"I returned order #{order} weeks ago and still no refund?",
    )
    s.wait(60, 240)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nthank you for your patience. The refund of {price} was waiting for a warehouse "
        "check that had been completed but not recorded. I've released it now; it will show within 3-5 working "
        "days.",
        f"Hi {s.p.first_name}, refund of {price} for #{order} released today, 3-5 working days to show.",
    )


def _account_access(s: _Story) -> None:
    if s.p.chat:
        s.chat(
            [
                ("c", "Hi, I can't log in to my account. The password reset email never arrives."),
                ("a", f"Hi {s.p.first_name}, I'm {s.agent}. Let me look. Which email address do you use with us?"),
                ("c", f"{s.p.email}"),
                (
                    "a",
                    "Thanks. Our resets to that address were being deferred by your provider. I've sent a new "
                    "link just now; it's valid for an hour. Could you check your inbox (and spam)?",
                ),
                ("c", "Got it, I'm in. Thank you!"),
                ("a", "Great. Anything else I can help with?"),
            ],
            page="/account/login",
        )
        return
    s.customer_writes(
        "Can't log in",
        "Hello,\n\nI've tried to reset my password three times but the email never arrives. Can you help?",
        "Hi, password reset for my Larkspur account never arrives. Can you help?",
    )
    s.wait(30, 200)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nour reset emails to your address were being deferred. I've sent a fresh link "
        "that is valid for one hour; please check your spam folder too.",
        f"Hi {s.p.first_name}, I've sent a fresh reset link to the email on your account, valid for 1 hour.",
    )


def _double_charge(s: _Story) -> None:
    product, order, price = _product(s)
    s.customer_writes(
        f"Charged twice for order #{order}",
        f"Hi,\n\nmy card statement shows two payments of {price} for order #{order} ({product}). "
        "Please refund the duplicate.",
        f"I've been charged {price} twice for order #{order}. Please refund one.",
    )
    s.wait(45, 240)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\none of the two is a card pre-authorisation from your first attempt at checkout. "
        "It was never collected and your bank will release it within 7 days.",
        f"Hi {s.p.first_name}, one of the two is a pre-authorisation that was never collected; your bank "
        "releases it within 7 days.",
    )
    if s.p.phone and s.rng.random() < 0.7:
        s.next_day()
        s.call_in(s.rng.randint(200, 480))
        s.wait(2, 8)
        s.note(f"Bank says both {price} charges are settled, not pending. Refunded the duplicate manually.")
        s.wait(5, 30)
        s.message_out(
            Channel.SMS,
            f"{SHOP}: the duplicate payment of {price} for order #{order} has been refunded. Sorry for the trouble.",
        )


def _damaged(s: _Story) -> None:
    product, order, _ = _product(s)
    if s.p.whatsapp:
        s.channel = Channel.WHATSAPP
        s.message_in(
            Channel.WHATSAPP,
            f"Hi, my {product} from order #{order} arrived broken. Photos attached.",
            photos=s.rng.randint(1, 3),
        )
    else:
        s.customer_writes(
            f"Damaged item, order #{order}",
            f"Hello,\n\nthe {product} from order #{order} arrived today with a crack along one side. "
            "The box looked fine. What can you do?",
            f"My {product} from order #{order} arrived damaged. What now?",
        )
    s.wait(20, 180)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nI'm sorry it arrived like that. A replacement for order #{order} leaves our "
        "warehouse tomorrow; there's no need to send the damaged one back.",
        f"So sorry, {s.p.first_name}! A replacement for #{order} ships tomorrow; no need to return the damaged one.",
    )


def _missed_call(s: _Story) -> None:
    _, order, _ = _product(s)
    s.call_in(0, answered=False)
    s.wait(1, 3)
    s.voicemail(
        s.rng.choice(
            (
                f"Hi, this is {s.p.name} calling about order {order}. The delivery driver left it at the wrong "
                "address. Please call me back when you can. Thanks.",
                f"Hello, {s.p.first_name} here, order number {order}. I'd like to change the delivery day if "
                "possible. Call me back please.",
            )
        )
    )
    s.wait_hours(14, 20)
    s.call_out(s.rng.randint(120, 400))
    s.wait(1, 5)
    s.note(f"Called back about #{order}; sorted with the courier, customer happy.")


def _address_change(s: _Story) -> None:
    _, order, _ = _product(s)
    s.message_in(Channel.SMS, f"Hi, can I still change the delivery address for order #{order}? I'm moving on Monday.")
    s.wait(15, 120)
    s.message_out(
        Channel.SMS, f"Hi {s.p.first_name}, yes if it hasn't shipped. Reply with the new address and we'll update it."
    )
    s.wait(5, 60)
    s.message_in(Channel.SMS, "14 Station Road, flat 3. Thanks!")
    s.wait(10, 60)
    s.message_out(Channel.SMS, f"Done: order #{order} now goes to 14 Station Road, flat 3.")


def _delivery_slot(s: _Story) -> None:
    _, order, _ = _product(s)
    fails = s.rng.random() < 0.2
    s.message_out(
        Channel.SMS,
        f"{SHOP}: order #{order} arrives tomorrow between 10:00 and 14:00. Reply 2 to pick another day.",
        fails=fails,
    )
    if not fails and s.rng.random() < 0.5:
        s.wait(5, 120)
        s.message_in(Channel.SMS, "2")
        s.wait(5, 40)
        s.message_out(Channel.SMS, f"No problem: order #{order} is now booked for Friday, 10:00-14:00.")


def _product_question(s: _Story) -> None:
    product, _, price = _product(s)
    if s.p.chat:
        s.chat(
            [
                ("c", f"Hello! Is the {product} suitable for outdoor use all year?"),
                (
                    "a",
                    f"Hi {s.p.first_name}, it's fine outdoors from spring to autumn. We recommend a cover "
                    "or storing it inside over winter.",
                ),
                ("c", "Ok. And is it in stock?"),
                ("a", f"Yes, it ships within 2 days. It's {price} with free delivery."),
                ("c", "Perfect, thanks."),
            ],
            page="/products/" + _ascii(product.split("(")[0])[:24],
        )
        return
    s.customer_writes(
        f"Question about the {product}",
        f"Hello,\n\nbefore I order: can the {product} stay outside all year round?",
        f"Can the {product} stay outside all year?",
    )
    s.wait(30, 200)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nit's fine outdoors from spring to autumn; over winter we recommend a cover.",
        "Fine outdoors spring to autumn; in winter use a cover or keep it inside.",
    )


def _invoice(s: _Story) -> None:
    _, order, _ = _product(s)
    s.channel = Channel.EMAIL
    s.email_in(
        f"Invoice for order #{order}",
        f"Hello,\n\ncould you send me a VAT invoice for order #{order}? It's for my business.",
    )
    s.wait(60, 400)
    s.email_out(
        f"Hi {s.p.first_name},\n\nyou can download the invoice for order #{order} from "
        f"https://www.larkspur.example.com/account/orders/{order}/invoice at any time."
    )


def _returns(s: _Story) -> None:
    product, order, _ = _product(s)
    s.customer_writes(
        "How do I return an item?",
        f"Hi,\n\nthe {product} (order #{order}) doesn't fit the space after all. How do I send it back?",
        f"How do I return the {product} from order #{order}?",
    )
    s.wait(30, 200)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nno problem: here is your prepaid return label for order #{order}: "
        f"https://www.larkspur.example.com/returns/{order}. Drop the parcel at any {s.p.region.carrier} point "
        "within 30 days.",
        f"Hi {s.p.first_name}, your return label for #{order}: https://www.larkspur.example.com/returns/{order}",
    )


def _anonymous_chat(s: _Story) -> None:
    country = s.rng.choice(("Norway", "Iceland", "Switzerland"))
    s.chat(
        [
            ("c", f"hi, do you ship to {country}?"),
            (
                "a",
                f"Hi! Not yet, I'm afraid: we deliver to the UK, EU, US and Australia. {country} is planned "
                "for next year.",
            ),
            ("c", "ok thanks"),
        ],
        page="/help/delivery",
    )


_STORIES = (
    _StoryKind(_late_delivery),
    _StoryKind(_refund, calls_first=True),
    _StoryKind(_account_access),
    _StoryKind(_double_charge),
    _StoryKind(_damaged),
    _StoryKind(_missed_call, frozenset({"phone"}), calls_first=True),
    _StoryKind(_address_change, frozenset({"phone"}), opens=False),
    _StoryKind(_delivery_slot, frozenset({"phone"}), opens=False),
    _StoryKind(_product_question),
    _StoryKind(_invoice, frozenset({"email"})),
    _StoryKind(_returns),
)
_OPENING_STORIES = tuple(s for s in _STORIES if s.opens)


# -- the showcase ----------------------------------------------------------------------


def _maria(demo: _Demo) -> _Persona:
    """Maria Keller: an old exchange, then email -> call -> chat about one late order."""
    berlin = _REGION["DE"]
    maria = _Persona(
        name="Maria Keller",
        region=berlin,
        email=SHOWCASE_EMAIL,
        phone="+493023125042",
        whatsapp=False,
        chat=True,
        opener=Channel.EMAIL,
    )
    demo.used_numbers.add(maria.phone or "")
    demo.used_emails.add(SHOWCASE_EMAIL)

    rng = demo.rng_for(maria.name)
    earlier = _Story(demo, maria, demo.local_time(berlin, demo.now - timedelta(days=96), 19.4), rng=rng)
    earlier.agent = "Jonas"
    earlier.email_in(
        "Exchange for order #47102",
        "Hello,\n\nthe Fern linen duvet cover from order #47102 is the wrong size (I need 155x220). Can I exchange it?",
    )
    earlier.wait(90, 150)
    earlier.email_out(
        "Hi Maria,\n\nof course. I've booked a free collection and the 155x220 cover will be sent "
        "as soon as the courier has picked up the other one."
    )
    earlier.wait_hours(40, 46)
    earlier.email_in("", "Got it, thank you - perfect fit.")

    # Each step lands inside the continuation window of the one before, so
    # with any window of twelve hours or more the email, the call and the chat
    # read as one conversation.
    gap = min(timedelta(hours=22), demo.window * 0.75)
    s = _Story(demo, maria, demo.now - 2 * gap - timedelta(hours=3, minutes=12), rng=rng, channel=Channel.EMAIL)
    s.agent = "Sam"
    s.email_in(
        f"Order #{SHOWCASE_ORDER} - delivery late",
        f"Hello,\n\nmy order #{SHOWCASE_ORDER} (Aster teak garden bench) should have arrived last Thursday. The DHL "
        "tracking has shown 'parcel in transit' for a week and nobody at DHL can tell me more.\n\n"
        "Can you find out where it is? I'd also like to know whether you can send a replacement if it's lost. "
        f"You can reach me on {maria.phone_as_typed} during the day.",
    )
    s.t += timedelta(hours=2, minutes=17)
    s.email_out(
        f"Hi Maria,\n\nthank you for writing, and sorry about the wait. I've opened an investigation with DHL for "
        f"order #{SHOWCASE_ORDER}; they usually answer within a day. I'll get back to you as soon as I hear, "
        "by email or on the number you gave.",
    )
    s.t = s.t - timedelta(hours=2, minutes=17) + gap
    s.call_in(374)
    s.t += timedelta(minutes=3)
    s.note(
        f"Maria called about #{SHOWCASE_ORDER}. DHL confirmed the parcel was damaged at the Leipzig hub. "
        "Sent a replacement bench by express, no charge; she keeps any refund rights if it is late too."
    )
    s.t += timedelta(minutes=38)
    s.message_out(
        Channel.SMS,
        f"{SHOP}: the replacement for order #{SHOWCASE_ORDER} ships today with DHL Express, "
        "tracking JJD0146000062812. Reply here or chat with us if you need anything.",
    )
    s.t = demo.now - timedelta(minutes=24)
    s.latest = demo.now - timedelta(minutes=1)
    s.agent = "Priya"
    s.chat(
        [
            (
                "c",
                f"Hi, it's Maria Keller again (order #{SHOWCASE_ORDER}). DHL says the replacement was delivered "
                "to a neighbour, but not which one?",
            ),
            (
                "a",
                "Hi Maria, I'm Priya. I can see the whole story with the lost bench here. One moment, I'll check "
                "the proof of delivery.",
            ),
            ("c", "Thanks!"),
            ("a", "DHL's proof of delivery says it was left with Weber at number 12, signed at 11:42."),
            ("c", "Perfect, I'll go over now. Thank you for sorting this out so quickly!"),
        ],
        page=f"/account/orders/{SHOWCASE_ORDER}",
    )
    return maria


def _tomas(demo: _Demo) -> _Persona:
    """Tomás Ferreira: an email about a broken planter, continued on WhatsApp with photos."""
    london = _REGION["GB"]
    tomas = _Persona(
        name="Tomás Ferreira",
        region=london,
        email="tomas.ferreira@example.org",
        phone="+447700900123",
        whatsapp=True,
        chat=False,
        opener=Channel.EMAIL,
    )
    demo.used_numbers.add(tomas.phone or "")
    demo.used_emails.add(tomas.email or "")
    rng = demo.rng_for(tomas.name)
    order = demo.order(rng)
    start = demo.local_time(london, demo.now - timedelta(days=6), 18.7)
    s = _Story(demo, tomas, start, rng=rng, channel=Channel.EMAIL)
    s.agent = "Claire"
    s.email_in(
        f"Cracked planter - order #{order}",
        f"Hi,\n\nthe large pot from the Juniper ceramic planter set (order #{order}) arrived cracked. "
        "Can I get a replacement?",
    )
    s.t = demo.local_time(london, s.t + timedelta(hours=14), 9.3)
    s.email_out(
        "Hi Tomás,\n\nI'm sorry to hear that. Could you send us a photo or two? WhatsApp is easiest: message us "
        f"on {_typed(london.our_number)} "
        "from your phone and it will reach me.",
    )
    s.wait_hours(3, 5)
    s.message_in(Channel.WHATSAPP, f"Hi Claire, photos of the cracked pot from order #{order}", photos=2)
    s.wait(20, 40)
    s.message_out(
        Channel.WHATSAPP, "Thanks Tomás, that's clear. A new pot is on its way, no need to return the broken one."
    )
    return tomas


def _withheld_and_short_code(demo: _Demo) -> None:
    """Senders that are not a person: they never join anyone's history."""
    region = _REGION["US"]
    caller = _Persona(
        name="Withheld caller", region=region, email=None, phone=None, whatsapp=False, chat=False, opener=Channel.VOICE
    )
    rng = demo.rng_for("withheld and short code")
    start = demo.local_time(region, demo.now - timedelta(days=4), 11.2)
    s = _Story(demo, caller, start, rng=rng, channel=Channel.VOICE)
    s.call_in(143, withheld=True)

    sender = _Persona(
        name="Short code 72273", region=region, email=None, phone=None, whatsapp=False, chat=False, opener=Channel.SMS
    )
    for days_ago, text in (
        (41, "PARCELNET: Collection booked for return RMA-20931, Thu 10:00-14:00. Reply STOP to opt out."),
        (12, "PARCELNET: Return RMA-21877 collected from Larkspur Returns. Reply STOP to opt out."),
    ):
        at = demo.local_time(region, demo.now - timedelta(days=days_ago), 7.5)
        sid = _sid(rng, "SM")
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": text,
            "From": "72273",
            "To": region.our_number,
            "NumSegments": "1",
            "NumMedia": "0",
            "AccountSid": demo.account_sid,
            "ApiVersion": "2010-04-01",
        }
        demo.plan(
            at,
            ChannelEvent(
                channel=Channel.SMS,
                external_id=sid,
                occurred_at=at,
                direction=Direction.INBOUND,
                sender=Party(address="72273", kind=IdentityKind.SHORT_CODE),
                recipients=(Party(address=region.our_number, name=SHOP),),
                text=text,
                metadata={"to": region.our_number, "account_sid": demo.account_sid, "num_segments": 1},
                raw=urlencode(form).encode(),
                raw_content_type=FORM,
                delivery_status=DeliveryStatus.RECEIVED,
            ),
            sender,
        )


# -- identity links, as agents make them -----------------------------------------------


@dataclass(frozen=True)
class _Link:
    person: _Persona
    kind: IdentityKind
    address: str


def _links(planned: Sequence[_Planned], first: dict[int, _Planned]) -> list[_Link]:
    """The addresses an agent links to each person's customer after their first contact.

    Someone who first emailed and later calls from their phone is one customer
    because an agent linked the phone (from an email signature, during a call);
    Corridor never guesses such a link by itself.
    """
    channels: dict[int, set[Channel]] = {}
    for p in planned:
        if p.persona is not None and isinstance(p.item, ChannelEvent):
            channels.setdefault(id(p.persona), set()).add(p.item.channel)
    links: list[_Link] = []
    for key, opening in first.items():
        person = opening.persona
        event = opening.item
        assert person is not None
        assert isinstance(event, ChannelEvent)
        assert event.sender is not None
        if person.visitor_id is not None or event.sender.kind in {IdentityKind.WITHHELD, IdentityKind.SHORT_CODE}:
            continue
        used = channels[key]
        known_by_email = event.channel is Channel.EMAIL or event.sender.kind is IdentityKind.EMAIL
        if known_by_email and person.phone and used & {Channel.VOICE, Channel.SMS, Channel.WHATSAPP}:
            links.append(_Link(person, IdentityKind.PHONE, person.phone_as_typed))
        if not known_by_email and person.email and used & {Channel.EMAIL, Channel.CHAT, Channel.OTHER}:
            links.append(_Link(person, IdentityKind.EMAIL, person.email))
    return links


# -- loading ---------------------------------------------------------------------------


def _ensure_agents(session: Session, echo: Callable[[str], None]) -> Agent:
    """The demo logins, created once; returns the demo agent."""
    agent: Agent | None = None
    for email, name, role in (
        (DEMO_AGENT_EMAIL, "Demo Agent", Role.AGENT),
        (DEMO_SUPERVISOR_EMAIL, "Demo Supervisor", Role.SUPERVISOR),
    ):
        existing = session.scalar(select(Agent).where(Agent.email == normalise_email(email)))
        if existing is None:
            existing, token = create_agent(session, email=email, name=name, role=role, password=DEMO_PASSWORD)
            echo(f"created {role.value} {email} (password {DEMO_PASSWORD}; API token {token})")
        if role is Role.AGENT:
            agent = existing
    assert agent is not None
    return agent


def _opening_batches(openings: Sequence[_Planned]) -> list[list[_Planned]]:
    """First contacts in three batches: Maria, people, then senders that are not people.

    A batch creates its new customers in the order of their addresses, so the
    batches decide who comes first in the customer list: anonymous visitors
    and withheld numbers after everyone with a name.
    """
    people: list[_Planned] = []
    others: list[_Planned] = []
    for planned in openings[1:]:
        event = planned.item
        assert isinstance(event, ChannelEvent)
        assert event.sender is not None
        anonymous = event.sender.kind in {IdentityKind.CHAT_VISITOR, *NON_PERSONAL_KINDS}
        (others if anonymous else people).append(planned)
    return [[openings[0]], people, others]


def _check(results: Iterable[IngestResult]) -> list[IngestResult]:
    """The results, or an error: a demo event that fails is a bug in the demo."""
    kept = list(results)
    failed = [r for r in kept if r.error]
    if failed:
        details = "; ".join(f"journal #{r.journal_id}: {r.error}" for r in failed[:5])
        raise RuntimeError(f"{len(failed)} demo events failed ({details})")
    return kept


def _close_old(session: Session, conversation_ids: set[int], now: datetime) -> int:
    """Close the demo's conversations that have been quiet for two weeks.

    This simulates agents closing them: the pipeline opens conversations, and
    closing one is an agent's decision that no channel event makes. A direct
    update is fine here, inside the demo's own write transaction.
    """
    rows: list[dict[str, Any]] = []
    ids = sorted(conversation_ids)
    for start in range(0, len(ids), 400):
        for conversation_id, last_activity in session.execute(
            select(Conversation.id, Conversation.last_activity_at).where(
                Conversation.id.in_(ids[start : start + 400]),
                Conversation.status != ConversationStatus.CLOSED,
                Conversation.last_activity_at < now - CLOSE_AFTER,
            )
        ):
            # Closed the working day after the last message, as a tidy team would.
            rows.append(
                {
                    "id": conversation_id,
                    "status": ConversationStatus.CLOSED,
                    "closed_at": last_activity + timedelta(hours=20),
                }
            )
    if rows:
        session.execute(update(Conversation), rows)
    return len(rows)


def _login_line(base_url: str) -> str:
    return (
        f"Log in at {base_url}/login as {DEMO_AGENT_EMAIL} / {DEMO_PASSWORD} (agent) "
        f"or {DEMO_SUPERVISOR_EMAIL} / {DEMO_PASSWORD} (supervisor)."
    )


def load_demo(
    runtime: Runtime,
    *,
    customers: int = 60,
    seed: int = 7,
    if_empty: bool = False,
    echo: Callable[[str], None] = print,
    now: datetime | None = None,
) -> str:
    """Load the demo through the real pipeline; returns a summary to print.

    ``customers`` people are invented (at least the two showcase customers),
    plus a withheld caller and a short-code sender, which Corridor keeps as
    customers of their own. With ``if_empty``, a database that has any
    customer is left alone. ``now`` (default: the current time) is where the
    history ends; the same seed and ``now`` give the same events, so loading
    them again adds nothing.
    """
    started = time.perf_counter()
    database = runtime.database
    base_url = runtime.hub.app.public_base_url.rstrip("/")
    if if_empty:
        with database.read() as session:
            existing = session.scalar(select(func.count()).select_from(Customer)) or 0
            has_login = session.scalar(select(Agent.id).where(Agent.email == DEMO_AGENT_EMAIL)) is not None
        if existing:
            echo(f"Demo data not loaded: the database has {existing} customers already (--if-empty).")
            return _login_line(base_url) if has_login else "Nothing changed."

    if not 2 <= customers <= MAX_CUSTOMERS:
        customers = min(max(customers, 2), MAX_CUSTOMERS)
        echo(f"demo customers must be 2 to {MAX_CUSTOMERS}; inventing {customers}")
    now = (now or utcnow()).replace(microsecond=0)
    demo = _Demo(seed, now, runtime.pipeline.continuation_window)
    maria = _maria(demo)
    _tomas(demo)
    _withheld_and_short_code(demo)
    demo.histories(demo.personas(customers - 2))
    planned = sorted(demo.planned, key=lambda p: (p.at, p.seq))

    # Everyone's first contact is ingested first (Maria's before anyone's, so
    # she is the first customer and heads the customer list); then agents
    # link the addresses people later used; then the rest of the history
    # arrives as one batch, as a backfill would.
    first: dict[int, _Planned] = {}
    for p in planned:
        if p.persona is not None and isinstance(p.item, ChannelEvent) and id(p.persona) not in first:
            first[id(p.persona)] = p
    openings = [first[id(maria)], *(p for key, p in first.items() if key != id(maria))]
    opening_ids = {id(p) for p in openings}
    rest = [p.item for p in planned if id(p) not in opening_ids]
    context = {"demo_seed": seed}
    echo(f"loading demo data: {len(first)} customers, {len(planned)} events and updates ...")

    with database.write() as session:
        agent = _ensure_agents(session, echo)
        results: list[IngestResult] = []
        customer_of: dict[int, int | None] = {}
        for batch in _opening_batches(openings):
            done = _check(ingest_many(session, [p.item for p in batch], source=SOURCE, context=context))
            customer_of.update((id(p.persona), r.customer_id) for p, r in zip(batch, done, strict=True))
            results += done
        maria_id = customer_of[id(maria)]
        assert maria_id is not None
        links = _links(planned, first)
        for link in links:
            customer_id = customer_of[id(link.person)]
            assert customer_id is not None
            add_identity(
                session,
                customer_id,
                link.kind,
                link.address,
                actor_id=agent.id,
                default_region=runtime.pipeline.default_region,
            )
        results += _check(ingest_many(session, rest, source=SOURCE, context=context))
        closed = _close_old(session, {r.conversation_id for r in results if r.conversation_id is not None}, now)

    with database.read() as session:
        people = session.scalar(select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_(None)))
        statuses = dict(session.execute(select(Conversation.status, func.count()).group_by(Conversation.status)).all())
        by_channel = dict(
            session.execute(select(Interaction.channel, func.count()).group_by(Interaction.channel)).all()
        )
    elapsed = time.perf_counter() - started
    duplicates = sum(1 for r in results if r.duplicate)
    channels = " · ".join(f"{Channel(c).value} {n}" for c, n in sorted(by_channel.items(), key=lambda kv: -kv[1]))
    conversations = sum(statuses.values())
    return "\n".join(
        [
            f"Demo data loaded in {elapsed:.1f} s ({len(links)} phone/email links made as an agent would, "
            f"{closed} old conversations closed"
            + (f", {duplicates} events already present" if duplicates else "")
            + ").",
            f"Corridor now has {people} customers, {conversations} conversations "
            f"({statuses.get(ConversationStatus.OPEN, 0)} open, {statuses.get(ConversationStatus.CLOSED, 0)} closed) "
            f"and {sum(by_channel.values())} interactions: {channels}.",
            f"Showcase: Maria Keller emailed, called, then chatted about order #{SHOWCASE_ORDER}, "
            f"one conversation: {base_url}/customers/{maria_id}",
            _login_line(base_url),
        ]
    )
