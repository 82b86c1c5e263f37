"""One conversation as it is written: its clock, its customer on each channel, the events it plans."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from hub.demo.payloads import (
    _call_status,
    _caller_id,
    _chat_message,
    _email_event,
    _inbound_call,
    _inbound_message,
    _Mail,
    _message_status,
    _note,
    _outbound_call,
    _outbound_message,
    _quote,
    _recording,
    _transcription,
)
from hub.demo.personas import _AGENT_NAMES, MAIL_HOST, SHOP, SUPPORT, _ascii, _Demo, _Persona, _sid, _token
from hub.events import (
    CallStatus,
    Channel,
    Direction,
    IdentityKind,
    Ingestible,
    Party,
)

#: Stories stop this long before "now": no event is in the future by the time
#: the load commits, and Maria's chat, a quarter of an hour old, is the newest
#: activity of all, so she heads any list sorted by last contact.
LATEST = timedelta(minutes=30)


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
        reply_text = body if previous is not None else ""
        self.plan(_email_event(direction, sender, recipient, subject, text, reply_text, message_id, refs, self.t, html))
        author = p.name if direction is Direction.INBOUND else f"{SHOP} Customer Care"
        self.mail = _Mail(message_id, subject, body, self.t, author, refs)

    # -- SMS and WhatsApp --------------------------------------------------------------

    def message_in(self, channel: Channel, text: str, *, photos: int = 0) -> None:
        if not self._keep(self.t):
            return
        p = self.p
        assert p.phone is not None
        sid = self.sid("MM" if photos else "SM")
        media = [self.sid("ME") for _ in range(photos)]
        self.plan(
            _inbound_message(
                channel,
                self.demo.account_sid,
                sid,
                p.region.code,
                p.region.our_number,
                p.phone,
                p.name,
                text,
                media,
                self.t,
            )
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
        self.plan(_outbound_message(channel, self.demo.account_sid, sid, ours, theirs, text, self.agent, self.t))
        final = ("undelivered",) if fails else (("delivered", "read") if prefix else ("delivered",))
        at = self.t
        for status in ("sent", *final):
            at += timedelta(seconds=self.rng.randint(1, 20 if status != "read" else 900))
            reported = min(at, self.demo.now)
            self.plan(_message_status(channel, self.demo.account_sid, sid, status, reported, ours, theirs), at=reported)

    # -- calls -------------------------------------------------------------------------

    def call_in(self, seconds: int, *, answered: bool = True, withheld: bool = False) -> str:
        """A call to our number; answered (``seconds`` long) or not. Returns its CallSid."""
        sid = self.sid("CA")
        if not self._keep(self.t):
            return sid
        p = self.p
        ours = p.region.our_number
        if withheld:
            caller = Party(address=f"withheld:{sid}", kind=IdentityKind.WITHHELD)
        else:
            assert p.phone is not None
            caller = self._customer(Channel.VOICE)
        self.plan(_inbound_call(self.demo.account_sid, sid, p.region.code, ours, caller, self.t))
        ended = self.t + timedelta(seconds=seconds + self.rng.randint(5, 25))
        status = CallStatus.COMPLETED if answered else CallStatus.NO_ANSWER
        self._call_status(sid, status, seconds if answered else 0, ended, _caller_id(caller), ours)
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
        self.plan(_outbound_call(self.demo.account_sid, sid, ours, p.phone, self.agent, self.t))
        ended = self.t + timedelta(seconds=seconds + self.rng.randint(8, 30))
        self._call_status(sid, CallStatus.COMPLETED, seconds, ended, ours, p.phone)
        self.t = ended

    def _call_status(self, sid: str, status: CallStatus, seconds: int, at: datetime, caller: str, called: str) -> None:
        at = min(at, self.demo.now)
        self.plan(_call_status(self.demo.account_sid, sid, status, seconds, at, caller, called), at=at)

    def voicemail(self, transcript: str) -> None:
        """Nobody answered, so the caller left a message; Twilio transcribed it."""
        start = self.t
        seconds = max(12, len(transcript) // 14)
        sid = self.call_in(seconds)
        if self.truncated:
            return
        assert self.p.phone is not None
        recording = self.sid("RE")
        at = start + timedelta(seconds=8)
        self.plan(_recording(self.demo.account_sid, sid, recording, seconds - 6, at), at=at)
        transcription = self.sid("TR")
        at = min(self.t + timedelta(seconds=self.rng.randint(30, 90)), self.demo.now)
        self.plan(
            _transcription(
                self.demo.account_sid,
                sid,
                recording,
                transcription,
                transcript,
                self.p.phone,
                self.p.region.our_number,
                at,
            ),
            at=at,
        )

    # -- web chat ----------------------------------------------------------------------

    def chat(self, lines: Sequence[tuple[str, str]], *, page: str = "/") -> None:
        """A chat session: ("c", text) from the customer, ("a", text) from the agent."""
        session = self.token("chs_", 16)
        customer = self._customer(Channel.CHAT)
        agent = Party(address=f"agent:{self.agent.lower()}@{MAIL_HOST}", name=f"{self.agent} ({SHOP})")
        visitor = {
            "id": self.p.visitor_id or f"cv_{_ascii(self.p.name)}",
            "name": self.p.name,
            **({"email": self.p.email} if self.p.email else {}),
        }
        for n, (who, text) in enumerate(lines):
            if n:
                self.t += timedelta(seconds=self.rng.randint(25, 140))
            if not self._keep(self.t):
                return
            inbound = who == "c"
            message_id = self.token("chm_", 16)
            sender, recipient = (customer, agent) if inbound else (agent, customer)
            author = None if inbound else self.agent
            self.plan(_chat_message(session, message_id, self.t, sender, recipient, visitor, author, text, page))

    # -- notes -------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """An agent's internal note on the customer's conversation."""
        if not self._keep(self.t):
            return
        p = self.p
        # A note is about the customer: the pipeline finds them by this address.
        about = self._customer(Channel.EMAIL) if p.email else self._customer(Channel.VOICE)
        self.plan(_note(self.token("note_", 16), about, self.agent, text, self.t))

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
