"""The webhook paths Twilio calls, relative to ``[app] public_base_url``.

They are named once here because the same path appears in three places that
must agree: the route that serves it, the callback URL written into TwiML or an
API request, and the URL whose signature is checked. A mismatch would not fail
loudly; Twilio would simply post somewhere else and every signature would fail.

Every path sits under ``/webhooks/``, where the hub answers errors as JSON
rather than as pages meant for a browser.
"""

from __future__ import annotations

#: What every Twilio webhook path starts with.
PREFIX = "/webhooks/twilio"
#: Incoming SMS, MMS and WhatsApp messages (the number's messaging webhook).
INBOUND_MESSAGE = PREFIX + "/message"
#: Delivery receipts for replies sent through the REST API.
MESSAGE_STATUS = PREFIX + "/message-status"
#: Incoming calls (the number's voice webhook); answered with TwiML.
INCOMING_CALL = PREFIX + "/voice"
#: The ``<Dial>`` action: where Twilio asks what to do once the agent's leg ends.
DIAL_COMPLETE = PREFIX + "/voice/dial-complete"
#: The ``<Record>`` action: reached after the caller has left a voicemail.
VOICEMAIL_COMPLETE = PREFIX + "/voice/voicemail-complete"
#: Call status callbacks (the number's status callback URL).
CALL_STATUS = PREFIX + "/call-status"
#: Recording status callbacks (voicemail recordings).
RECORDING_STATUS = PREFIX + "/recording-status"
#: Transcription callbacks (voicemail transcripts).
TRANSCRIPTION = PREFIX + "/transcription"


def webhook_url(public_base_url: str, path: str) -> str:
    """The absolute URL Twilio is told to call for ``path``.

    ``public_base_url`` may carry a path prefix (``https://example.com/corridor``)
    when Corridor is served below the root of its host.
    """
    return public_base_url.rstrip("/") + path
