"""A deterministic stream of realistic ChannelEvents for the benchmarks.

What "realistic" means here, and why each part matters to the pipeline:

* ~2,000 known people whose email and phone are already linked to one customer
  (the case Corridor exists for: an email, then a call, land in one
  conversation). Their activity is skewed (a few write a lot), so identity
  and conversation lookups hit a warm working set as in production.
* Channel mix: email, SMS, WhatsApp, voice and chat. Emails reply to the
  person's previous email (``thread_refs``), chats arrive as bursts sharing a
  session, calls carry provider metadata, outbound replies name the customer
  as recipient. Half the emails also carry HTML, which the pipeline sanitises.
* Anonymous chat visitors become customers of their own on first contact.
* ~0.5 % of events are provider retries of a recent event (deduplicated).
* One heavy customer (a company's procurement desk) gets exactly one event
  in every 100, so a 1M-event run gives the 10k-interaction timeline that the
  timeline figure needs.
* Text is drawn from support-like sentences plus a Zipf-distributed long-tail
  vocabulary (product names), and every order has its own number, so search
  has rare, medium and very common terms as real mailboxes do.
* Raw payloads are sized like the real thing (MIME for email, Twilio form
  bodies, chat JSON), because the journal stores every byte.

Everything is derived from one seed: two runs produce the same events.
"""

from __future__ import annotations

import itertools
import json
import random
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from hub.events import Channel, ChannelEvent, Direction, InteractionKind, Party

PEOPLE = 2_000
#: One event in this many belongs to the heavy customer (10k in 1M).
HEAVY_EVERY = 100
HEAVY_PERSON = 0
START = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
#: Mean gap between events: 1M events span about two years.
MEAN_GAP_SECONDS = 63.0
SUPPORT_EMAIL = "support@corridor.example"
SUPPORT_NUMBER = "+14155550100"

_FIRST = (
    "Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kofi", "Lena", "Marek",
    "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Vera", "Wen", "Ximena", "Yusuf",
    "Zoe",
)  # fmt: skip
_LAST = (
    "Lima", "Novak", "Okafor", "Schmidt", "Tanaka", "Silva", "Kowalski", "Haddad", "Jensen", "Moreau",
    "Patel", "Rossi", "Nguyen", "Fischer", "Costa", "Dubois", "Sato", "Andersen", "Kaya", "Murphy",
)  # fmt: skip
_DOMAINS = ("example.com", "mail.example.org", "example.net", "bücher.example", "firma.example")

#: Words every support mailbox is full of; "order" ends up in most documents.
_COMMON = (
    "order", "delivery", "refund", "invoice", "account", "password", "payment", "shipping", "address",
    "package", "tracking", "return", "exchange", "warranty", "subscription", "cancel", "charge", "receipt",
    "discount", "voucher", "courier",
)  # fmt: skip
_OPENERS = (
    "Hello,",
    "Hi there,",
    "Good morning,",
    "Dear support team,",
    "Hi,",
)
_SENTENCES = (
    "I placed order {order} last week and the {product} has still not arrived.",
    "The tracking page for order {order} has not changed since {day}.",
    "Could you refund the {product} from order {order}? It arrived damaged.",
    "My invoice for order {order} shows the wrong billing address.",
    "I was charged twice for the {product} subscription this month.",
    "The courier left the package with a neighbour and I cannot find it.",
    "Can I exchange the {product} for a different size?",
    "Please cancel order {order} before it ships.",
    "The discount voucher did not apply to my order.",
    "I cannot log in to my account after the password reset.",
    "Is the {product} covered by the warranty?",
    "The delivery window on {day} does not work for me, can we move it?",
    "Thank you for the quick answer about the {product}.",
    "The replacement {product} works, but the manual is missing.",
    "Where do I send the return for order {order}?",
)
_AGENT_SENTENCES = (
    "Thanks for reaching out about order {order}.",
    "I have issued a refund for the {product}; it shows within five working days.",
    "The courier confirmed delivery is rescheduled for {day}.",
    "I have corrected the billing address on the invoice.",
    "Your return label for order {order} is attached.",
    "I reset the account lock, please try the password link again.",
)
_CLOSERS = ("Thanks,", "Best regards,", "Kind regards,", "Cheers,", "Thank you,")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_SYLLABLES = (
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "be", "da", "fe", "go", "hu", "ji", "ko", "lu", "ma",
    "no", "pe", "qui", "ra", "se", "ti", "ul", "ve", "xo", "ya", "ze",
)  # fmt: skip


def _tail_vocabulary(size: int, rng: random.Random) -> list[str]:
    """Product-like names (``Koravime``), unique, rank order = frequency order."""
    words: set[str] = set()
    out: list[str] = []
    while len(out) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
        if word not in words:
            words.add(word)
            out.append(word)
    return out


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    name: str
    email: str
    #: As people type it in an email header: sometimes with capitals.
    email_written: str
    phone: str
    visitor: str


def people(count: int = PEOPLE) -> list[Person]:
    """The known customers; the same list for every run."""
    out = []
    for i in range(count):
        first, last = _FIRST[i % len(_FIRST)], _LAST[(i // len(_FIRST)) % len(_LAST)]
        domain = _DOMAINS[i % len(_DOMAINS)]
        local = f"{first}.{last}{i}".lower()
        name = f"{first} {last}"
        if i == HEAVY_PERSON:
            name, local, domain = "Acme Procurement", "procurement", "acme.example"
        email = f"{local}@{domain}"
        # One in seven types their address with capitals; normalisation must
        # still find them.
        written = email if i % 7 else f"{local.capitalize()}@{domain}"
        out.append(Person(i, name, email, written, f"+1415{2_000_000 + i:07d}", f"visitor-{i:05d}"))
    return out


class Workload:
    """Yields batches of events; generation is kept out of the timed sections."""

    def __init__(self, seed: int = 7, *, run_tag: str = "bench") -> None:
        self.rng = random.Random(seed)
        self.people = people()
        self.tag = run_tag
        self.clock = START
        self.serial = itertools.count(1)
        tail = _tail_vocabulary(20_000, self.rng)
        self.tail = tail
        # Zipf (s = 1.1) over the long tail: a few names are everywhere, most are rare.
        self._tail_cum = list(itertools.accumulate(1.0 / (r**1.1) for r in range(1, len(tail) + 1)))
        # Skewed activity: person i is (i+1)^-0.8 as active as the most active one.
        self._people_cum = list(itertools.accumulate(1.0 / ((i + 1) ** 0.8) for i in range(1, len(self.people))))
        self._last_email: dict[int, str] = {}
        self._order_of: dict[int, int] = {}
        self._followups: deque[tuple[int, ChannelEvent]] = deque()
        self._recent: deque[ChannelEvent] = deque(maxlen=200)
        self.generated = 0

    # -- building blocks -----------------------------------------------------------

    def _product(self) -> str:
        total = self._tail_cum[-1]
        return self.tail[bisect_left(self._tail_cum, self.rng.random() * total)]

    def _person(self) -> Person:
        total = self._people_cum[-1]
        return self.people[1 + bisect_left(self._people_cum, self.rng.random() * total)]

    def _order(self, person: Person) -> int:
        # A person talks about the same order for a while, then a new one.
        if person.index not in self._order_of or self.rng.random() < 0.2:
            self._order_of[person.index] = 10_000_000 + self.rng.randrange(90_000_000)
        return self._order_of[person.index]

    def _sentence(self, person: Person, pool: tuple[str, ...]) -> str:
        return self.rng.choice(pool).format(
            order=self._order(person), product=self._product(), day=self.rng.choice(_DAYS)
        )

    def _body(self, person: Person, sentences: int, agent: bool) -> str:
        pool = _AGENT_SENTENCES if agent else _SENTENCES
        words = [self._sentence(person, pool) for _ in range(sentences)]
        if sentences > 2:
            # The long tail: the odd product name mentioned in passing.
            words.append(f"Also, the {self._product()} and the {self._product()} look fine.")
        return " ".join(words)

    def _external_id(self, prefix: str) -> str:
        n = next(self.serial)
        return f"{prefix}{self.tag}{n:012x}{self.rng.getrandbits(48):012x}"

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=self.rng.expovariate(1 / MEAN_GAP_SECONDS))
        return self.clock

    # -- one event per channel -----------------------------------------------------

    def _email(self, person: Person, when: datetime) -> ChannelEvent:
        outbound = self.rng.random() < 0.35
        message_id = f"<{self._external_id('')}@{'corridor.example' if outbound else 'mail.example.com'}>"
        previous = self._last_email.get(person.index)
        refs = (previous,) if previous and self.rng.random() < 0.6 else ()
        order = self._order(person)
        subject = ("Re: " if refs else "") + f"Order {order}: {self.rng.choice(_COMMON)} question"
        body = self._body(person, self.rng.randint(2, 6), outbound)
        text = f"{self.rng.choice(_OPENERS)}\n\n{body}\n\n{self.rng.choice(_CLOSERS)}\n{person.name}"
        html = ""
        if self.rng.random() < 0.5:
            html = "<div dir='ltr'>" + "".join(f"<p>{line}</p>" for line in text.split("\n") if line) + "</div>"
        sender = Party(SUPPORT_EMAIL, "Support") if outbound else Party(person.email_written, person.name)
        recipient = Party(person.email_written, person.name) if outbound else Party(SUPPORT_EMAIL)
        raw = (
            f"Message-ID: {message_id}\r\nFrom: {sender.name} <{sender.address}>\r\nTo: {recipient.address}\r\n"
            f"Subject: {subject}\r\nDate: {when:%a, %d %b %Y %H:%M:%S +0000}\r\n"
            + (f"In-Reply-To: {refs[0]}\r\nReferences: {refs[0]}\r\n" if refs else "")
            + "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b1\r\n\r\n"
            f"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
            + (f"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n" if html else "")
            + "--b1--\r\n"
        ).encode()
        self._last_email[person.index] = message_id
        return ChannelEvent(
            channel=Channel.EMAIL,
            external_id=message_id,
            occurred_at=when,
            direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
            sender=sender,
            recipients=(recipient,),
            subject=subject,
            text=text,
            html=html,
            thread_refs=refs,
            raw=raw,
            raw_content_type="message/rfc822",
        )

    def _twilio_message(self, person: Person, when: datetime, channel: Channel) -> ChannelEvent:
        outbound = self.rng.random() < 0.3
        sid = self._external_id("SM")
        prefix = "whatsapp:" if channel is Channel.WHATSAPP else ""
        customer, ours = prefix + person.phone, prefix + SUPPORT_NUMBER
        text = self._sentence(person, _AGENT_SENTENCES if outbound else _SENTENCES)
        form = {
            "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "SAN FRANCISCO",
            "FromZip": "94105", "SmsSid": sid, "FromState": "CA", "SmsStatus": "received", "FromCity": "SAN FRANCISCO",
            "Body": text, "FromCountry": "US", "To": customer if outbound else ours, "ToZip": "94105",
            "NumSegments": "1", "MessageSid": sid, "AccountSid": "AC" + "0" * 32,
            "From": ours if outbound else customer, "ApiVersion": "2010-04-01",
        }  # fmt: skip
        return ChannelEvent(
            channel=channel,
            external_id=sid,
            occurred_at=when,
            direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
            sender=Party(ours if outbound else customer),
            recipients=(Party(customer if outbound else ours),),
            text=text,
            metadata={"num_segments": 1, "account_sid": form["AccountSid"]},
            raw=urlencode(form).encode(),
            raw_content_type="application/x-www-form-urlencoded",
        )

    def _call(self, person: Person, when: datetime) -> ChannelEvent:
        outbound = self.rng.random() < 0.25
        sid = self._external_id("CA")
        duration = int(self.rng.expovariate(1 / 240))
        voicemail = not outbound and self.rng.random() < 0.1
        text = f"Voicemail: {self._body(person, 2, False)}" if voicemail else ""
        customer = person.phone
        form = {
            "AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "CallSid": sid, "CallStatus": "completed",
            "Called": customer if outbound else SUPPORT_NUMBER, "Caller": SUPPORT_NUMBER if outbound else customer,
            "Direction": "outbound-api" if outbound else "inbound", "CallDuration": str(duration),
            "From": SUPPORT_NUMBER if outbound else customer, "To": customer if outbound else SUPPORT_NUMBER,
            "FromCountry": "US", "ToCountry": "US",
        }  # fmt: skip
        return ChannelEvent(
            channel=Channel.VOICE,
            external_id=sid,
            occurred_at=when,
            direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
            sender=Party(SUPPORT_NUMBER if outbound else customer),
            recipients=(Party(customer if outbound else SUPPORT_NUMBER),),
            kind=InteractionKind.VOICEMAIL if voicemail else InteractionKind.CALL,
            text=text,
            metadata={"call_status": "completed", "duration": duration},
            raw=urlencode(form).encode(),
            raw_content_type="application/x-www-form-urlencoded",
        )

    def _chat(self, person: Person, when: datetime, session: str, outbound: bool) -> ChannelEvent:
        message_id = self._external_id("chat-")
        text = self._sentence(person, _AGENT_SENTENCES if outbound else _SENTENCES)
        visitor = Party(person.visitor, person.name if self.rng.random() < 0.3 else "")
        frame = {"type": "message", "id": message_id, "session": session, "visitor": person.visitor,
                 "author": "agent" if outbound else "visitor", "text": text, "at": when.isoformat()}  # fmt: skip
        return ChannelEvent(
            channel=Channel.CHAT,
            external_id=message_id,
            occurred_at=when,
            direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
            sender=Party("agent:1") if outbound else visitor,
            recipients=(visitor,) if outbound else (),
            text=text,
            session=session,
            raw=json.dumps(frame).encode(),
            raw_content_type="application/json",
        )

    def _start_chat(self, person: Person, when: datetime) -> ChannelEvent:
        session = f"s-{self._external_id('')}"
        first = self._chat(person, when, session, outbound=False)
        # The rest of the visit arrives over the next events, interleaved with others.
        at = when
        for n in range(self.rng.randint(2, 7)):
            at += timedelta(seconds=self.rng.randint(10, 90))
            self._followups.append((self.generated + 3 * (n + 1), self._chat(person, at, session, n % 2 == 0)))
        return first

    # -- the stream ------------------------------------------------------------------

    def next_event(self) -> ChannelEvent:
        self.generated += 1
        rng = self.rng
        if self.generated % HEAVY_EVERY == 0:
            # Exactly one in HEAVY_EVERY, whatever else is queued: the timeline
            # figure relies on the count.
            person = self.people[HEAVY_PERSON]
            when = self._tick()
            event = self._email(person, when) if rng.random() < 0.7 else self._call(person, when)
        elif self._followups and self._followups[0][0] <= self.generated:
            event = self._followups.popleft()[1]
        elif self._recent and rng.random() < 0.005:
            # A provider retry: the same event again.
            event = rng.choice(self._recent)
        else:
            when = self._tick()
            person = self._person()
            roll = rng.random()
            # A chat visit brings about five more messages as follow-ups, so
            # starting one in 20 makes chat about a fifth of all events.
            if roll < 0.40:
                event = self._email(person, when)
            elif roll < 0.58:
                event = self._twilio_message(person, when, Channel.SMS)
            elif roll < 0.76:
                event = self._twilio_message(person, when, Channel.WHATSAPP)
            elif roll < 0.95:
                event = self._call(person, when)
            else:
                event = self._start_chat(person, when)
        self._recent.append(event)
        return event

    def batches(self, total: int, size: int) -> Iterator[list[ChannelEvent]]:
        done = 0
        while done < total:
            n = min(size, total - done)
            yield [self.next_event() for _ in range(n)]
            done += n
