"""A NUL in any field of any signed Twilio webhook: stored with a defect, or refused, never a 2xx then lost.

Twilio's form encoding carries any byte (``Body=a%00b``); PostgreSQL stores no
NUL in text. Each field of each captured webhook gets one, is signed as Twilio
would sign it, and must end as a documented refusal (a 4xx naming the field)
or on the timeline; an acknowledged payload never fails processing.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from flask.testing import FlaskClient

from connectors.twilio import urls
from hub.models import JournalStatus
from hub.runtime import Runtime
from tests.connectors.twilio.samples import FIXTURES, raw
from tests.connectors.twilio.webhook_client import interaction, journal, post

#: The webhook each captured payload is posted to.
PATHS = {
    "call_status": urls.CALL_STATUS,
    "inbound": urls.INBOUND_MESSAGE,
    "incoming_call": urls.INCOMING_CALL,
    "recording": urls.RECORDING_STATUS,
    "status": urls.MESSAGE_STATUS,
    "transcription": urls.TRANSCRIPTION,
}


def path_for(fixture: str) -> str:
    (path,) = [p for prefix, p in PATHS.items() if fixture.startswith(prefix)]
    return path


def with_nul(body: bytes, field: str) -> bytes:
    """``body`` with ``a%00`` put before the value of ``field``, encoded as Twilio encodes."""
    parts = []
    for part in body.split(b"&"):
        name, _, value = part.partition(b"=")
        parts.append(name + b"=a%00" + value if name.decode() == field else part)
    return b"&".join(parts)


def cases() -> list[object]:
    """Every field of every webhook, each once (in the first payload that has it), so the lanes stay quick."""
    seen: set[tuple[str, str]] = set()
    found = []
    for fixture in sorted(FIXTURES.glob("*.txt")):
        for name, _ in parse_qsl(fixture.read_text().strip(), keep_blank_values=True):
            if (path_for(fixture.stem), name) not in seen:
                seen.add((path_for(fixture.stem), name))
                found.append(pytest.param(fixture.stem, name, id=f"{fixture.stem}:{name}"))
    return found


CASES = cases()


@pytest.mark.parametrize(("fixture", "field"), CASES)
def test_a_nul_in_any_field_is_stored_or_refused_before_the_answer(
    client: FlaskClient, runtime: Runtime, fixture: str, field: str
) -> None:
    response = post(client, path_for(fixture), with_nul(raw(f"{fixture}.txt"), field))

    assert response.status_code < 500, response.text
    entries = journal(runtime)
    if response.status_code >= 400:
        assert response.json["error"]["field"], response.json
        return
    assert [e.status for e in entries if e.status == JournalStatus.FAILED] == [], [e.error for e in entries]


def test_an_sms_body_with_a_nul_is_on_the_timeline_with_a_defect(client: FlaskClient, runtime: Runtime) -> None:
    response = post(client, urls.INBOUND_MESSAGE, with_nul(raw("inbound_sms.txt"), "Body"))

    assert response.status_code == 200
    sms = interaction(runtime, "SM6c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f")
    assert sms.text.startswith("a\ufffdHi, my order")
    assert any(d.startswith("text:") for d in sms.defects), sms.defects
