"""One conversation as it is written: its clock, its customer on each channel, the events it plans."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from hub.demo.payloads import FORM, TWILIO_API, _html, _Mail, _quote, _rfc822
from hub.demo.personas import _AGENT_NAMES, CHAT_PAGE, MAIL_HOST, SHOP, SUPPORT, _ascii, _Demo, _Persona, _sid, _token
from hub.events import (
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
