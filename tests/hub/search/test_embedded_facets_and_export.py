"""Facets and the export on the embedded backends (SQLite FTS5, PostgreSQL full text): counted by the database."""

from __future__ import annotations

import csv
import io
from collections import Counter

from flask.testing import FlaskClient

from hub.events import Channel, Direction
from hub.models import Role
from hub.runtime import Runtime
from tests.conftest import make_agent
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
    # What only an engine can filter by is a 400 naming the field, not a silent no-op.
    answer = client.get("/api/search?q=refund&status=delivered", headers=auth)
    assert answer.status_code == 400
    assert answer.json["error"]["field"] == "status"


def test_the_export_pages_through_every_match(runtime: Runtime, client: FlaskClient) -> None:
    put(runtime, *[event(Channel.SMS, "+14155550142", hours=n, text=f"parcel {n}") for n in range(230)])
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.SUPERVISOR)}"}
    response = client.get("/api/search/export?q=parcel", headers=headers)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["text"] for r in rows] == [f"parcel {n}" for n in reversed(range(230))]  # past one page of 100
