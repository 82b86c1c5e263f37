"""POST /api/conversations/<id>/replies: a body the hub cannot use gets a 400 naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from hub.ingest import ingest
from hub.runtime import Runtime
from tests.hub.events import event


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"channel": "fax", "text": "Your replacement ships today."}, "channel", "must be one of"),
        ({"channel": "email"}, "text", "is required"),
        ({"channel": "email", "text": None}, "text", "is required"),
        ({"channel": "email", "text": 5}, "text", "must be a string"),
        ({"channel": "email", "text": "Ships today.", "subject": 7}, "subject", "must be a string"),
    ],
)
def test_a_reply_body_the_hub_cannot_use_is_a_400_naming_the_field(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str], body: dict[str, Any], field: str, message: str
) -> None:
    with runtime.database.write() as session:
        conversation_id = ingest(session, event(), source="test").conversation_id
    answer = client.post(f"/api/conversations/{conversation_id}/replies", json=body, headers=auth)
    assert answer.status_code == 400
    assert answer.json["error"]["field"] == field
    assert answer.json["error"]["message"].startswith(message)
