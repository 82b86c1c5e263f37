"""Twilio's webhooks: checked, journaled, answered; processed right after.

Every request Twilio makes goes through the same steps, in this order:

1. **Signature.** ``X-Twilio-Signature`` is checked over the URL Twilio called
   (rebuilt from ``[app] public_base_url``, see :mod:`.signature`) before
   anything touches the database. A missing or wrong signature gets 403 and
   leaves no trace: an unauthenticated request must not be able to fill the
   journal.
2. **Parse** (pure, :mod:`.parse`). A body the parser cannot place is journaled
   as failed with its error, so nothing Twilio sent is lost and an admin can
   replay it once the parser learns the shape, and Twilio gets 400 naming the
   field.
3. **Journal** with ``hub.ingest.receive`` (concurrent webhooks share a group
   commit) under the source ``twilio.<event>``. The journal row commits before
   Twilio gets its 2xx; if the commit fails Twilio gets a 5xx and retries.
4. **Answer**: TwiML where Twilio waits for instructions (a ringing call, the
   end of a dial, an inbound message), 204 for status callbacks. None of the
   answers depends on the timeline, so none waits for it.
5. **Process**: the hub's journal processor parses the payload again with the
   parser registered for its source and puts it on the timeline, batched with
   whatever else arrived, within milliseconds (``hub.journal``). Retries are
   harmless: the hub deduplicates on MessageSid, CallSid, ``CallSid:status``
   and ``RecordingSid``, and a payload that fails there stays in the journal
   with its error for the worker's retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from flask import Blueprint, Response, jsonify, request
from twilio.twiml.messaging_response import MessagingResponse

from connectors.twilio import twiml, urls
from connectors.twilio.parse import (
    FORM_CONTENT_TYPE,
    MalformedWebhook,
    WebhookForm,
    parse_call_status,
    parse_dial_outcome,
    parse_inbound_message,
    parse_incoming_call,
    parse_message_status,
    parse_recording_status,
    parse_transcription,
)
from connectors.twilio.settings import TwilioSettings
from connectors.twilio.signature import SIGNATURE_HEADER, public_url, verify
from hub.contract import Database, Ingestible, Parser, receive, record_unparseable, repair, storable

log = logging.getLogger(__name__)

#: Journal sources are ``twilio.<event>``; the replay parsers are registered under them.
SOURCE_PREFIX = "twilio."
JSON_CONTENT_TYPE = "application/json"

#: Turns a webhook form into what the hub ingests, given when it arrived.
ParseWebhook = Callable[[WebhookForm, datetime], Ingestible]


@dataclass(frozen=True, slots=True)
class Answers:
    """What the webhooks need to answer Twilio: the settings and the public URL."""

    settings: TwilioSettings
    public_base_url: str


def _twiml(document: str) -> Response:
    return Response(document, status=200, content_type=twiml.TWIML_CONTENT_TYPE)


def _no_content(_form: WebhookForm, _answers: Answers) -> Response:
    # Twilio ignores the body of a status callback's answer; 204 says so.
    return Response(status=204)


#: Empty TwiML rather than an empty body: Twilio logs a warning (12200) for a
#: messaging webhook that answers with something that is not TwiML.
NO_REPLY = str(MessagingResponse().to_xml())


def _no_reply(_form: WebhookForm, _answers: Answers) -> Response:
    return _twiml(NO_REPLY)


def _greet_and_dial(_form: WebhookForm, answers: Answers) -> Response:
    return _twiml(twiml.incoming_call(answers.settings, answers.public_base_url))


def _after_dial(form: WebhookForm, answers: Answers) -> Response:
    # The parser has already refused an unknown DialCallStatus.
    return _twiml(twiml.dial_complete(form["DialCallStatus"], answers.public_base_url))


@dataclass(frozen=True, slots=True)
class Webhook:
    """One webhook: where Twilio calls it, how its body is parsed, what Twilio is told."""

    event: str
    path: str
    parse: ParseWebhook
    answer: Callable[[WebhookForm, Answers], Response]

    @property
    def source(self) -> str:
        """The journal source its payloads are stored and replayed under."""
        return SOURCE_PREFIX + self.event


#: Every webhook that puts something on the timeline, in one list: the routes,
#: the journal sources and the replay parsers are all derived from it.
WEBHOOKS: tuple[Webhook, ...] = (
    Webhook("message", urls.INBOUND_MESSAGE, parse_inbound_message, _no_reply),
    Webhook("message-status", urls.MESSAGE_STATUS, parse_message_status, _no_content),
    Webhook("call", urls.INCOMING_CALL, parse_incoming_call, _greet_and_dial),
    Webhook("dial", urls.DIAL_COMPLETE, parse_dial_outcome, _after_dial),
    Webhook("call-status", urls.CALL_STATUS, parse_call_status, _no_content),
    Webhook("recording", urls.RECORDING_STATUS, parse_recording_status, _no_content),
    Webhook("transcription", urls.TRANSCRIPTION, parse_transcription, _no_content),
)


def webhook_context(received_at: datetime) -> dict[str, Any]:
    """What a replay needs besides the body: Twilio does not timestamp messages."""
    return {"received_at": received_at.isoformat()}


def replay_parser(webhook: Webhook) -> Parser:
    """The parser ``corridor journal replay`` and the worker use for ``webhook.source``."""

    def parse_again(raw: bytes, context: dict[str, Any]) -> Sequence[Ingestible]:
        try:
            received_at = datetime.fromisoformat(str(context["received_at"]))
        except (KeyError, ValueError):
            raise ValueError(f"{webhook.source}: the journal context has no valid received_at") from None
        return [storable(webhook.parse(WebhookForm.from_body(raw), received_at))]

    return parse_again


def _refusal(status: int, field: str | None, message: str) -> Response:
    # The shape of every error the hub answers under /api and /webhooks.
    response = jsonify({"error": {"status": status, "field": field, "message": message}})
    response.status_code = status
    return response


@dataclass(frozen=True, slots=True)
class _Arrival:
    """An authentic request body, exactly as it arrived."""

    raw: bytes
    content_type: str
    #: None for a signed body that is not a form (Twilio signs JSON differently).
    form: WebhookForm | None


def build_blueprint(database: Database, settings: TwilioSettings, token: str, public_base_url: str) -> Blueprint:
    """The blueprint serving every Twilio webhook.

    ``token`` is the auth token, read once at start-up so that a missing one
    stops start-up instead of failing each request.
    """
    answers = Answers(settings, public_base_url)
    blueprint = Blueprint("twilio", __name__)

    def signed_url() -> str:
        return public_url(
            path=request.path,
            # Raw, exactly as received: Twilio signs the URL it requested.
            query_string=request.query_string.decode("latin-1"),
            headers=request.headers,
            remote_addr=request.remote_addr,
            public_base_url=public_base_url,
            trusted_proxies=settings.trusted_proxies,
        )

    def forbidden(url: str) -> Response:
        # The URL is logged because a proxy or base-URL mismatch is by far the
        # most common cause, and it shows at a glance; the token never is.
        log.warning(
            "refused a request to %s from %s: X-Twilio-Signature missing or wrong for %s "
            "(if Twilio's own requests fail, check [app] public_base_url and [twilio] trusted_proxies)",
            request.path,
            request.remote_addr,
            url,
        )
        return _refusal(403, SIGNATURE_HEADER, "missing, or not Twilio's signature of this request")

    def authentic() -> _Arrival | Response:
        """The request's body if Twilio signed it, else the 403 to answer."""
        raw = request.get_data(cache=False)  # 413 past [app] max_body_bytes
        content_type = request.content_type or FORM_CONTENT_TYPE
        url = signed_url()
        signature = request.headers.get(SIGNATURE_HEADER)
        if request.mimetype == JSON_CONTENT_TYPE:
            # Twilio signs a JSON body through bodySHA256 in the URL. None of
            # these webhooks is JSON, but a signed one is still Twilio's data.
            return _Arrival(raw, content_type, None) if verify(url, raw, signature, token) else forbidden(url)
        form = WebhookForm.from_body(raw, content_type)
        return _Arrival(raw, content_type, form) if verify(url, form, signature, token) else forbidden(url)

    def handle(webhook: Webhook) -> Response:
        arrival = authentic()
        if isinstance(arrival, Response):
            return arrival
        received_at = datetime.now(UTC)
        context = webhook_context(received_at)
        form = arrival.form
        try:
            if form is None:
                raise MalformedWebhook("body", f"expected {FORM_CONTENT_TYPE}, got {arrival.content_type}")
            # A NUL (Body=a%00b) or anything else no database stores is
            # replaced and flagged here, before the 2xx: acknowledged and
            # then failing on every retry would be accepted, then lost.
            item = storable(webhook.parse(form, received_at))
        except MalformedWebhook as exc:
            # Kept whole, marked failed: an admin sees it and can replay it.
            with database.write() as session:
                record_unparseable(
                    session,
                    source=webhook.source,
                    raw=arrival.raw,
                    content_type=arrival.content_type,
                    error=repair(str(exc)),
                    context=context,
                )
            return _refusal(415 if form is None else 400, exc.field, exc.message)
        receive(database, [item], source=webhook.source, context=context)
        # Committed: whatever becomes of the item (new, duplicate, deferred
        # until its message arrives, failed and queued for replay), it is durable.
        return webhook.answer(form, answers)

    for webhook in WEBHOOKS:
        blueprint.add_url_rule(
            webhook.path, endpoint=webhook.event, view_func=partial(handle, webhook), methods=["POST"]
        )

    @blueprint.post(urls.VOICEMAIL_COMPLETE)
    def voicemail_complete() -> Response:
        """Where Twilio goes once the caller has left a voicemail: hang up.

        Nothing is journaled here: the recording and transcription callbacks
        carry the voicemail, each with an id that makes it idempotent. The
        signature is still checked, so only Twilio learns what we answer.
        """
        arrival = authentic()
        if isinstance(arrival, Response):
            return arrival
        return _twiml(twiml.hang_up())

    return blueprint
