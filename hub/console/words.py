"""Delivery problems in words a person understands, with the provider's code for support."""

from __future__ import annotations

#: Twilio error codes agents meet most, in plain words (https://www.twilio.com/docs/api/errors).
TWILIO = {
    "21211": "The number is not a valid phone number",
    "21408": "Corridor's Twilio account may not send to this country",
    "21610": "The customer has opted out of messages from this number (they replied STOP)",
    "21612": "This number cannot receive messages from Corridor's number",
    "21614": "The number is not a mobile number",
    "30003": "The phone is switched off or out of reach",
    "30004": "The customer's phone blocks these messages",
    "30005": "The number is unknown or no longer in service",
    "30006": "The number is a landline or its carrier cannot receive texts",
    "30007": "The carrier filtered the message as spam",
    "30008": "The carrier could not deliver it (unknown error)",
    "63016": "WhatsApp: more than 24 hours since the customer wrote; only an approved template can be sent",
}


def delivery_problem(channel: str, code: str | None, message: str | None) -> str:
    """One sentence for a failed or retried delivery, never a stack trace."""
    if code and code in TWILIO:
        return f"{TWILIO[code]} (Twilio {code})"
    text = (message or "").strip().splitlines()[0] if message else ""
    if "Traceback" in (message or "") or len(text) > 300:
        text = "The provider refused it"
    if code:
        provider = "Twilio" if channel in {"sms", "whatsapp", "voice"} else "code"
        return f"{text or 'The provider refused it'} ({provider} {code})"
    return text or "It could not be delivered"
