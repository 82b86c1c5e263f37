"""``corridor twilio simulate``: Twilio's webhooks, correctly signed, without Twilio.

A new user can watch an SMS, a WhatsApp message or a call arrive on a timeline
before they have a Twilio account or a public URL. The requests have the fields
and form encoding Twilio sends (the same shapes as the test fixtures) and are
signed with the configured auth token for the URL Twilio would call, built from
``[app] public_base_url``; they are posted to wherever Corridor is running
(``--url``). The server checks them exactly as it checks Twilio's own.

Only the standard library speaks HTTP here, so the command works wherever
Corridor is installed.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

import click
from twilio.request_validator import RequestValidator

from connectors.twilio import urls
from connectors.twilio.parse import FORM_CONTENT_TYPE, WHATSAPP_PREFIX
from connectors.twilio.settings import TwilioSettings
from connectors.twilio.signature import SIGNATURE_HEADER
from hub.contract import Channel

API_VERSION = "2010-04-01"
TWILIO_API = f"https://api.twilio.com/{API_VERSION}"
#: Twilio's magic test number: the "To" when no number is configured.
TEST_NUMBER = "+15005550006"
DEFAULT_CALLER = "+14155550123"
DEFAULT_TEXTS = {
    "sms": "Hi, my order 1042 still hasn't arrived. Can you check?",
    "mms": "The box arrived damaged, photo attached.",
    "whatsapp": "Hola, ¿puedo cambiar la dirección de entrega?",
    "voicemail": "Hi, this is about order 1042, the replacement still hasn't shipped. Please call me back.",
}
EVENTS = ("sms", "mms", "whatsapp", "call", "call-end", "voicemail")
#: Seconds to wait for Corridor to answer one request.
TIMEOUT_SECONDS = 15.0

Fields = list[tuple[str, str]]


def sid(prefix: str) -> str:
    """A fresh Twilio-style id: two letters and 32 hexadecimal digits."""
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class SimulatedRequest:
    """One request Twilio would make: which webhook, with which form fields, in order."""

    label: str
    path: str
    fields: Fields


@dataclass(frozen=True, slots=True)
class Scenario:
    """What to simulate: who writes or calls, to which number, saying what."""

    account_sid: str
    caller: str
    to: str
    text: str
    sid: str


def _message(scenario: Scenario, channel_prefix: str, media: list[tuple[str, str]]) -> SimulatedRequest:
    fields: Fields = [
        ("SmsMessageSid", scenario.sid),
        ("NumMedia", str(len(media))),
        ("SmsSid", scenario.sid),
        ("SmsStatus", "received"),
        ("Body", scenario.text),
        ("To", channel_prefix + scenario.to),
        ("NumSegments", "1"),
        ("MessageSid", scenario.sid),
        ("AccountSid", scenario.account_sid),
        ("From", channel_prefix + scenario.caller),
        ("ApiVersion", API_VERSION),
    ]
    for index, (url, content_type) in enumerate(media):
        fields += [(f"MediaContentType{index}", content_type), (f"MediaUrl{index}", url)]
    if channel_prefix:
        fields += [("WaId", scenario.caller.lstrip("+")), ("MessageType", "text" if not media else "image")]
    return SimulatedRequest("inbound message", urls.INBOUND_MESSAGE, fields)


def _call_fields(scenario: Scenario, status: str) -> Fields:
    return [
        ("AccountSid", scenario.account_sid),
        ("ApiVersion", API_VERSION),
        ("CallSid", scenario.sid),
        ("CallStatus", status),
        ("Called", scenario.to),
        ("Caller", scenario.caller),
        ("Direction", "inbound"),
        ("From", scenario.caller),
        ("To", scenario.to),
    ]


def _incoming_call(scenario: Scenario) -> SimulatedRequest:
    return SimulatedRequest("incoming call", urls.INCOMING_CALL, _call_fields(scenario, "ringing"))


def _call_end(scenario: Scenario, seconds: int) -> SimulatedRequest:
    fields = [
        *_call_fields(scenario, "completed"),
        ("CallDuration", str(seconds)),
        ("Timestamp", format_datetime(datetime.now(UTC))),
        ("CallbackSource", "call-progress-events"),
        ("SequenceNumber", "0"),
    ]
    return SimulatedRequest("call status", urls.CALL_STATUS, fields)


def _voicemail(scenario: Scenario, agent_endpoint: str) -> list[SimulatedRequest]:
    """An unanswered call as Twilio reports it: ring, missed dial, recording, transcript, end."""
    recording_sid, transcription_sid = sid("RE"), sid("TR")
    recording_url = f"{TWILIO_API}/Accounts/{scenario.account_sid}/Recordings/{recording_sid}"
    steps = [_incoming_call(scenario)]
    if agent_endpoint:
        # Without an agent endpoint the call goes straight to voicemail: no dial.
        steps.append(
            SimulatedRequest(
                "agent did not answer",
                urls.DIAL_COMPLETE,
                [
                    *_call_fields(scenario, "in-progress"),
                    ("DialCallSid", sid("CA")),
                    ("DialCallStatus", "no-answer"),
                    ("DialCallDuration", "0"),
                ],
            )
        )
    steps += [
        SimulatedRequest(
            "voicemail left",
            urls.VOICEMAIL_COMPLETE,
            [
                *_call_fields(scenario, "in-progress"),
                ("RecordingUrl", recording_url),
                ("RecordingDuration", "9"),
                ("Digits", "hangup"),
            ],
        ),
        SimulatedRequest(
            "recording",
            urls.RECORDING_STATUS,
            [
                ("RecordingSource", "RecordVerb"),
                ("RecordingTrack", "both"),
                ("RecordingSid", recording_sid),
                ("RecordingUrl", recording_url),
                ("RecordingStatus", "completed"),
                ("RecordingChannels", "1"),
                ("ErrorCode", "0"),
                ("CallSid", scenario.sid),
                ("RecordingStartTime", format_datetime(datetime.now(UTC))),
                ("AccountSid", scenario.account_sid),
                ("RecordingDuration", "9"),
            ],
        ),
        SimulatedRequest(
            "transcription",
            urls.TRANSCRIPTION,
            [
                ("ApiVersion", API_VERSION),
                ("TranscriptionType", "fast"),
                ("TranscriptionUrl", f"{recording_url}/Transcriptions/{transcription_sid}"),
                ("TranscriptionSid", transcription_sid),
                ("Called", scenario.to),
                ("RecordingSid", recording_sid),
                ("CallStatus", "completed"),
                ("RecordingUrl", recording_url),
                ("From", scenario.caller),
                ("Direction", "inbound"),
                ("AccountSid", scenario.account_sid),
                ("TranscriptionText", scenario.text),
                ("Caller", scenario.caller),
                ("TranscriptionStatus", "completed"),
                ("CallSid", scenario.sid),
                ("To", scenario.to),
            ],
        ),
        _call_end(scenario, 31),
    ]
    return steps


def requests_for(event: str, scenario: Scenario, settings: TwilioSettings) -> list[SimulatedRequest]:
    """The requests Twilio would make for ``event``, in the order it makes them."""
    if event == "sms":
        return [_message(scenario, "", [])]
    if event == "mms":
        media_url = f"{TWILIO_API}/Accounts/{scenario.account_sid}/Messages/{scenario.sid}/Media/{sid('ME')}"
        return [_message(scenario, "", [(media_url, "image/jpeg")])]
    if event == "whatsapp":
        return [_message(scenario, WHATSAPP_PREFIX, [])]
    if event == "call":
        return [_incoming_call(scenario)]
    if event == "call-end":
        return [_call_end(scenario, 47)]
    if event == "voicemail":
        return _voicemail(scenario, settings.agent_endpoint)
    raise ValueError(f"unknown event {event!r}")


def sign(token: str, public_base_url: str, request: SimulatedRequest) -> str:
    """``X-Twilio-Signature`` for ``request`` as Twilio would compute it."""
    signed_url = urls.webhook_url(public_base_url, request.path)
    return str(RequestValidator(token).compute_signature(signed_url, dict(request.fields)))


def post(target: str, body: bytes, signature: str) -> tuple[int, str]:
    """POST one form to ``target``; returns Corridor's status and body."""
    outgoing = urllib.request.Request(  # noqa: S310  # --url is checked to be http(s) in the command
        target,
        data=body,
        method="POST",
        headers={"Content-Type": FORM_CONTENT_TYPE, SIGNATURE_HEADER: signature},
    )
    try:
        with urllib.request.urlopen(outgoing, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310  # as above
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _channel(event: str) -> Channel:
    if event == "whatsapp":
        return Channel.WHATSAPP
    return Channel.VOICE if event in ("call", "call-end", "voicemail") else Channel.SMS


def twilio_commands(settings: TwilioSettings, public_base_url: str) -> click.Group:
    """The ``corridor twilio`` command group."""

    @click.group("twilio")
    def twilio() -> None:
        """Twilio: phone calls, voicemail, SMS and WhatsApp."""

    @twilio.command("simulate")
    @click.argument("event", type=click.Choice(EVENTS))
    @click.option(
        "--url",
        default=None,
        help="Where Corridor is running (default: [app] public_base_url, HUB_APP_PUBLIC_BASE_URL, which the "
        "requests are signed for).",
    )
    @click.option("--from", "caller", default=DEFAULT_CALLER, show_default=True, help="The customer's number.")
    @click.option("--to", default=None, help="Our number (default: the first of [twilio] numbers for the channel).")
    @click.option("--body", default=None, help="The message text, or the voicemail's transcript.")
    @click.option(
        "--sid",
        "given_sid",
        default=None,
        help="The MessageSid or CallSid (default: a new one). Required for call-end; reuse one to see a retry "
        "deduplicated.",
    )
    def simulate(
        event: str, url: str | None, caller: str, to: str | None, body: str | None, given_sid: str | None
    ) -> None:
        """Post EVENT to a running Corridor as Twilio would, correctly signed.

        \b
        sms, mms, whatsapp  a customer's message arrives
        call                a call rings (it stays ringing until call-end)
        call-end            the call named by --sid ends after 47 seconds
        voicemail           nobody answers; the caller leaves a transcribed voicemail
        """
        # Where Twilio reaches Corridor is where a simulated Twilio posts to,
        # unless told otherwise (a public URL behind a proxy, say).
        url = url or public_base_url
        if not url.startswith(("http://", "https://")):
            raise click.BadParameter("must start with http:// or https://", param_hint="--url")
        if event == "call-end" and not given_sid:
            raise click.BadParameter("call-end needs the CallSid of the call to end", param_hint="--sid")
        channel = _channel(event)
        scenario = Scenario(
            account_sid=settings.account_sid,
            caller=caller,
            to=to or next(iter(settings.numbers_for(channel)), TEST_NUMBER),
            text=body if body is not None else DEFAULT_TEXTS.get(event, ""),
            sid=given_sid or sid("CA" if channel is Channel.VOICE else "MM" if event == "mms" else "SM"),
        )
        token = settings.token()
        for request in requests_for(event, scenario, settings):
            target = urls.webhook_url(url, request.path)
            try:
                status, answer = post(target, urlencode(request.fields).encode(), sign(token, public_base_url, request))
            except urllib.error.URLError as exc:
                raise click.ClickException(
                    f"could not reach Corridor at {url} ({exc.reason}); is it running (`corridor run`)?"
                ) from None
            click.echo(f"{request.label}: POST {target} -> {status}")
            if status == 403:
                raise click.ClickException(
                    f"Corridor refused the signature. It checks it against "
                    f"{urls.webhook_url(public_base_url, request.path)} with its auth token: start it with the same "
                    "HUB_TWILIO_AUTH_TOKEN and HUB_APP_PUBLIC_BASE_URL as this command."
                )
            if status >= 400:
                raise click.ClickException(f"Corridor answered {status}: {answer.strip()}")
            if answer.strip() and request.path in (urls.INCOMING_CALL, urls.DIAL_COMPLETE):
                click.echo(f"  Twilio would be told: {answer.strip()}")
        click.echo(f"{scenario.sid} from {caller} is on its customer's timeline.")

    return twilio
