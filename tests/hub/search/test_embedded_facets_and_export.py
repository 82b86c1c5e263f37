"""Facets and the export on the embedded backends (SQLite FTS5, PostgreSQL full text): counted by the database."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.events import Channel, DeliveryStatus, Direction, InteractionKind
from hub.models import Agent, Interaction, Role
from hub.runtime import Runtime
from tests.conftest import AppFactory, make_agent
from tests.hub.console import log_in
from tests.hub.events import event
from tests.hub.search.conftest import put


def test_facets_count_every_match_on_the_database(runtime: Runtime, client: FlaskClient, auth: dict[str, str]) -> None:
    items = [
        event([Channel.SMS, Channel.EMAIL, Channel.CHAT][n % 3], f"c{n % 4}@example.com", hours=n * 20,
              direction=Direction.OUTBOUND if n % 4 == 0 else Direction.INBOUND, text=f"refund request {n}")
        for n in range(30)
    ] + [event(Channel.SMS, "+14155550142", hours=1, text="unrelated")]  # fmt: skip
    put(runtime, *items)
    matching = items[:30]
    body = client.get("/api/search?q=refund&facets=1&interval=week&limit=5", headers=auth).json
    facets = body["facets"]
    assert body["total"] == facets["total"] == 30
    assert facets["channel"] == dict(Counter(e.channel.value for e in matching))
    assert facets["direction"] == dict(Counter(e.direction.value for e in matching))
    weeks = Counter(e.occurred_at.date().isocalendar()[:2] for e in matching)
    assert [b["count"] for b in facets["histogram"]["buckets"]] == [weeks[w] for w in sorted(weeks)]
    starts = [b["start"] for b in facets["histogram"]["buckets"]]
    assert all(s.endswith("T00:00:00Z") for s in starts)
    days = client.get("/api/search?q=refund&facets=1&interval=day&channel=sms", headers=auth).json["facets"]
    assert sum(b["count"] for b in days["histogram"]["buckets"]) == 10


def _every_hit(client: FlaskClient, auth: dict[str, str], query: str) -> list[int]:
    """The ids of every hit of ``query``, following the cursor (3 a page, to cross pages)."""
    ids: list[int] = []
    cursor = ""
    while True:
        body = client.get(f"/api/search?{query}&limit=3&cursor={cursor}", headers=auth).json
        ids += [h["interaction_id"] for h in body["hits"]]
        if not body["next_cursor"]:
            return ids
        cursor = body["next_cursor"]


def test_kind_status_and_agent_filters_agree_with_reading_every_row(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    make_agent(runtime, Role.AGENT, email="writer@corridor.test")
    with runtime.database.read() as session:
        writer = session.scalars(select(Agent.id).where(Agent.email == "writer@corridor.test")).one()
    statuses = [DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, None]
    put(runtime, *[
        event(Channel.SMS, f"+1415555{n % 5:04d}", hours=n, text=f"refund {n}",
              direction=Direction.OUTBOUND if n % 2 else Direction.INBOUND,
              kind=InteractionKind.NOTE if n % 7 == 0 else InteractionKind.MESSAGE,
              author_id=writer if n % 3 == 0 else None,
              **({"delivery_status": statuses[(n // 2) % 4]} if n % 2 and statuses[(n // 2) % 4] else {}))
        for n in range(40)
    ])  # fmt: skip
    with runtime.database.read() as session:
        rows = session.execute(
            select(Interaction.id, Interaction.kind, Interaction.status, Interaction.author_id)
        ).all()
    cases = {
        "kind=note": lambda r: r.kind == "note",
        "status=delivered,failed": lambda r: r.status in ("delivered", "failed"),
        "status=none": lambda r: r.status is None,
        f"agent={writer}": lambda r: r.author_id == writer,
        f"agent={writer}&kind=message&status=sent": lambda r: (
            r.author_id == writer and r.kind == "message" and r.status == "sent"
        ),
    }
    for filters, wanted in cases.items():
        expected = sorted((r.id for r in rows if wanted(r)), reverse=True)  # ids follow time here
        assert expected, filters
        assert _every_hit(client, auth, f"q=refund&{filters}") == expected, filters
        total = client.get(f"/api/search?q=refund&facets=1&{filters}", headers=auth).json["total"]
        assert total == len(expected), filters


def test_phone_numbers_and_addresses_as_typed_find_their_interactions(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    maria, other = "+14155550142", "+14155550199"
    put(
        runtime,
        event(Channel.SMS, maria, hours=1, text="Where is my parcel?"),
        event(Channel.VOICE, maria, hours=2, kind=InteractionKind.CALL, text=""),
        event(Channel.SMS, maria, hours=3, direction=Direction.OUTBOUND, text="It left the depot today."),
        event(Channel.SMS, other, hours=4, text="Wrong parcel arrived"),
        event(Channel.EMAIL, "Maria.Keller@Example.com", hours=5, subject="Parcel", text="Any news on the parcel?"),
        event(Channel.EMAIL, "ana.lima@example.org", hours=6, text="Please call me on 415 555 0177 about it"),
    )
    with runtime.database.read() as session:
        by_text = dict(session.execute(select(Interaction.text, Interaction.id)).all())
    sms_in, sms_out = by_text["Where is my parcel?"], by_text["It left the depot today."]
    call = by_text[""]

    def found(q: str) -> list[int]:
        return [
            h["interaction_id"] for h in client.get("/api/search", query_string={"q": q}, headers=auth).json["hits"]
        ]

    # The number as people write it: the calls and texts from and to it, not the other number's.
    for typed in ("(415) 555-0142", "+1 415-555-0142", "001 415 555 0142", "415.555.0142"):
        assert found(typed) == [sms_out, call, sms_in], typed
    assert found("(415) 555-0142 parcel") == [sms_in]  # with words: both required
    assert set(found("+1 415 555")) == {sms_out, call, sms_in, by_text["Wrong parcel arrived"]}  # a number's start
    email = by_text["Any news on the parcel?"]
    for typed in ("maria.keller@example.com", "MARIA.KELLER@EXAMPLE.COM", "maria.keller@", "@example.com"):
        assert found(typed) == [email], typed
    # A number or address that names no customer is looked for in the text, as a phrase.
    assert found("nobody@example.net") == []
    assert found("(415) 555-0177") == [by_text["Please call me on 415 555 0177 about it"]]
    body = client.get("/api/search", query_string={"q": "(415) 555-0142", "facets": "1"}, headers=auth).json
    assert body["facets"]["channel"] == {"sms": 2, "voice": 1}
    export = client.get("/api/search/export", query_string={"q": "+1 415 555 0142"},
                        headers={"Authorization": f"Bearer {make_agent(runtime, Role.SUPERVISOR)}"})  # fmt: skip
    assert [int(r["interaction_id"]) for r in csv.DictReader(io.StringIO(export.get_data(as_text=True)))] == [
        sms_out, call, sms_in
    ]  # fmt: skip


def test_the_export_pages_through_every_match(runtime: Runtime, client: FlaskClient) -> None:
    put(runtime, *[event(Channel.SMS, "+14155550142", hours=n, text=f"parcel {n}") for n in range(230)])
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.SUPERVISOR)}"}
    response = client.get("/api/search/export?q=parcel", headers=headers)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["text"] for r in rows] == [f"parcel {n}" for n in reversed(range(230))]  # past one page of 100


def _page_counts(html: str, section: str) -> dict[str, int]:
    """The counts a facet section of the search page shows, by label."""
    block = re.search(rf'<section class="facet" aria-label="{section}">(.*?)</section>', html, re.S)
    assert block, section
    found = re.findall(r'<span class="label">([^<]*)</span><span class="n">([\d,]+)</span>', block.group(1))
    return {label: int(n.replace(",", "")) for label, n in found}


def test_the_page_counts_facets_of_the_newest_matches_when_they_are_many_and_all_when_asked(
    make_app: AppFactory,
) -> None:
    app = make_app(search={"facet_sample": 100})
    runtime: Runtime = app.extensions["corridor"]
    channels = [Channel.SMS, Channel.EMAIL, Channel.CHAT]
    # The oldest 60 matches are emails only: a sample of the newest 100 sees 40 of them.
    items = [event(Channel.EMAIL, f"c{n % 4}@example.com", hours=n, text=f"order {n}") for n in range(60)] + [
        event(channels[n % 3], f"c{n % 4}@example.com", hours=60 + n, text=f"order {n}") for n in range(90)
    ]
    put(runtime, *items, event(Channel.SMS, "+14155550142", hours=1, text="unrelated"))
    make_agent(runtime, Role.SUPERVISOR, "sup@corridor.test", password="a long enough password")
    client = app.test_client()
    assert log_in(client, "sup@corridor.test", "a long enough password").status_code == 302

    newest = sorted(items, key=lambda e: e.occurred_at, reverse=True)[:100]
    page = client.get("/search?q=order").get_data(as_text=True)
    assert "More than <strong>100</strong> interactions match" in page
    assert "Counts of the newest 100 matches." in page
    assert _page_counts(page, "Channel") == {
        {"email": "Email", "sms": "SMS", "chat": "Chat"}[c]: n
        for c, n in Counter(e.channel.value for e in newest).items()
    }
    every = client.get("/search?q=order&facets=all").get_data(as_text=True)
    assert "<strong>150</strong> interactions match" in every
    assert "Counts of the newest" not in every
    assert _page_counts(every, "Channel") == {"Email": 90, "SMS": 30, "Chat": 30}
    # Fewer matches than the sample: every one is counted, as the API counts them.
    narrow = client.get("/search?q=order&channel=sms").get_data(as_text=True)
    assert "<strong>30</strong> interactions match" in narrow
    assert _page_counts(narrow, "Direction") == {"From customers": 30}
