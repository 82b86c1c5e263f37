"""The search page's rules, through the test client: saved searches are one's own, bad input says why, a hit
opens its conversation at the interaction however far down the story it is."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.events import Channel
from hub.models import Interaction, Role, SavedSearch
from hub.runtime import Runtime
from hub.timeline import cursor_showing, customer_timeline
from tests.conftest import make_agent
from tests.hub.console import form_token, log_in
from tests.hub.events import event, put

PASSWORD = "a long enough password"


@pytest.fixture
def agent_client(runtime: Runtime, client: FlaskClient) -> FlaskClient:
    make_agent(runtime, Role.AGENT, email="ana@corridor.test", password=PASSWORD)
    assert log_in(client, "ana@corridor.test", PASSWORD).status_code == 302
    return client


def _save(client: FlaskClient, name: str, arguments: str) -> str:
    token = form_token(client, "/search?" + arguments)
    answer = client.post("/search/saved", data={"name": name, "arguments": arguments, "csrf_token": token})
    assert answer.status_code == 302
    return client.get(answer.headers["Location"]).get_data(as_text=True)


def test_saved_searches_are_the_agents_own(runtime: Runtime, agent_client: FlaskClient) -> None:
    put(runtime, event(Channel.SMS, "+14155550142", text="parcel late"))
    page = _save(agent_client, "Late parcels", "q=parcel&channel=sms&cursor=abc&evil=1")
    assert "Search saved as “Late parcels”" in page
    with runtime.database.read() as db:
        [saved] = db.scalars(select(SavedSearch)).all()
    assert saved.arguments == "q=parcel&channel=sms"  # what makes the search, no cursor, nothing unknown
    assert "Search saved" not in _save(agent_client, "Late parcels", "q=parcel+late")  # the same name: replaced
    with runtime.database.read() as db:
        assert [s.arguments for s in db.scalars(select(SavedSearch))] == ["q=parcel+late"]
    assert "give the search a name" in _save(agent_client, "  ", "q=parcel")
    assert "no search to save" in _save(agent_client, "Empty", "channel=sms")

    # Another agent neither sees it nor deletes it.
    agent_client.post("/logout", data={"csrf_token": form_token(agent_client, "/search")})
    make_agent(runtime, Role.AGENT, email="ben@corridor.test", password=PASSWORD)
    log_in(agent_client, "ben@corridor.test", PASSWORD)
    assert "Late parcels" not in agent_client.get("/search").get_data(as_text=True)
    token = form_token(agent_client, "/search")
    agent_client.post(f"/search/saved/{saved.id}/delete", data={"csrf_token": token})
    with runtime.database.read() as db:
        assert db.scalars(select(SavedSearch.id)).all() == [saved.id]


def test_bad_searches_say_why_on_the_page(runtime: Runtime, agent_client: FlaskClient) -> None:
    for arguments, field in (("q=%22%22", "q"), ("q=x&channel=fax", "channel"), ("q=x&since=yesterday", "since"),
                             ("q=x&preset=5y", "preset"), ("q=x&since=2026-11-02&until=2026-11-01", "since"),
                             ("q=x&cursor=not-ours", "cursor"), ("q=x&customer=%C2%B2", "customer")):  # fmt: skip
        answer = agent_client.get("/search?" + arguments)
        assert answer.status_code == 400, arguments
        assert f"<strong>{field}</strong>" in answer.get_data(as_text=True), arguments
    assert agent_client.get("/search?customer=%C2%B2").status_code == 200  # "²" is a digit to str.isdigit only


def test_a_hit_opens_its_conversation_at_the_interaction(runtime: Runtime, agent_client: FlaskClient) -> None:
    put(runtime, *[event(Channel.SMS, "+14155550142", hours=n, text=f"update {n}") for n in range(120)])
    put(runtime, event(Channel.SMS, "+14155550142", hours=-5, text="the oldest one: a broken hinge"))
    page = agent_client.get("/search?q=hinge").get_data(as_text=True)
    [link] = re.findall(r'class="hit-body" href="([^"]+)"', page)
    with runtime.database.read() as db:
        oldest = db.scalars(select(Interaction.id).where(Interaction.text.contains("hinge"))).one()
    assert link.endswith(f"#interaction-{oldest}")
    opened = agent_client.get(link.replace("&amp;", "&").split("#")[0]).get_data(as_text=True)
    assert f'id="interaction-{oldest}"' in opened  # 120 newer ones, and still on the page opened
    assert "← Newest interactions" in opened
    # Without it, the first page is the newest 50: the hinge is not on it.
    conversation = re.search(r"/conversations/(\d+)", link)
    assert conversation
    assert f'id="interaction-{oldest}"' not in agent_client.get(f"/conversations/{conversation[1]}").get_data(
        as_text=True
    )


def test_the_page_opened_at_a_hit_counts_participants_messages_too(runtime: Runtime) -> None:
    """A colleague's messages are on the customer's story: the page chosen for an older hit must count them."""
    first, *_ = put(
        runtime,
        event(Channel.EMAIL, "leo@example.com", hours=0, external_id="<l1@example.com>", text="hinge broke"),
        event(Channel.EMAIL, "leo@example.com", hours=1, text="any news?"),
        event(Channel.EMAIL, "leo@example.com", hours=2, text="still waiting"),
    )
    put(runtime, *[
        event(Channel.EMAIL, "mia@larkspur.example", hours=3 + n, thread_refs=("<l1@example.com>",), text=f"fwd {n}")
        for n in range(10)
    ])  # fmt: skip
    with runtime.database.read() as session:
        guests = session.scalar(
            select(func.count()).select_from(Interaction).where(Interaction.conversation_id == first.conversation_id)
        )
        assert guests == 13  # the colleague's messages joined Leo's conversation
        cursor = cursor_showing(session, first.customer_id, first.interaction_id, limit=5)
        page = customer_timeline(session, first.customer_id, limit=5, cursor=cursor)
        assert first.interaction_id in [i.id for i in page.interactions]
        # A hit that is a participant's message opens where it is too.
        [mia_first] = session.scalars(select(Interaction.id).where(Interaction.text == "fwd 0"))
        cursor = cursor_showing(session, first.customer_id, mia_first, limit=5)
        page = customer_timeline(session, first.customer_id, limit=5, cursor=cursor)
        assert mia_first in [i.id for i in page.interactions]
