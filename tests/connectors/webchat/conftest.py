"""A Corridor with the web chat enabled for a site "shop" on https://shop.example."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connectors.webchat.visitors import identity_signature
from tests.conftest import AppFactory

SITE_ORIGIN = "https://shop.example"
SITE_SECRET = "shop-backend-secret"


def shop_site(**overrides: Any) -> dict[str, Any]:
    """The test site's table in [webchat] sites."""
    return {
        "name": "shop",
        "title": "Shop support",
        "origins": [SITE_ORIGIN],
        "secret": SITE_SECRET,
        "prechat": {"name": "optional", "email": "optional"},
        **overrides,
    }


@pytest.fixture
def make_chat_app(make_app: AppFactory) -> Any:
    def factory(*sites: dict[str, Any], **sections: Any) -> Flask:
        # No agent has a console open in these tests: only the opening hours decide, unless a test says.
        webchat = {"sites": list(sites) or [shop_site()], "agents_online_seconds": 0, **sections.pop("webchat", {})}
        app = {"connectors": ["webchat", *sections.pop("connectors", [])], **sections.pop("app", {})}
        return make_app(app=app, webchat=webchat, **sections)

    return factory


@pytest.fixture
def app(make_chat_app: Any) -> Flask:
    return make_chat_app()


def start(client: FlaskClient, site: str = "shop", token: str | None = None, origin: str = SITE_ORIGIN) -> Any:
    """POST session: a new visitor (or ``token``'s); the answer's JSON."""
    body = {"visitor_token": token} if token else {}
    answer = client.post(f"/chat/api/{site}/session", json=body, headers={"Origin": origin})
    assert answer.status_code == 200, answer.json
    return answer.json


def say(client: FlaskClient, token: str, text: str, client_id: str, site: str = "shop") -> Any:
    return client.post(
        f"/chat/api/{site}/messages",
        json={"visitor_token": token, "client_id": client_id, "text": text},
        headers={"Origin": SITE_ORIGIN},
    )


def signed(value: str) -> str:
    return identity_signature(SITE_SECRET, value)
