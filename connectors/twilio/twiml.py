"""What an incoming call is told to do: greet, ring the agent, else take a voicemail.

The call flow is two TwiML documents:

1. :func:`incoming_call` answers the call: the greeting, then ``<Dial>`` to the
   agent endpoint with a timeout. Its ``action`` brings Twilio back to
   :data:`~connectors.twilio.urls.DIAL_COMPLETE` when the agent's leg ends.
2. :func:`dial_complete` answers that request: hang up when the agent talked to
   the caller; otherwise record a voicemail, transcribed, with callbacks that put
   the recording and the transcript on the call's interaction.

Every URL is absolute, built from ``[app] public_base_url``, because relative
URLs resolve against the URL Twilio called, which behind a proxy is not always
the one the signatures are checked against.
"""

from __future__ import annotations

from twilio.twiml.voice_response import (
    Dial,
    VoiceResponse,
)

from connectors.twilio import urls
from connectors.twilio.parse import UNANSWERED_DIAL_OUTCOMES
from connectors.twilio.settings import TwilioSettings

TWIML_CONTENT_TYPE = "text/xml"

VOICEMAIL_PROMPT = "Nobody is available to take your call. Please leave a message after the tone."
# Twilio transcribes recordings of up to two minutes; a longer limit would give
# voicemails that are never searchable.
VOICEMAIL_MAX_SECONDS = 120
# Seconds of silence that end a voicemail: long enough for a pause to think.
VOICEMAIL_SILENCE_SECONDS = 5


def _dial_agent(dial: Dial, endpoint: str) -> None:
    if endpoint.startswith("sip:"):
        dial.sip(endpoint)
    elif endpoint.startswith("client:"):
        dial.client(identity=endpoint.removeprefix("client:"))
    else:
        dial.number(endpoint)


def incoming_call(settings: TwilioSettings, public_base_url: str) -> str:
    """TwiML for a new incoming call: greeting, then ring the agent with a timeout.

    With no agent endpoint configured the caller goes straight to voicemail
    rather than hearing a dial to nowhere.
    """
    if not settings.agent_endpoint:
        return voicemail(public_base_url, greeting=settings.greeting)
    response = VoiceResponse()
    if settings.greeting:
        response.say(settings.greeting)
    dial = response.dial(
        action=urls.webhook_url(public_base_url, urls.DIAL_COMPLETE),
        method="POST",
        timeout=settings.dial_timeout,
    )
    _dial_agent(dial, settings.agent_endpoint)
    return str(response.to_xml())


def dial_complete(dial_call_status: str, public_base_url: str) -> str:
    """TwiML once the agent's leg ends: hang up if they talked, else voicemail."""
    if dial_call_status in UNANSWERED_DIAL_OUTCOMES:
        return voicemail(public_base_url)
    return hang_up()


def voicemail(public_base_url: str, greeting: str = "") -> str:
    """TwiML that records a transcribed voicemail, then hangs up."""
    response = VoiceResponse()
    if greeting:
        response.say(greeting)
    response.say(VOICEMAIL_PROMPT)
    response.record(
        # Without an action Twilio re-requests the current document once the
        # recording ends, which would offer voicemail again in a loop.
        action=urls.webhook_url(public_base_url, urls.VOICEMAIL_COMPLETE),
        method="POST",
        max_length=VOICEMAIL_MAX_SECONDS,
        timeout=VOICEMAIL_SILENCE_SECONDS,
        play_beep=True,
        transcribe=True,
        transcribe_callback=urls.webhook_url(public_base_url, urls.TRANSCRIPTION),
        recording_status_callback=urls.webhook_url(public_base_url, urls.RECORDING_STATUS),
        recording_status_callback_method="POST",
        # "absent" too, so a caller who hung up in silence is recorded as such.
        recording_status_callback_event="completed absent",
    )
    # Reached only when nothing was recorded (Twilio then skips the action).
    response.hangup()
    return str(response.to_xml())


def hang_up() -> str:
    """TwiML that ends the call (after a voicemail, or after the agent hung up)."""
    response = VoiceResponse()
    response.hangup()
    return str(response.to_xml())
