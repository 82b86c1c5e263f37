"""Poison payloads: a NUL or a lone surrogate is decided at the door, never accepted and then lost.

Before, ``"text": "a\\ud800b"`` (or ``\\u0000`` on PostgreSQL) got a 202 and
then failed processing on every retry. Now each door either stores it with the
character replaced and a defect naming the field, or refuses it with a 400
naming the field, before it answers. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from hub.events import ChannelEvent, Party
from hub.storable import check_storable, repair, storable
from tests.hub.events import event, event_json

POISONS = {"lone surrogate": "a\ud800b", "NUL": "a\x00b"}


def post_raw(client: FlaskClient, body: dict[str, Any], auth: dict[str, str]) -> Any:
    # ensure_ascii: the surrogate travels as the \ud800 escape a client sends.
    return client.post(
        "/api/events", data=json.dumps(body, ensure_ascii=True), content_type="application/json", headers=auth
    )


def on_timeline(client: FlaskClient, auth: dict[str, str], response: Any) -> dict[str, Any]:
    """The interaction an accepted event became, once the journal processor has run."""
    assert response.status_code == 202, response.json
    client.application.extensions["corridor"].journal.drain()
    outcome = client.get(response.headers["Location"], headers=auth).json
    assert outcome["status"] == "processed", outcome
    timeline = client.get(f"/api/customers/{outcome['customer_id']}/timeline", headers=auth).json
    (interaction,) = [i for i in timeline["interactions"] if i["id"] == outcome["interaction_id"]]
    result: dict[str, Any] = interaction
    return result


@pytest.mark.parametrize("poison", POISONS.values(), ids=POISONS.keys())
@pytest.mark.parametrize(
    ("field", "body", "read"),
    [
        ("text", {"text": "{p}"}, lambda i: i["text"]),
        ("subject", {"subject": "{p}"}, lambda i: i["subject"]),
        ("html", {"html": "<p>{p}</p>"}, lambda i: i["html"]),
        ("from.name", {"from": {"address": "ana.lima@example.com", "name": "{p}"}}, lambda i: None),
        (
            "attachments[0].filename",
            {"attachments": [{"filename": "{p}.txt", "content_base64": base64.b64encode(b"hi").decode()}]},
            lambda i: i["attachments"][0]["filename"],
        ),
        ("metadata.note", {"metadata": {"note": "{p}"}}, lambda i: None),
    ],
)
def test_prose_with_a_poison_character_is_stored_with_it_replaced_and_a_defect_naming_the_field(
    client: FlaskClient, auth: dict[str, str], poison: str, field: str, body: dict[str, Any], read: Any
) -> None:
    filled = json.loads(json.dumps(body).replace("{p}", json.dumps(poison)[1:-1]))
    interaction = on_timeline(client, auth, post_raw(client, event_json(**filled), auth))

    assert any(d.startswith(f"{field}:") for d in interaction["defects"]), interaction["defects"]
    shown = read(interaction)
    if shown is not None:
        assert "a\ufffdb" in shown


@pytest.mark.parametrize("poison", POISONS.values(), ids=POISONS.keys())
@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("external_id", {"external_id": "{p}"}),
        ("session", {"channel": "chat", "session": "{p}", "from": "visitor-1"}),
        ("thread_refs[1]", {"thread_refs": ["<ok@x>", "{p}"]}),
        ("from.address", {"from": {"address": "ana{p}@example.com"}}),
        ("attachments[0].url", {"attachments": [{"filename": "f.txt", "url": "https://x.example/{p}"}]}),
    ],
)
def test_an_id_reference_or_address_with_a_poison_character_is_refused_naming_the_field(
    client: FlaskClient, auth: dict[str, str], poison: str, field: str, body: dict[str, Any]
) -> None:
    # Replaced, an id would name something else (and two ids could become one).
    filled = json.loads(json.dumps(body).replace("{p}", json.dumps(poison)[1:-1]))
    response = post_raw(client, event_json(**filled), auth)

    assert response.status_code == 400, response.json
    assert response.json["error"]["field"] == field


@pytest.mark.parametrize("poison", ["a%00b", "a%00"])
@pytest.mark.parametrize(
    ("path", "arg"),
    [("/api/customers?email={}", "email"), ("/api/customers?name={}", "name"), ("/api/search?q={}", "q")],
)
def test_a_lookup_with_a_nul_is_a_400_naming_the_argument(
    client: FlaskClient, auth: dict[str, str], poison: str, path: str, arg: str
) -> None:
    response = client.get(path.format(poison), headers=auth)
    assert response.status_code == 400, response.json
    assert response.json["error"]["field"] == arg


def test_a_json_body_with_a_poison_character_is_a_400_naming_the_field(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    customer_id = on_timeline(client, auth, post_raw(client, event_json(), auth))["customer_id"]
    response = client.post(
        f"/api/customers/{customer_id}/identities",
        data='{"kind": "email", "value": "x\\u0000@example.com"}',
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 400
    assert response.json["error"]["field"] == "value"


def test_storable_leaves_clean_events_alone_and_repairs_every_string() -> None:
    clean = event(text="fine")
    assert storable(clean) is clean
    dirty = event(text="a\x00b", subject="\udc80", name="N\x00")
    dirty = ChannelEvent(**{**{f: getattr(dirty, f) for f in dirty.__slots__}, "thread_refs": ("r\ud800",)})
    fixed = storable(dirty)
    assert (fixed.text, fixed.subject, fixed.thread_refs) == ("a\ufffdb", "\ufffd", ("r\ufffd",))
    assert fixed.sender == Party(address="ana.lima@example.com", name="N\ufffd")
    assert {d.split(":")[0] for d in fixed.defects} == {"text", "subject", "from.name", "thread_refs[0]"}
    # Deterministic: a retry of the same payload dedupes against the first.
    assert storable(dirty) == fixed
    assert repair("ok") == "ok"
    check_storable({"a": [1, "ok", {"b": None}]}, "body")
