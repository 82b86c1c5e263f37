"""The console's customer list: finding a customer by what an agent types into its search box."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from hub.events import Channel, IdentityKind
from hub.ingest import ingest_many
from hub.models import Role
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.hub.console import log_in
from tests.hub.events import event

PASSWORD = "list-password"


@pytest.fixture
def console(runtime: Runtime, client: FlaskClient) -> FlaskClient:
    """The test client logged in to the console as an agent, with three customers to find."""
    with runtime.database.write() as session:
        ingest_many(
            session,
            [
                event(Channel.EMAIL, "ana.lima@example.com", name="Ana Lima"),
                event(Channel.SMS, "+14155550142", name="Bo Chen", sender_kind=IdentityKind.PHONE),
                event(Channel.EMAIL, "sales_team@example.org", name="100% Kettles Ltd"),
            ],
            source="test",
        )
    make_agent(runtime, Role.AGENT, email="agent@corridor.test", password=PASSWORD)
    answer = log_in(client, "agent@corridor.test", PASSWORD)
    assert answer.status_code == 302
    return client


def found(console: FlaskClient, q: str) -> list[str]:
    """The names the customer list shows for the search ``q``."""
    page = console.get("/customers", query_string={"q": q})
    assert page.status_code == 200
    name_cell = r'<td class="name"><a href="/customers/\d+">(?:<span[^>]*>[^<]*</span>)?([^<]+)</a>'
    return re.findall(name_cell, page.get_data(as_text=True))


@pytest.mark.parametrize(
    ("q", "names"),
    [
        ("lima", ["Ana Lima"]),
        ("ana.lima@", ["Ana Lima"]),
        # Phone identities are E.164; people type numbers their own way.
        ("+14155550142", ["Bo Chen"]),
        ("(415) 555-0142", ["Bo Chen"]),
        ("415 555 0142", ["Bo Chen"]),
        ("5550142", ["Bo Chen"]),
        # % and _ are what the agent typed, not wildcards.
        ("%", ["100% Kettles Ltd"]),
        ("_", ["100% Kettles Ltd"]),
        ("sales_t", ["100% Kettles Ltd"]),
        ("a_a", []),
        ("100%", ["100% Kettles Ltd"]),
        ("\\", []),
    ],
)
def test_the_search_box_finds_what_the_agent_typed(console: FlaskClient, q: str, names: list[str]) -> None:
    assert found(console, q) == names
