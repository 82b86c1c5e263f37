"""The event shapes the hostile probe sent (issue #12), kept as files: each says what the door must answer.

``fixtures/api_events/*.json`` holds ``{"about", "event", "expect"}``: the
event's fields over a valid email event (``event_json``), sent as the bytes a
JSON client sends (lone surrogates and NULs as ``\\u`` escapes), and either
``{"status": 400, "field": ...}`` (refused before the 2xx, naming the field)
or ``{"status": 202, "defect": ..., "shown": {...}}`` (on the timeline, the
character replaced, with a defect naming the field). A ``*.raw.json`` file is
a whole request body that no JSON reader here may even parse (nested 1,000
deep), refused as ``body``. A new shape found in the wild is a new file. Both
databases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.hub.events import event_json
from tests.hub.test_storable import on_timeline

FIXTURES = Path(__file__).parent / "fixtures" / "api_events"
SHAPES = sorted(p for p in FIXTURES.glob("*.json") if not p.name.endswith(".raw.json"))
RAW = sorted(FIXTURES.glob("*.raw.json"))


def test_the_shapes_are_there() -> None:
    assert len(SHAPES) >= 10
    assert RAW


@pytest.mark.parametrize("path", RAW, ids=[p.name.removesuffix(".raw.json") for p in RAW])
def test_each_raw_body_is_refused_as_the_body(client: FlaskClient, auth: dict[str, str], path: Path) -> None:
    response = client.post("/api/events", data=path.read_bytes(), content_type="application/json", headers=auth)
    assert response.status_code == 400, response.get_json(silent=True)
    assert response.json["error"]["field"] == "body"


@pytest.mark.parametrize("path", SHAPES, ids=[p.stem for p in SHAPES])
def test_each_shape_is_refused_naming_the_field_or_stored_with_a_defect(
    client: FlaskClient, auth: dict[str, str], path: Path
) -> None:
    shape: dict[str, Any] = json.loads(path.read_text(encoding="ascii"))
    expect = shape["expect"]
    body = json.dumps(event_json(**shape["event"]), ensure_ascii=True)  # \ud800 travels as the escape
    response = client.post("/api/events", data=body, content_type="application/json", headers=auth)

    assert response.status_code == expect["status"], (shape["about"], response.get_json(silent=True))
    if expect["status"] == 400:
        assert response.json["error"]["status"] == 400
        if "field" in expect:
            assert response.json["error"]["field"] == expect["field"], shape["about"]
        return
    interaction = on_timeline(client, auth, response)
    assert any(d.startswith(f"{expect['defect']}:") for d in interaction["defects"]), interaction["defects"]
    for name, shown in expect.get("shown", {}).items():
        assert interaction[name] == shown, shape["about"]
