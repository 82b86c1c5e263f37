"""Hypothesis over every Twilio webhook parser: a documented refusal or a storable value, never a crash.

Pure and quick: bodies are real captured payloads with fields dropped,
replaced by arbitrary text (NUL, control characters, any Unicode) or
duplicated, and arbitrary bytes for the form decoder. Bounded and
derandomised, so every run sends the same inputs.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.twilio.parse import MalformedWebhook, WebhookForm
from connectors.twilio.webhooks import WEBHOOKS
from hub.events import ChannelEvent, InteractionUpdate
from hub.storable import problem, storable
from tests.connectors.twilio.samples import FIXTURES, RECEIVED_AT

SETTINGS = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])  # fmt: skip

#: The captured payloads each webhook receives, by file name prefix. The dial
#: webhook has none of its own; a call's status payloads are closest (it adds
#: DialCallStatus, which mutation then supplies or not).
PREFIXES = {
    "message": "inbound_",
    "message-status": "status_",
    "call": "incoming_call",
    "dial": "call_status_",
    "call-status": "call_status_",
    "recording": "recording_",
    "transcription": "transcription_",
}
PAYLOADS = {
    webhook.event: [
        parse_qsl(path.read_text().strip(), keep_blank_values=True)
        for path in sorted(FIXTURES.glob(f"{PREFIXES[webhook.event]}*.txt"))
    ]
    for webhook in WEBHOOKS
}


@st.composite
def mutated_body(draw: st.DrawFn, event: str) -> bytes:
    fields = list(draw(st.sampled_from(PAYLOADS[event])))
    for _ in range(draw(st.integers(0, 4))):
        if not fields:
            break
        index = draw(st.integers(0, len(fields) - 1))
        name, _ = fields[index]
        action = draw(st.sampled_from(["replace", "drop", "duplicate"]))
        if action == "drop":
            del fields[index]
        elif action == "duplicate":
            fields.append((name, draw(st.text(max_size=20))))
        else:
            fields[index] = (name, draw(st.text(max_size=40)))
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in fields).encode()


def storable_everywhere(item: ChannelEvent | InteractionUpdate) -> None:
    for name in item.__slots__:
        value = getattr(item, name)
        if isinstance(value, str):
            assert problem(value) is None, name


def test_every_webhook_has_captured_payloads_to_mutate() -> None:
    assert all(PAYLOADS.values()), {k: len(v) for k, v in PAYLOADS.items()}


def _check(event: str, body: bytes) -> None:
    (webhook,) = [w for w in WEBHOOKS if w.event == event]
    form = WebhookForm.from_body(body)
    try:
        item = webhook.parse(form, RECEIVED_AT)
    except MalformedWebhook as exc:
        refused = exc
    else:
        storable_everywhere(storable(item))
        return
    assert refused.field  # a refusal names the field


@SETTINGS
@given(st.data())
def test_every_parser_refuses_or_parses_any_mutation_of_a_real_payload(data: st.DataObject) -> None:
    event = data.draw(st.sampled_from(sorted(PAYLOADS)))
    _check(event, data.draw(mutated_body(event)))


@SETTINGS
@given(st.sampled_from([w.event for w in WEBHOOKS]), st.binary(max_size=300))
def test_the_form_decoder_and_the_parsers_take_any_bytes(event: str, body: bytes) -> None:
    _check(event, body)
