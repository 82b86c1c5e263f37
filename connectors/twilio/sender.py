"""Agents' SMS and WhatsApp replies, sent through ``twilio.rest.Client``.

The hub calls :meth:`TwilioSender.send` after the reply is committed as a queued
interaction. Twilio's answer becomes a :class:`~hub.outbound.SendResult` (the
MessageSid that later status callbacks name) or a :class:`~hub.outbound.SendError`
that says whether retrying can help.
"""

from __future__ import annotations

import phonenumbers
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http import HttpClient
from twilio.rest import Client

from connectors.twilio import urls
from connectors.twilio.parse import MESSAGE_STATUSES, WHATSAPP_PREFIX
from connectors.twilio.settings import TwilioSettings
from hub.contract import Channel, DeliveryStatus, OutboundMessage, SendError, SendResult, SettingsError

_SENDABLE = (Channel.SMS, Channel.WHATSAPP)
# HTTP statuses in the 4xx range that a later retry can still get past: an auth
# token being rotated, a timeout, rate limiting. Every other 4xx (an invalid
# number, an unsubscribed recipient) fails the same way however often it is sent.
_RETRYABLE_CLIENT_ERRORS = frozenset({401, 408, 429})


def _bare(address: str) -> str:
    if address[: len(WHATSAPP_PREFIX)].lower() == WHATSAPP_PREFIX:
        return address[len(WHATSAPP_PREFIX) :]
    return address


def _on_channel(channel: Channel, address: str) -> str:
    """The address as Twilio wants it for ``channel`` (``whatsapp:+1...``)."""
    bare = _bare(address)
    return WHATSAPP_PREFIX + bare if channel is Channel.WHATSAPP else bare


def _country_code(number: str) -> int | None:
    try:
        return phonenumbers.parse(number, None).country_code
    except phonenumbers.NumberParseException:
        return None


def _is_permanent(status: int) -> bool:
    return 400 <= status < 500 and status not in _RETRYABLE_CLIENT_ERRORS


class TwilioSender:
    """Sends replies on the SMS and WhatsApp channels (implements ``hub.outbound.Sender``)."""

    def __init__(
        self,
        settings: TwilioSettings,
        public_base_url: str,
        http_client: HttpClient | None = None,
    ) -> None:
        """``http_client`` is Twilio's transport; ``None`` is the real one (requests)."""
        if not settings.account_sid:
            raise SettingsError(
                "[twilio] account_sid: not set; give it as HUB_TWILIO_ACCOUNT_SID (replies cannot be sent without it)"
            )
        self._settings = settings
        self._status_callback = urls.webhook_url(public_base_url, urls.MESSAGE_STATUS)
        # Both credentials are given explicitly, so the client never falls back
        # to TWILIO_* environment variables behind the settings' back.
        self._client = Client(settings.account_sid, settings.token(), http_client=http_client)

    def from_address(self, message_channel: Channel, customer_address: str, previous_to: str | None) -> str:
        """The Twilio number a reply goes out from.

        The number the customer last wrote to, when it still serves the channel
        (they recognise it, and it keeps a WhatsApp session on the same number);
        otherwise a number in the customer's country, which carriers deliver more
        reliably and more cheaply; otherwise the first configured number.
        """
        candidates = self._settings.numbers_for(message_channel)
        if not candidates:
            raise SendError(
                f"no Twilio number in [twilio] numbers (HUB_TWILIO_NUMBERS) serves {message_channel}: "
                'add one, e.g. [{"number": "+15005550006", "channels": ["sms"]}]',
                code="no_sender_number",
                permanent=True,
            )
        if previous_to is not None and _bare(previous_to) in candidates:
            return _bare(previous_to)
        customer_country = _country_code(_bare(customer_address))
        for number in candidates:
            if customer_country is not None and _country_code(number) == customer_country:
                return number
        return candidates[0]

    def send(self, message: OutboundMessage) -> SendResult:
        """Hand ``message`` to Twilio, or raise :class:`SendError`."""
        if message.channel not in _SENDABLE:
            raise SendError(
                f"Twilio sends sms and whatsapp, not {message.channel}",
                code="unsupported_channel",
                permanent=True,
            )
        media_urls = [a.url for a in message.attachments if a.url]
        if len(media_urls) != len(message.attachments):
            # Twilio fetches media from a public URL; a file only we hold cannot
            # be sent, and dropping it silently would mislead the customer.
            raise SendError(
                "attachments need a public URL to be sent by SMS or WhatsApp",
                code="attachment_without_url",
                permanent=True,
            )
        if not message.text and not media_urls:
            raise SendError("the reply is empty", code="empty_message", permanent=True)
        try:
            created = self._client.messages.create(
                to=_on_channel(message.channel, message.to_address),
                from_=_on_channel(message.channel, message.from_address),
                body=message.text,
                status_callback=self._status_callback,
                **({"media_url": media_urls} if media_urls else {}),
            )
        except TwilioRestException as exc:
            raise SendError(
                str(exc.msg) or f"Twilio answered HTTP {exc.status}",
                code=str(exc.code) if exc.code is not None else str(exc.status),
                permanent=_is_permanent(int(exc.status)),
            ) from exc
        except TwilioServiceException as exc:
            raise SendError(
                str(exc.detail or exc.title),
                code=str(exc.code),
                permanent=_is_permanent(int(exc.status)),
            ) from exc
        except (TwilioException, OSError) as exc:
            # OSError covers requests' connection errors and timeouts: Twilio may
            # be back in a minute, so the worker retries.
            raise SendError(f"Twilio could not be reached: {exc}", code="unreachable") from exc

        twilio_status = str(created.status or "queued")
        status = MESSAGE_STATUSES.get(twilio_status, DeliveryStatus.QUEUED)
        metadata = {"twilio_status": twilio_status, "from": message.from_address}
        if created.num_segments:
            metadata["num_segments"] = str(created.num_segments)
        return SendResult(provider_id=str(created.sid), status=str(status), metadata=metadata)
