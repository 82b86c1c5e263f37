"""Twilio webhook bodies to :mod:`hub.events` values. Pure: no I/O, no clock.

Every webhook Twilio sends is an ``application/x-www-form-urlencoded`` body.
:meth:`WebhookForm.from_body` decodes it once, keeping the exact bytes for the
journal; one function per webhook turns the form into a
:class:`~hub.events.ChannelEvent` (something new on the timeline) or an
:class:`~hub.events.InteractionUpdate` (something that happened to it).

Twilio does not timestamp message webhooks, so the caller passes the moment the
request arrived (``received_at``); a callback that carries its own time uses it.

A body that lacks what the hub needs to place it (a sid, a status the hub can
map) raises :class:`MalformedWebhook` naming the field, which the webhook turns
into a 400 naming it. The raw body is journaled before parsing, so such a request
is kept and can be replayed once the parser learns the new shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar, overload
from urllib.parse import unquote_to_bytes, urlsplit

from hub.contract import (
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

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
WHATSAPP_PREFIX = "whatsapp:"


class MalformedWebhook(ValueError):
    """A webhook body the hub cannot place. ``field`` names the form field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


_T = TypeVar("_T")


class WebhookForm(Mapping[str, str]):
    """A Twilio webhook's form fields, decoded once, with the bytes that carried them.

    Reading a field gives its first value. :meth:`getall` gives all of them, which
    is what :class:`twilio.request_validator.RequestValidator` asks for, so the
    signature is checked over exactly the fields that are parsed.
    """

    __slots__ = ("_fields", "content_type", "defects", "raw")

    def __init__(
        self,
        pairs: list[tuple[str, str]],
        *,
        raw: bytes,
        content_type: str = FORM_CONTENT_TYPE,
        defects: tuple[str, ...] = (),
    ) -> None:
        fields: dict[str, list[str]] = {}
        for name, value in pairs:
            fields.setdefault(name, []).append(value)
        self._fields = fields
        self.raw = raw
        self.content_type = content_type
        #: Problems met while decoding, stored with the interaction.
        self.defects = defects

    @classmethod
    def from_body(cls, raw: bytes, content_type: str = FORM_CONTENT_TYPE) -> WebhookForm:
        """Decode a form body exactly as Twilio encoded it (UTF-8, ``+`` for space).

        Bytes that are not UTF-8 are replaced and recorded as a defect instead of
        failing the request: an SMS from a customer is data we must not lose.
        """
        pairs: list[tuple[str, str]] = []
        defects: list[str] = []
        # One pass per field, in C where it can be: every SMS webhook pays for
        # this, for some twenty fields.
        for part in raw.replace(b"+", b" ").split(b"&"):
            if not part:
                continue
            name_octets, _, value_octets = part.partition(b"=")
            if b"%" in name_octets:
                name_octets = unquote_to_bytes(name_octets)
            if b"%" in value_octets:  # most values (SIDs, statuses, codes) have nothing escaped
                value_octets = unquote_to_bytes(value_octets)
            try:
                pairs.append((name_octets.decode("utf-8"), value_octets.decode("utf-8")))
            except UnicodeDecodeError:
                name = _decode_leniently(name_octets, "a field name", defects)
                pairs.append((name, _decode_leniently(value_octets, name, defects)))
        return cls(pairs, raw=raw, content_type=content_type, defects=tuple(defects))

    def __getitem__(self, name: str) -> str:
        return self._fields[name][0]

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str | _T, /) -> str | _T: ...
    def get(self, name: str, default: object = None, /) -> object:
        # Mapping.get finds a missing field by raising and catching KeyError,
        # and a webhook asks for a dozen optional fields it mostly lacks.
        values = self._fields.get(name)
        return values[0] if values else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def getall(self, name: str) -> list[str]:
        """Every value of ``name``, in the order they were sent.

        Named as werkzeug's MultiDict names it because that is what
        ``RequestValidator`` tries first for every field; without it, each
        field cost the signature check a raised and caught AttributeError
        (a quarter of an SMS webhook's time in the web process).
        """
        return list(self._fields.get(name, ()))

    def required(self, name: str) -> str:
        """The value of ``name``; a missing or empty field is a malformed webhook."""
        value = self.get(name, "")
        if not value:
            raise MalformedWebhook(name, "required field is missing or empty")
        return value

    def optional(self, name: str) -> str | None:
        """The value of ``name``, or ``None`` when it is missing or empty."""
        return self.get(name) or None


def _decode_leniently(octets: bytes, field: str, defects: list[str]) -> str:
    try:
        return octets.decode("utf-8")
    except UnicodeDecodeError:
        defects.append(f"{field}: not valid UTF-8; undecodable bytes were replaced")
        return octets.decode("utf-8", errors="replace")


# --- addresses ---------------------------------------------------------------

_PHONE = re.compile(r"\+?[0-9]{7,15}")
_SHORT_CODE = re.compile(r"[0-9]{3,6}")
# Punctuation people and carriers put inside phone numbers: +1 (415) 555-0123.
_NUMBER_PUNCTUATION = str.maketrans("", "", " -().")


def _keypad(word: str) -> str:
    """The digits that spell ``word`` on a phone keypad."""
    groups = ("abc", "def", "ghi", "jkl", "mno", "pqrs", "tuv", "wxyz")
    return "".join(str(digit) for letter in word for digit, group in enumerate(groups, 2) if letter in group)


_WITHHELD_WORDS = ("anonymous", "restricted", "unknown", "blocked", "unavailable", "private")
# Twilio reports a caller who hid their number as one of these words spelled on a
# keypad (+266696687 is ANONYMOUS), or sometimes as the word itself. Spelling them
# out here keeps the list auditable instead of a row of magic numbers.
WITHHELD_CALLER_IDS = frozenset(
    set(_WITHHELD_WORDS)
    | {_keypad(word) for word in _WITHHELD_WORDS}
    | {"+" + _keypad(word) for word in _WITHHELD_WORDS}
    | {"withheld", "", "0", "+0"}
)


def _strip_channel_prefix(address: str, field: str) -> tuple[Channel | None, str]:
    """Split ``whatsapp:+1...`` into its channel and the bare address."""
    if address[: len(WHATSAPP_PREFIX)].lower() == WHATSAPP_PREFIX:
        return Channel.WHATSAPP, address[len(WHATSAPP_PREFIX) :]
    scheme, colon, _ = address.partition(":")
    if colon and scheme.isalpha():
        # messenger:, rcs: and friends: Corridor has no channel for them yet, and
        # guessing one would put a stranger's id on a customer's timeline.
        raise MalformedWebhook(field, f"unsupported channel address {scheme + ':'!r}")
    return None, address


def _sender_kind(address: str, channel: Channel) -> IdentityKind:
    """The identity kind a message sender's bare address names.

    The hub does the E.164 normalisation (with the configured region); this only
    tells it which kind of identity to look for, because a short code or a brand
    name must never be treated as somebody's phone number.
    """
    compact = address.translate(_NUMBER_PUNCTUATION)
    if compact.startswith("+") and _PHONE.fullmatch(compact):
        return IdentityKind.PHONE
    if _SHORT_CODE.fullmatch(compact):
        return IdentityKind.SHORT_CODE
    if _PHONE.fullmatch(compact):
        # A long number written nationally (0412 345 678); the hub applies the region.
        return IdentityKind.PHONE
    if channel is Channel.WHATSAPP:
        # A WhatsApp sender that is not a number (a business-scoped user id).
        return IdentityKind.WHATSAPP
    # Anything else is a sender id (ParcelCo, "Bank-Info!"): it cannot be a phone
    # number the hub could normalise, and as its own kind it never joins customers.
    # Refusing it instead would bounce a real message over its sender's spelling.
    return IdentityKind.ALPHANUMERIC


def _our_party(address: str) -> Party:
    """One of our Twilio numbers (the ``To`` of an inbound message or call)."""
    return Party(address=address, kind=IdentityKind.PHONE if _PHONE.fullmatch(address) else None)


def _location(form: WebhookForm, prefix: str) -> dict[str, str]:
    """Where Twilio says a number is registered (``FromCity``, ``FromState``...)."""
    return {
        part.lower(): form[prefix + part] for part in ("City", "State", "Zip", "Country") if form.get(prefix + part)
    }


def _present(form: WebhookForm, fields: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Twilio's optional fields that this request carries, under our metadata keys."""
    return {key: form[name] for name, key in fields if form.get(name)}


def _integer(form: WebhookForm, name: str) -> int | None:
    value = form.optional(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise MalformedWebhook(name, f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise MalformedWebhook(name, f"expected a whole number, got {value!r}")
    return number


def _error_code(form: WebhookForm) -> str | None:
    # Recording callbacks send ErrorCode=0 on success; 0 is not an error.
    code = form.optional("ErrorCode")
    return None if code in (None, "0") else code


def _timestamp(form: WebhookForm, name: str, received_at: datetime) -> datetime:
    """The RFC 2822 time Twilio put in ``name``, or the arrival time without one."""
    value = form.optional(name)
    if value is None:
        return received_at
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return received_at
    # A time without a zone cannot be placed on a timeline; arrival time can.
    return moment if moment.tzinfo is not None else received_at


# --- messages ----------------------------------------------------------------

#: Twilio's message statuses onto the hub's. ``scheduled`` is a message accepted
#: for a later send time: for the agent it waits like a queued one.
MESSAGE_STATUSES: Mapping[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.ACCEPTED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "canceled": DeliveryStatus.CANCELED,
    "receiving": DeliveryStatus.RECEIVED,
    "received": DeliveryStatus.RECEIVED,
}

#: What an agent should read next to the most common delivery error codes when
#: Twilio sends only the number (www.twilio.com/docs/api/errors/<code>).
MESSAGE_ERRORS: Mapping[str, str] = {
    "21610": "The recipient has unsubscribed (replied STOP) and cannot be messaged.",
    "30003": "Unreachable destination handset: the phone is off or out of coverage.",
    "30004": "Message blocked by the recipient or their carrier.",
    "30005": "Unknown destination handset: the number does not exist.",
    "30006": "Landline or unreachable carrier: the number cannot receive texts.",
    "30007": "Message filtered by the carrier as spam.",
    "30008": "Unknown error from the carrier.",
    "63016": "Outside WhatsApp's 24-hour window: only a template message can be sent.",
}

# Extensions for the media types Twilio relays, so an attachment's filename is
# the same on every machine (mimetypes reads the host's tables).
_EXTENSIONS: Mapping[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/bmp": ".bmp",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "video/quicktime": ".mov",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/amr": ".amr",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "application/pdf": ".pdf",
    "text/vcard": ".vcf",
    "text/x-vcard": ".vcf",
    "text/plain": ".txt",
    "text/calendar": ".ics",
}


def _media(form: WebhookForm) -> tuple[Attachment, ...]:
    count = _integer(form, "NumMedia") or 0
    attachments = []
    for index in range(count):
        url = form.required(f"MediaUrl{index}")
        content_type = form.optional(f"MediaContentType{index}") or "application/octet-stream"
        # The last path segment is the media sid (ME...): unique, and stable across
        # Twilio's retries, so the same file gets the same name every time.
        media_sid = urlsplit(url).path.rstrip("/").rpartition("/")[2] or f"media{index}"
        extension = _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "")
        attachments.append(
            Attachment(
                filename=media_sid + extension,
                content_type=content_type,
                size=0,  # unknown until fetched; Twilio does not say
                url=url,
            )
        )
    return tuple(attachments)


def parse_inbound_message(form: WebhookForm, received_at: datetime) -> ChannelEvent:
    """An SMS, MMS or WhatsApp message a customer sent to one of our numbers."""
    message_sid = form.required("MessageSid")
    raw_from = form.required("From")
    raw_to = form.required("To")
    prefix_channel, sender_address = _strip_channel_prefix(raw_from, "From")
    channel = prefix_channel or Channel.SMS
    _, to_address = _strip_channel_prefix(raw_to, "To")
    kind = _sender_kind(sender_address, channel)

    metadata: dict[str, Any] = {"to": raw_to}
    metadata.update(
        _present(
            form,
            (
                ("AccountSid", "account_sid"),
                ("MessagingServiceSid", "messaging_service_sid"),
                ("ProfileName", "profile_name"),
                ("WaId", "wa_id"),
                ("OptOutType", "opt_out_type"),
                ("ButtonText", "button_text"),
                ("ButtonPayload", "button_payload"),
                ("MessageType", "message_type"),
            ),
        )
    )
    segments = _integer(form, "NumSegments")
    if segments is not None:
        metadata["num_segments"] = segments
    where = _location(form, "From")
    if where:
        metadata["from_location"] = where
    if form.get("Latitude") and form.get("Longitude"):
        # A WhatsApp location share has no Body; keep the place so it is not lost.
        metadata["location"] = {
            "latitude": form["Latitude"],
            "longitude": form["Longitude"],
            "address": form.get("Address", ""),
            "label": form.get("Label", ""),
        }

    return ChannelEvent(
        channel=channel,
        external_id=message_sid,
        occurred_at=received_at,
        direction=Direction.INBOUND,
        sender=Party(address=sender_address, name=form.get("ProfileName", ""), kind=kind),
        recipients=(_our_party(to_address),),
        kind=InteractionKind.MESSAGE,
        text=form.get("Body", ""),
        attachments=_media(form),
        metadata=metadata,
        raw=form.raw,
        raw_content_type=form.content_type,
        delivery_status=DeliveryStatus.RECEIVED,
        defects=form.defects,
    )


def _message_channel(form: WebhookForm) -> Channel:
    for name in ("From", "To"):
        channel, _ = _strip_channel_prefix(form.get(name, ""), name)
        if channel is not None:
            return channel
    if form.get("ChannelPrefix", "").lower() == "whatsapp":
        return Channel.WHATSAPP
    return Channel.SMS


def parse_message_status(form: WebhookForm, received_at: datetime) -> InteractionUpdate:
    """A delivery receipt for a message we sent (queued ... delivered, read, failed)."""
    message_sid = form.required("MessageSid")
    twilio_status = form.required("MessageStatus")
    status = MESSAGE_STATUSES.get(twilio_status)
    if status is None:
        raise MalformedWebhook("MessageStatus", f"unknown message status {twilio_status!r}")
    error_code = _error_code(form)
    error_message = form.optional("ErrorMessage")
    if error_code is not None and error_message is None:
        error_message = MESSAGE_ERRORS.get(error_code)
    # No raw status in the metadata: metadata is merged even when a late callback's
    # status is not applied, and would then contradict the status shown.
    metadata: dict[str, Any] = {}
    if form.get("RawDlrDoneDate"):
        metadata["carrier_done_date"] = form["RawDlrDoneDate"]
    return InteractionUpdate(
        channel=_message_channel(form),
        external_id=message_sid,
        # The status in the id: each step is applied once however often Twilio
        # retries it, and steps arriving out of order are each still applied.
        update_id=f"{message_sid}:{twilio_status}",
        occurred_at=received_at,
        raw=form.raw,
        raw_content_type=form.content_type,
        status=status,
        error_code=error_code,
        error_message=error_message,
        metadata=metadata,
    )


# --- calls -------------------------------------------------------------------

#: Twilio's call statuses onto the hub's. ``initiated`` is the first event of an
#: outbound call, before it rings: for the timeline that is still queued.
CALL_STATUSES: Mapping[str, CallStatus] = {
    "queued": CallStatus.QUEUED,
    "initiated": CallStatus.QUEUED,
    "ringing": CallStatus.RINGING,
    "in-progress": CallStatus.IN_PROGRESS,
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER,
    "failed": CallStatus.FAILED,
    "canceled": CallStatus.CANCELED,
}

_CALL_DIRECTIONS: Mapping[str, Direction] = {
    "inbound": Direction.INBOUND,
    "outbound-api": Direction.OUTBOUND,
    "outbound-dial": Direction.OUTBOUND,
}


def is_withheld(caller_id: str) -> bool:
    """Whether ``caller_id`` is Twilio's way of saying the caller hid their number."""
    return caller_id.strip().lower() in WITHHELD_CALLER_IDS


def _caller(form: WebhookForm, call_sid: str) -> Party:
    caller_id = form.get("From", "")
    name = form.get("CallerName", "")
    if is_withheld(caller_id):
        # One identity per call: withheld callers are strangers to each other, so
        # a shared "anonymous" customer would mix their histories. An agent who
        # recognises the caller merges the call into their customer by hand.
        return Party(address=f"withheld:{call_sid}", name=name, kind=IdentityKind.WITHHELD)
    if caller_id.startswith(("sip:", "client:")):
        # A SIP trunk or softphone caller: no identity kind fits yet; the hub decides.
        return Party(address=caller_id, name=name)
    return Party(address=caller_id, name=name, kind=IdentityKind.PHONE)


def parse_incoming_call(form: WebhookForm, received_at: datetime) -> ChannelEvent:
    """A call arriving at one of our numbers, while it is still ringing (the screen pop)."""
    call_sid = form.required("CallSid")
    to_address = form.required("To")
    twilio_direction = form.required("Direction")
    direction = _CALL_DIRECTIONS.get(twilio_direction)
    if direction is None:
        raise MalformedWebhook("Direction", f"unknown call direction {twilio_direction!r}")
    caller = _caller(form, call_sid)
    metadata: dict[str, Any] = {
        "call_status": form.get("CallStatus", "ringing"),
        "to": to_address,
        "caller_id": form.get("From", ""),
    }
    if caller.kind is IdentityKind.WITHHELD:
        metadata["withheld"] = True
    metadata.update(
        _present(
            form,
            (
                ("AccountSid", "account_sid"),
                ("CallerName", "caller_name"),
                ("ForwardedFrom", "forwarded_from"),
                ("StirVerstat", "stir_verstat"),
            ),
        )
    )
    where = _location(form, "From")
    if where:
        metadata["from_location"] = where

    ours = _our_party(to_address)
    if direction is Direction.OUTBOUND:
        # A call we placed (an agent's call-back): the customer is the callee.
        sender, recipients = (
            _our_party(form.get("From", "")),
            (Party(address=to_address, kind=IdentityKind.PHONE),),
        )
    else:
        sender, recipients = caller, (ours,)
    parent = form.optional("ParentCallSid")
    return ChannelEvent(
        channel=Channel.VOICE,
        external_id=call_sid,
        occurred_at=_timestamp(form, "Timestamp", received_at),
        direction=direction,
        sender=sender,
        recipients=recipients,
        kind=InteractionKind.CALL,
        thread_refs=(parent,) if parent else (),
        metadata=metadata,
        raw=form.raw,
        raw_content_type=form.content_type,
        defects=form.defects,
    )


def parse_call_status(form: WebhookForm, received_at: datetime) -> InteractionUpdate:
    """A call's status callback: its outcome and, once completed, its duration."""
    call_sid = form.required("CallSid")
    twilio_status = form.required("CallStatus")
    status = CALL_STATUSES.get(twilio_status)
    if status is None:
        raise MalformedWebhook("CallStatus", f"unknown call status {twilio_status!r}")
    metadata: dict[str, Any] = _present(form, (("SipResponseCode", "sip_response_code"), ("AnsweredBy", "answered_by")))
    return InteractionUpdate(
        channel=Channel.VOICE,
        external_id=call_sid,
        update_id=f"{call_sid}:{twilio_status}",
        occurred_at=_timestamp(form, "Timestamp", received_at),
        raw=form.raw,
        raw_content_type=form.content_type,
        status=status,
        error_code=_error_code(form),
        error_message=form.optional("ErrorMessage"),
        duration_seconds=_integer(form, "CallDuration"),
        metadata=metadata,
    )


#: How the agent's leg of a call can end (``DialCallStatus``).
DIAL_OUTCOMES = frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"})
#: Dial outcomes that mean nobody picked up, so the caller is offered voicemail.
UNANSWERED_DIAL_OUTCOMES = frozenset({"busy", "no-answer", "failed", "canceled"})


def parse_dial_outcome(form: WebhookForm, received_at: datetime) -> InteractionUpdate:
    """How ringing the agent ended, from the ``<Dial>`` action request.

    The caller's own call ends ``completed`` whether an agent answered or the
    caller left a voicemail; only this request says an agent missed it.
    """
    call_sid = form.required("CallSid")
    outcome = form.required("DialCallStatus")
    if outcome not in DIAL_OUTCOMES:
        raise MalformedWebhook("DialCallStatus", f"unknown dial outcome {outcome!r}")
    metadata: dict[str, Any] = {"dial_outcome": outcome}
    talked = _integer(form, "DialCallDuration")
    if talked is not None:
        metadata["dial_duration_seconds"] = talked
    return InteractionUpdate(
        channel=Channel.VOICE,
        external_id=call_sid,
        update_id=f"{call_sid}:dial:{outcome}",
        occurred_at=received_at,
        raw=form.raw,
        raw_content_type=form.content_type,
        metadata=metadata,
    )


# --- voicemail ---------------------------------------------------------------

_RECORDING_STATUSES = frozenset({"in-progress", "completed", "absent", "failed"})


def parse_recording_status(form: WebhookForm, received_at: datetime) -> InteractionUpdate:
    """A recording callback: a completed recording is attached to its call.

    A recording made by ``<Record>`` is a voicemail (Corridor records nothing
    else), so it turns the call into a voicemail. ``absent`` (the caller hung up
    without speaking) and ``failed`` leave only a note in the metadata.
    """
    recording_sid = form.required("RecordingSid")
    call_sid = form.required("CallSid")
    recording_status = form.required("RecordingStatus")
    if recording_status not in _RECORDING_STATUSES:
        raise MalformedWebhook("RecordingStatus", f"unknown recording status {recording_status!r}")
    recording: dict[str, Any] = {"sid": recording_sid, "status": recording_status}
    # The recording's length goes in the metadata, not duration_seconds: the
    # call's own CallDuration arrives in another callback, in either order, and
    # must not be overwritten by the shorter voicemail.
    seconds = _integer(form, "RecordingDuration")
    if seconds is not None:
        recording["duration_seconds"] = seconds
    recording.update(_present(form, (("RecordingSource", "source"), ("RecordingChannels", "channels"))))
    error_code = _error_code(form)
    if error_code is not None:
        recording["error_code"] = error_code

    attachments: tuple[Attachment, ...] = ()
    kind: InteractionKind | None = None
    if recording_status == "completed":
        url = form.required("RecordingUrl")
        # RecordingUrl names the recording without a format; Twilio serves the
        # same recording as MP3 when ".mp3" is appended (WAV otherwise).
        attachments = (
            Attachment(
                filename=f"{recording_sid}.mp3",
                content_type="audio/mpeg",
                size=0,  # unknown until fetched
                url=url + ".mp3",
            ),
        )
        if form.get("RecordingSource") == "RecordVerb":
            kind = InteractionKind.VOICEMAIL
    return InteractionUpdate(
        channel=Channel.VOICE,
        external_id=call_sid,
        update_id=f"{recording_sid}:{recording_status}",
        occurred_at=_timestamp(form, "RecordingStartTime", received_at),
        raw=form.raw,
        raw_content_type=form.content_type,
        kind=kind,
        attachments=attachments,
        metadata={"recording": recording},
    )


def parse_transcription(form: WebhookForm, received_at: datetime) -> InteractionUpdate:
    """A voicemail transcript: its text is added to the call, where search finds it.

    A failed transcription adds no text; the failure is kept in the metadata so
    the agent knows to listen to the recording instead.
    """
    transcription_sid = form.required("TranscriptionSid")
    call_sid = form.required("CallSid")
    transcription_status = form.required("TranscriptionStatus")
    if transcription_status not in ("completed", "failed"):
        raise MalformedWebhook("TranscriptionStatus", f"unknown transcription status {transcription_status!r}")
    transcription: dict[str, Any] = {"sid": transcription_sid, "status": transcription_status}
    if form.get("RecordingSid"):
        transcription["recording_sid"] = form["RecordingSid"]
    text: str | None = None
    if transcription_status == "completed":
        text = form.get("TranscriptionText", "").strip() or None
    return InteractionUpdate(
        channel=Channel.VOICE,
        external_id=call_sid,
        update_id=f"{transcription_sid}:{transcription_status}",
        occurred_at=received_at,
        raw=form.raw,
        raw_content_type=form.content_type,
        text_append=text,
        # Only <Record> is transcribed, and Corridor records only voicemail; this
        # also marks the voicemail when the recording callback is late or lost.
        kind=InteractionKind.VOICEMAIL,
        metadata={"transcription": transcription},
    )
