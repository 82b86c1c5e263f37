"""What the providers send, shaped as the real connectors receive it: RFC 822 mail, Twilio forms, chat frames."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr
from typing import Any
from urllib.parse import urlencode

from hub.demo.personas import CHAT_PAGE, SHOP
from hub.events import (
    Attachment,
    CallStatus,
    Channel,
    ChannelEvent,
    DeliveryStatus,
    Direction,
    IdentityKind,
    InteractionKind,
    InteractionUpdate,
    Party,
)

FORM = "application/x-www-form-urlencoded"
TWILIO_API = "https://api.twilio.com/2010-04-01"


@dataclass
class _Mail:
    """An email already in the story, for the next one to quote and reference."""

    message_id: str
    subject: str
    body: str
    at: datetime
    author: str
    refs: tuple[str, ...]


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


# -- email -----------------------------------------------------------------------------


def _email_event(
    direction: Direction,
    sender: Party,
    recipient: Party,
    subject: str,
    text: str,
    reply_text: str,
    message_id: str,
    refs: tuple[str, ...],
    at: datetime,
    html: bool,
) -> ChannelEvent:
    """An email as the connector reads it, with the bytes a mailer sends; ``refs`` oldest first."""
    raw = _rfc822(sender, recipient, subject, at, message_id, refs, text, _html(text) if html else None)
    return ChannelEvent(
        channel=Channel.EMAIL,
        external_id=message_id,
        occurred_at=at,
        direction=direction,
        sender=sender,
        recipients=(recipient,),
        subject=subject,
        text=text,
        reply_text=reply_text,
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


# -- SMS and WhatsApp (Twilio) ---------------------------------------------------------


def _inbound_message(
    channel: Channel,
    account_sid: str,
    sid: str,
    country: str,
    ours: str,
    phone: str,
    name: str,
    text: str,
    media_sids: Sequence[str],
    at: datetime,
) -> ChannelEvent:
    """A customer's SMS or WhatsApp message as Twilio's webhook posts it, photos as media URLs."""
    prefix = "whatsapp:" if channel is Channel.WHATSAPP else ""
    form: dict[str, str] = {
        "ToCountry": country,
        "SmsMessageSid": sid,
        "NumMedia": str(len(media_sids)),
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": text,
        "To": prefix + ours,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": prefix + phone,
        "ApiVersion": "2010-04-01",
    }
    metadata: dict[str, Any] = {"to": prefix + ours, "account_sid": account_sid, "num_segments": 1}
    if channel is Channel.WHATSAPP:
        form.update(ProfileName=name, WaId=phone.lstrip("+"), MessageType="image" if media_sids else "text")
        metadata.update(profile_name=name, wa_id=phone.lstrip("+"))
    else:
        form["FromCountry"] = country
    attachments = []
    for n, media_sid in enumerate(media_sids):
        url = f"{TWILIO_API}/Accounts/{account_sid}/Messages/{sid}/Media/{media_sid}"
        form[f"MediaUrl{n}"] = url
        form[f"MediaContentType{n}"] = "image/jpeg"
        attachments.append(
            Attachment(filename=url.rsplit("/", 1)[1] + ".jpg", content_type="image/jpeg", size=0, url=url)
        )
    return ChannelEvent(
        channel=channel,
        external_id=sid,
        occurred_at=at,
        direction=Direction.INBOUND,
        sender=Party(address=prefix + phone, name=name if prefix else "", kind=IdentityKind.PHONE),
        recipients=(Party(address=prefix + ours, name=SHOP),),
        text=text,
        attachments=tuple(attachments),
        metadata=metadata,
        raw=urlencode(form).encode(),
        raw_content_type=FORM,
        delivery_status=DeliveryStatus.RECEIVED,
    )


def _outbound_message(
    channel: Channel, account_sid: str, sid: str, ours: str, theirs: str, text: str, agent: str, at: datetime
) -> ChannelEvent:
    """An agent's reply, with what Twilio's REST API answers when the message is created."""
    created = {
        "sid": sid,
        "account_sid": account_sid,
        "from": ours,
        "to": theirs,
        "body": text,
        "status": "queued",
        "direction": "outbound-api",
        "num_segments": "1",
        "api_version": "2010-04-01",
        "date_created": format_datetime(at),
    }
    return ChannelEvent(
        channel=channel,
        external_id=sid,
        occurred_at=at,
        direction=Direction.OUTBOUND,
        sender=Party(address=ours, name=SHOP),
        recipients=(Party(address=theirs, kind=IdentityKind.PHONE),),
        text=text,
        metadata={"agent": agent},
        raw=json.dumps(created).encode(),
        raw_content_type="application/json",
        delivery_status=DeliveryStatus.QUEUED,
    )


def _message_status(
    channel: Channel, account_sid: str, sid: str, status: str, at: datetime, ours: str, theirs: str
) -> InteractionUpdate:
    """Twilio's status callback for a message we sent."""
    form = {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": account_sid,
        "From": ours,
        "To": theirs,
        "ApiVersion": "2010-04-01",
    }
    error_code = error_message = None
    if status == "undelivered":
        error_code, error_message = "30003", "Unreachable destination handset"
        form.update(ErrorCode=error_code)
    return InteractionUpdate(
        channel=channel,
        external_id=sid,
        update_id=f"{sid}:{status}",
        occurred_at=at,
        raw=urlencode(form).encode(),
        raw_content_type=FORM,
        status=status,
        error_code=error_code,
        error_message=error_message,
    )


# -- calls (Twilio) --------------------------------------------------------------------


def _caller_id(caller: Party) -> str:
    """The From of a call's webhook: the number, or "anonymous" when it was withheld."""
    return "anonymous" if caller.kind is IdentityKind.WITHHELD else caller.address


def _inbound_call(account_sid: str, sid: str, country: str, ours: str, caller: Party, at: datetime) -> ChannelEvent:
    """A call to our number as Twilio's voice webhook posts it when it rings."""
    caller_id = _caller_id(caller)
    form = {
        "Called": ours,
        "ToCountry": country,
        "Direction": "inbound",
        "CallSid": sid,
        "To": ours,
        "CallStatus": "ringing",
        "From": caller_id,
        "Caller": caller_id,
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "Timestamp": format_datetime(at),
    }
    metadata: dict[str, Any] = {
        "call_status": "ringing",
        "to": ours,
        "caller_id": caller_id,
        "account_sid": account_sid,
    }
    if caller.kind is IdentityKind.WITHHELD:
        metadata["withheld"] = True
    elif caller.name:
        form["CallerName"] = caller.name
        metadata["caller_name"] = caller.name
    return ChannelEvent(
        channel=Channel.VOICE,
        external_id=sid,
        occurred_at=at,
        direction=Direction.INBOUND,
        sender=caller,
        recipients=(Party(address=ours, name=SHOP),),
        kind=InteractionKind.CALL,
        metadata=metadata,
        raw=urlencode(form).encode(),
        raw_content_type=FORM,
    )


def _outbound_call(account_sid: str, sid: str, ours: str, phone: str, agent: str, at: datetime) -> ChannelEvent:
    """An agent's call to the customer, as Twilio reports it when it is placed."""
    form = {
        "Called": phone,
        "Direction": "outbound-api",
        "CallSid": sid,
        "To": phone,
        "CallStatus": "initiated",
        "From": ours,
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "Timestamp": format_datetime(at),
    }
    return ChannelEvent(
        channel=Channel.VOICE,
        external_id=sid,
        occurred_at=at,
        direction=Direction.OUTBOUND,
        sender=Party(address=ours, name=SHOP),
        recipients=(Party(address=phone, kind=IdentityKind.PHONE),),
        kind=InteractionKind.CALL,
        metadata={"call_status": "queued", "to": phone, "agent": agent},
        raw=urlencode(form).encode(),
        raw_content_type=FORM,
    )


def _call_status(
    account_sid: str, sid: str, status: CallStatus, seconds: int, at: datetime, caller: str, called: str
) -> InteractionUpdate:
    """Twilio's status callback when a call ends."""
    form = {
        "CallSid": sid,
        "CallStatus": status.value,
        "CallDuration": str(seconds),
        "From": caller,
        "To": called,
        "AccountSid": account_sid,
        "CallbackSource": "call-progress-events",
        "ApiVersion": "2010-04-01",
        "Timestamp": format_datetime(at),
    }
    return InteractionUpdate(
        channel=Channel.VOICE,
        external_id=sid,
        update_id=f"{sid}:{status.value}",
        occurred_at=at,
        raw=urlencode(form).encode(),
        raw_content_type=FORM,
        status=status.value,
        duration_seconds=seconds,
    )


def _recording_url(account_sid: str, recording_sid: str) -> str:
    return f"{TWILIO_API}/Accounts/{account_sid}/Recordings/{recording_sid}"


def _recording(account_sid: str, call_sid: str, recording_sid: str, seconds: int, at: datetime) -> InteractionUpdate:
    """Twilio's recording callback: the caller's voicemail, ``seconds`` long."""
    url = _recording_url(account_sid, recording_sid)
    form = {
        "RecordingSid": recording_sid,
        "CallSid": call_sid,
        "RecordingStatus": "completed",
        "RecordingUrl": url,
        "RecordingDuration": str(seconds),
        "RecordingSource": "RecordVerb",
        "RecordingChannels": "1",
        "AccountSid": account_sid,
        "RecordingStartTime": format_datetime(at),
    }
    return InteractionUpdate(
        channel=Channel.VOICE,
        external_id=call_sid,
        update_id=f"{recording_sid}:completed",
        occurred_at=at,
        raw=urlencode(form).encode(),
        raw_content_type=FORM,
        kind=InteractionKind.VOICEMAIL,
        attachments=(Attachment(filename=f"{recording_sid}.mp3", content_type="audio/mpeg", size=0, url=url + ".mp3"),),
        metadata={
            "recording": {
                "sid": recording_sid,
                "status": "completed",
                "duration_seconds": seconds,
                "source": "RecordVerb",
                "channels": "1",
            }
        },
    )


def _transcription(
    account_sid: str,
    call_sid: str,
    recording_sid: str,
    transcription_sid: str,
    transcript: str,
    caller: str,
    ours: str,
    at: datetime,
) -> InteractionUpdate:
    """Twilio's transcription callback: the voicemail's text, appended to the call."""
    form = {
        "TranscriptionSid": transcription_sid,
        "TranscriptionStatus": "completed",
        "TranscriptionText": transcript,
        "TranscriptionType": "fast",
        "RecordingSid": recording_sid,
        "RecordingUrl": _recording_url(account_sid, recording_sid),
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": caller,
        "To": ours,
        "ApiVersion": "2010-04-01",
    }
    return InteractionUpdate(
        channel=Channel.VOICE,
        external_id=call_sid,
        update_id=f"{transcription_sid}:completed",
        occurred_at=at,
        raw=urlencode(form).encode(),
        raw_content_type=FORM,
        text_append=transcript,
        kind=InteractionKind.VOICEMAIL,
        metadata={"transcription": {"sid": transcription_sid, "status": "completed", "recording_sid": recording_sid}},
    )


# -- web chat and notes ----------------------------------------------------------------


def _chat_message(
    session: str,
    message_id: str,
    at: datetime,
    sender: Party,
    recipient: Party,
    visitor: dict[str, str],
    agent: str | None,
    text: str,
    page: str,
) -> ChannelEvent:
    """One chat message as the widget's frame carries it; ``agent`` is None for the visitor's."""
    inbound = agent is None
    frame: dict[str, Any] = {
        "type": "message",
        "session_id": session,
        "message_id": message_id,
        "sent_at": at.isoformat().replace("+00:00", "Z"),
        "author": "visitor" if inbound else "agent",
        "visitor": visitor,
        "text": text,
        "page_url": CHAT_PAGE + page,
    }
    if agent is not None:
        frame["agent"] = {"name": agent}
    return ChannelEvent(
        channel=Channel.CHAT,
        external_id=message_id,
        occurred_at=at,
        direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
        sender=sender,
        recipients=(recipient,),
        text=text,
        session=session,
        metadata={"page_url": CHAT_PAGE + page, **({} if agent is None else {"agent": agent})},
        raw=json.dumps(frame, ensure_ascii=False).encode(),
        raw_content_type="application/json",
        delivery_status=DeliveryStatus.RECEIVED if inbound else DeliveryStatus.DELIVERED,
    )


def _note(note_id: str, about: Party, agent: str, text: str, at: datetime) -> ChannelEvent:
    """An agent's internal note about the customer at ``about``."""
    return ChannelEvent(
        channel=Channel.OTHER,
        external_id=note_id,
        occurred_at=at,
        direction=Direction.INTERNAL,
        sender=about,
        kind=InteractionKind.NOTE,
        text=text,
        metadata={"agent": agent},
        raw=json.dumps(
            {"note": {"id": note_id, "customer": about.address, "agent": agent, "text": text, "at": at.isoformat()}}
        ).encode(),
        raw_content_type="application/json",
    )
