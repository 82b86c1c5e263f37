"""Twilio: phone calls, voicemail, SMS, MMS and WhatsApp on the customer timeline.

The package is split so that the parts most bugs live in stay pure:

* :mod:`.settings` -- the ``[twilio]`` section, validated;
* :mod:`.parse` -- webhook form bodies to :mod:`hub.events` values, no I/O;
* :mod:`.signature` -- the URL Twilio called and ``X-Twilio-Signature`` checks;
* :mod:`.twiml` -- what an incoming call is told to do (greet, dial, voicemail);
* :mod:`.webhooks` -- the blueprint: check, journal, ingest, answer;
* :mod:`.sender` -- agents' SMS and WhatsApp replies through ``twilio.rest``;
* :mod:`.media` -- recordings and MMS media fetched with the account's credentials;
* :mod:`.simulate` -- ``corridor twilio simulate``: signed webhooks for a demo;
* :mod:`.urls` -- the webhook paths, shared by the TwiML, the sender and the
  blueprint so that a callback URL and its route cannot drift apart.

:func:`init_connector` wires them into the hub. Its imports are local so that
importing the pure modules (in parser tests, say) never drags in Flask or the
database layer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twilio.http import HttpClient

    from hub.contract import Registry

#: Seconds a reply's request to Twilio's REST API may take. Replies are sent
#: from the agent's request (and retried by the worker), so a hung connection
#: must not hold a server thread for ever, which ``requests`` would by default.
REST_TIMEOUT_SECONDS = 15.0


#: Twilio's client logs every request's method, URL, headers and parameters,
#: and every response, at INFO: under `corridor run`'s INFO logging that put
#: each reply's text and the customer's number in the log. Its own logger,
#: at WARNING: failures still show, with Corridor's own account of them.
REST_LOG = logging.getLogger("corridor.twilio.rest")
REST_LOG.setLevel(logging.WARNING)


def rest_transport() -> HttpClient:
    """The HTTP transport the reply sender hands to ``twilio.rest.Client``.

    The one place it is built, and the test suite's seam: the tests replace
    this function with one returning a recording transport, because Twilio's
    cloud is unreachable from them. Everything above the transport stays real.
    """
    from twilio.http.http_client import TwilioHttpClient

    return TwilioHttpClient(timeout=REST_TIMEOUT_SECONDS, logger=REST_LOG)


def init_connector(registry: Registry) -> None:
    """Register the webhooks, the replay parsers, the SMS/WhatsApp sender, the media fetcher and the CLI.

    Raises :class:`hub.config.SettingsError` (stopping start-up) when the auth
    token or the account SID is missing: without the token no webhook can be
    authenticated, and without the SID no reply can be sent.
    """
    from connectors.twilio.media import TwilioMediaFetcher
    from connectors.twilio.sender import TwilioSender
    from connectors.twilio.settings import NUMBER_CHANNELS, TwilioSettings
    from connectors.twilio.simulate import twilio_commands
    from connectors.twilio.webhooks import WEBHOOKS, build_blueprint, replay_parser
    from hub.contract import AppSettings, Channel

    settings = registry.settings.section("twilio", TwilioSettings)
    public_base_url = registry.settings.section("app", AppSettings).public_base_url
    token = settings.token()
    registry.add_blueprint(build_blueprint(registry.database, settings, token, public_base_url))
    for webhook in WEBHOOKS:
        registry.add_parser(webhook.source, replay_parser(webhook))
    sender = TwilioSender(settings, public_base_url, http_client=rest_transport())
    registry.add_sender(Channel.SMS, sender)
    registry.add_sender(Channel.WHATSAPP, sender)
    # Recordings (voice) and MMS/WhatsApp media stay at Twilio until fetched.
    fetcher = TwilioMediaFetcher(settings, token)
    for channel in sorted(NUMBER_CHANNELS):
        registry.add_media_fetcher(channel, fetcher, prefetch=settings.fetch_media)
    registry.add_command(twilio_commands(settings, public_base_url))
