"""The supervisor search on the engine, through the API: facets and pages that agree with the database,
exports of every match, and an engine that goes away without taking ingest with it."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from hub.events import Channel, Direction
from hub.ingest import ingest_many
from hub.journal import process_received
from hub.models import AuditRecord, Interaction, Role
from hub.runtime import Runtime
from hub.search.engine import EngineBackend, EngineRequestError, EngineUnavailable
from hub.search.indexer import drain_once
from hub.search.lifecycle import check
from hub.search.opensearch import OpenSearchClient
from hub.web.api import search as search_api
from tests.conftest import make_agent
from tests.hub.events import event
from tests.hub.search.conftest import put, settle
from tests.services import free_port

CHANNELS = [Channel.SMS, Channel.EMAIL, Channel.WHATSAPP, Channel.CHAT]


def fill(runtime: Runtime, count: int, word: str = "parcel") -> None:
    """``count`` interactions with ``word`` over channels, directions and about two months, plus some without it."""
    items = []
    for n in range(count):
        channel = CHANNELS[n % len(CHANNELS)]
        direction = Direction.OUTBOUND if n % 3 == 0 else Direction.INBOUND
        sender = f"c{n % 50}@example.com" if channel in (Channel.EMAIL, Channel.CHAT) else f"+1415555{n % 50:04d}"
        items.append(event(channel, sender, hours=n * 0.13, direction=direction, text=f"{word} number {n}"))
        if n % 10 == 0:
            items.append(event(channel, sender, hours=n * 0.13 + 0.01, text="something else entirely"))
    for start in range(0, len(items), 1000):
        with runtime.database.write() as session:
            ingest_many(session, items[start : start + 1000], source="test")
    settle(runtime)


def truth(runtime: Runtime, word: str) -> list[Interaction]:
    """The matches as the database has them, newest first."""
    with runtime.database.read() as session:
        return list(
            session.scalars(
                select(Interaction)
                .where(Interaction.text.like(f"{word} %"))
                .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
            )
        )


def supervisor(runtime: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_agent(runtime, Role.SUPERVISOR)}"}


def test_facets_and_pages_past_the_result_window_agree_with_the_database(make_engine_app: Any) -> None:
    """Pages continue past the engine's result window (10,000 by default; 500 here, so the test stays small)."""
    app: Flask = make_engine_app(search={"batch_size": 1000})
    runtime: Runtime = app.extensions["corridor"]
    engine = runtime.search
    assert isinstance(engine, EngineBackend)
    [index] = engine.client.alias_targets(engine.alias)
    engine.client.put_settings(index, {"max_result_window": 500})
    fill(runtime, 1_050)
    expected = truth(runtime, "parcel")
    client = app.test_client()
    headers = supervisor(runtime)
    with pytest.raises(EngineRequestError, match="window"):  # the wall from/size paging would hit
        engine.client.search(engine.alias, {"query": {"match_all": {}}, "from": 500, "size": 10})

    first = client.get("/api/search?q=parcel&facets=1&interval=week&limit=100", headers=headers)
    assert first.status_code == 200, first.json
    facets = first.json["facets"]
    assert first.json["total"] == facets["total"] == len(expected) == 1_050
    assert facets["channel"] == dict(Counter(str(i.channel) for i in expected))
    assert facets["direction"] == dict(Counter(str(i.direction) for i in expected))
    weeks = Counter(i.occurred_at.date().isocalendar()[:2] for i in expected)
    assert [b["count"] for b in facets["histogram"]["buckets"]] == [weeks[w] for w in sorted(weeks)]
    months = client.get("/api/search?q=parcel&facets=1&interval=month&limit=1", headers=headers).json["facets"]
    assert sum(b["count"] for b in months["histogram"]["buckets"]) == 1_050

    seen: list[int] = [h["interaction_id"] for h in first.json["hits"]]
    cursor = first.json["next_cursor"]
    while cursor:
        page = client.get(f"/api/search?q=parcel&limit=100&cursor={cursor}", headers=headers).json
        seen.extend(h["interaction_id"] for h in page["hits"])
        cursor = page["next_cursor"]
    assert len(seen) > 500
    assert seen == [i.id for i in expected]  # every match once, in the database's order

    sms_inbound = client.get("/api/search?q=parcel&channel=sms&direction=inbound&facets=1", headers=headers).json
    assert sms_inbound["total"] == sum(1 for i in expected if i.channel == "sms" and i.direction == "inbound")


def test_the_export_holds_every_match_and_is_audited(
    engine_app: Flask, engine_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_api, "EXPORT_PAGE", 40)
    fill(engine_runtime, 130)
    headers = supervisor(engine_runtime)
    response = engine_app.test_client().get("/api/search/export?q=parcel&channel=sms,email", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    expected = [i for i in truth(engine_runtime, "parcel") if i.channel in ("sms", "email")]
    assert [int(r["interaction_id"]) for r in rows] == [i.id for i in expected]
    assert len(rows) > 40
    assert rows[0]["text"] == expected[0].text
    with engine_runtime.database.read() as session:
        [record] = session.scalars(select(AuditRecord).where(AuditRecord.action == "search.export"))
    assert record.actor_id is not None
    assert record.details["q"] == "parcel"
    assert record.details["rows"] == len(rows)
    assert record.details["complete"] is True
    agent = {"Authorization": f"Bearer {make_agent(engine_runtime, Role.AGENT, 'agent@corridor.test')}"}
    assert engine_app.test_client().get("/api/search/export?q=parcel", headers=agent).status_code == 403


def test_an_engine_that_goes_away_stops_neither_ingest_nor_the_timeline(make_engine_app: Any) -> None:
    # Retried at every search (no pause after a failure): what the search answers meanwhile, and how soon the
    # engine is asked again, is tests/hub/search/test_engine_fallback.py's.
    engine_app: Flask = make_engine_app(search={"retry_seconds": 0})
    engine_runtime: Runtime = engine_app.extensions["corridor"]
    engine = engine_runtime.search
    assert isinstance(engine, EngineBackend)
    client = engine_app.test_client()
    headers = supervisor(engine_runtime)
    [before] = put(engine_runtime, event(Channel.SMS, "+14155550142", hours=0, text="before the outage"))
    settle(engine_runtime)
    live = engine.client
    # Nothing listens on this port: every request is refused, as by a stopped engine.
    engine.client = OpenSearchClient.from_settings(
        replace(engine.settings, url=f"http://127.0.0.1:{free_port()}", request_timeout=1.0)
    )
    body = {"channel": "sms", "external_id": "SM-away", "occurred_at": "2026-11-02T10:00:00Z",
            "direction": "inbound", "from": {"address": "+14155550142"}, "text": "during the outage"}  # fmt: skip
    assert client.post("/api/events", json=body, headers=headers).status_code == 202
    assert process_received(engine_runtime.database, engine_runtime.registry) == 1
    timeline = client.get(f"/api/customers/{before.customer_id}/timeline", headers=headers).json
    assert [i["text"] for i in timeline["interactions"]] == ["during the outage", "before the outage"]
    answer = client.get("/api/search?q=outage", headers=headers)
    if engine_runtime.database.dialect == "postgresql":  # the database answers meanwhile, and says so
        assert answer.status_code == 200
        assert answer.json["fallback"]["backend"] == "postgres"
    else:  # SQLite has no current text index beside an engine: why there is no answer
        assert answer.status_code == 503
        assert "search engine" in answer.json["error"]["message"]
    with pytest.raises(EngineUnavailable):
        drain_once(engine_runtime.database, engine)
    health = client.get("/api/health").json
    assert health["status"] == "degraded"
    assert health["search"]["engine"] == "unavailable"
    assert health["search"]["pending"] == 1

    engine.client = live
    settle(engine_runtime)
    hits = client.get("/api/search?q=outage", headers=headers).json["hits"]
    assert [h["snippet"] for h in hits] == ["during the <mark>outage</mark>", "before the <mark>outage</mark>"]
    assert client.get("/api/health").json["status"] == "ok"
    assert check(engine_runtime.database, engine).ok


def test_the_search_page_runs_on_the_engine_and_status_none_is_a_filter(
    engine_app: Flask, engine_runtime: Runtime
) -> None:
    from tests.hub.console import log_in

    fill(engine_runtime, 60)
    make_agent(engine_runtime, Role.AGENT, "ana@corridor.test", password="a long enough password")
    client = engine_app.test_client()
    assert log_in(client, "ana@corridor.test", "a long enough password").status_code == 302
    expected = [i for i in truth(engine_runtime, "parcel") if i.channel == "sms"]
    page = client.get("/search?q=parcel&channel=sms").get_data(as_text=True)
    assert f"<strong>{len(expected)}</strong> interactions match" in page
    shown = [int(i) for i in re.findall(r'class="hit [a-z]+" data-interaction="(\d+)"', page)]
    assert shown == [i.id for i in expected][: len(shown)]
    assert len(shown) == min(25, len(expected))
    # "none" is the facet's name for an interaction without a status; as a filter it finds exactly those.
    headers = supervisor(engine_runtime)
    everything = truth(engine_runtime, "parcel")
    body = client.get("/api/search?q=parcel&status=none&facets=1&limit=100", headers=headers).json
    assert body["total"] == sum(1 for i in everything if i.status is None) > 0
    both = client.get("/api/search?q=parcel&status=none,received&facets=1", headers=headers).json
    assert both["total"] == sum(1 for i in everything if i.status in (None, "received"))


def test_the_index_lag_is_a_metric(engine_app: Flask, engine_runtime: Runtime) -> None:
    def scrape() -> dict[str, float]:
        text = engine_app.test_client().get("/metrics").get_data(as_text=True)
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}

    with engine_runtime.database.write() as session:
        ingest_many(session, [event(Channel.SMS, "+14155550142", text=f"parcel {n}") for n in range(3)], source="t")
    waiting = scrape()
    assert waiting["corridor_search_outbox_entries"] == 3  # written, not yet indexed
    assert waiting["corridor_search_index_lag_seconds"] >= 0
    settle(engine_runtime)
    assert scrape()["corridor_search_outbox_entries"] == 0
    assert scrape()["corridor_search_index_lag_seconds"] == 0
