"""The checks every visitor message passes, as cheap as they can be and as exact as before.

A visitor's token is verified once per process and remembered, yet it still
expires on time and is good only for its own site and secret; the origin
check and the answer's headers hold for every call.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

from connectors.webchat.visitors import Identity, VisitorRefused, issue_visitor_token, read_visitor_token
from tests.connectors.webchat.conftest import SITE_ORIGIN, say, start

DAYS = 30


def test_a_token_is_verified_once_and_still_expires_on_time(monkeypatch: pytest.MonkeyPatch) -> None:
    verifications: list[str] = []
    real_loads = URLSafeTimedSerializer.loads

    def counting_loads(self: URLSafeTimedSerializer, token: str, **options: Any) -> Any:
        verifications.append(token)
        return real_loads(self, token, **options)

    monkeypatch.setattr(URLSafeTimedSerializer, "loads", counting_loads)
    identity = Identity(name="Ana", email="ana@example.com")
    token = issue_visitor_token("secret-once", "shop", "visitor-1", identity)
    for _ in range(5):
        assert read_visitor_token("secret-once", "shop", token, DAYS) == ("visitor-1", identity)
    assert verifications == [token]  # the signature was checked for the first message only

    # Remembered, and still refused the moment it is too old (or from the future).
    signed = time.time()
    for moved in (DAYS * 86400 + 2, -5):
        monkeypatch.setattr(time, "time", lambda moved=moved: signed + moved)
        with pytest.raises(VisitorRefused, match="expired") as refused:
            read_visitor_token("secret-once", "shop", token, DAYS)
        assert refused.value.field == "visitor_token"
    monkeypatch.setattr(time, "time", lambda: signed + DAYS * 86400 - 5)
    assert read_visitor_token("secret-once", "shop", token, DAYS)[0] == "visitor-1"


def test_a_remembered_token_is_good_only_for_its_site_and_secret_and_a_changed_one_is_checked_again() -> None:
    token = issue_visitor_token("secret-sites", "shop", "visitor-2")
    assert read_visitor_token("secret-sites", "shop", token, DAYS)[0] == "visitor-2"
    with pytest.raises(VisitorRefused, match="site 'blog'"):
        read_visitor_token("secret-sites", "blog", token, DAYS)
    with pytest.raises(VisitorRefused):  # the secret was rotated
        read_visitor_token("rotated", "shop", token, DAYS)
    for _ in range(2):  # a refusal is never remembered as a success
        with pytest.raises(VisitorRefused):
            read_visitor_token("secret-sites", "shop", token[:-2] + "xx", DAYS)


def test_every_message_is_checked_for_its_origin_and_answered_as_json_that_no_page_can_run(
    client: FlaskClient,
) -> None:
    token = start(client)["visitor_token"]
    answer = say(client, token, "Where is my parcel?", "m-1")
    assert answer.status_code == 202
    assert answer.headers["Access-Control-Allow-Origin"] == SITE_ORIGIN
    assert answer.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-store"

    # The panel itself calls from Corridor's own origin: allowed, and no CORS header needed.
    own = client.post(
        "/chat/api/shop/messages",
        json={"visitor_token": token, "client_id": "m-2", "text": "From the frame"},
        headers={"Origin": "http://localhost"},
    )
    assert own.status_code == 202
    assert "Access-Control-Allow-Origin" not in own.headers
    for origin in ("https://evil.example", "https://shop.example.evil.example", "http://shop.example"):
        refused = client.post(
            "/chat/api/shop/messages",
            json={"visitor_token": token, "client_id": "m-3", "text": "hi"},
            headers={"Origin": origin},
        )
        assert refused.status_code == 403, origin
        assert refused.json["error"]["field"] == "Origin"
        assert "Access-Control-Allow-Origin" not in refused.headers
