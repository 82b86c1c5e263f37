"""POST /api/events: the generic channel, as a system pushing events sees it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.journal import find_entry, wait_processed
from hub.models import Conversation, Customer, Interaction, JournalEntry, JournalStatus, Role
from hub.runtime import Runtime
from tests.conftest import AppFactory, make_agent
from tests.hub.events import event_json, post_event


def count(runtime: Runtime, model: type) -> int:
    with runtime.database.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_an_event_lands_on_the_customers_timeline(client: FlaskClient, auth: dict[str, str]) -> None:
    outcome = post_event(client, event_json(), auth)
    assert outcome["status"] == "processed"
    customer_id = outcome["customer_id"]

    timeline = client.get(f"/api/customers/{customer_id}/timeline", headers=auth).json
    [interaction] = timeline["interactions"]
    assert interaction["id"] == outcome["interaction_id"]
    assert interaction["channel"] == "email"
    assert interaction["text"].startswith("Hello, my order 48213")
    assert interaction["conversation_id"] == outcome["conversation_id"]


def test_an_event_is_journaled_and_answered_before_it_is_processed(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    response = client.post("/api/events", json=event_json(), headers=auth)
    assert response.status_code == 202
    journal_id = response.json["journal_id"]
    assert response.headers["Location"] == f"/api/events/{journal_id}"
    # Durable, not yet on the timeline: no processor has run in this test.
    entry = find_entry(runtime.database, journal_id)
    assert entry is not None
    assert entry.status == JournalStatus.RECEIVED
    assert b"48213" in entry.payload
    assert count(runtime, Interaction) == 0
    assert client.get(f"/api/journal/{journal_id}", headers=auth).json["status"] == "received"

    assert runtime.journal.drain() == 1
    outcome = client.get(f"/api/journal/{journal_id}", headers=auth).json
    assert outcome["status"] == "processed"
    assert count(runtime, Interaction) == 1
    assert client.get("/api/journal/999999", headers=auth).status_code == 404


def test_wait_answers_with_the_interaction_once_the_processor_has_run(make_app: AppFactory) -> None:
    # The shipped default: a processor thread in the web process, woken by the request.
    app = make_app(journal={"processor": "web"})
    runtime: Runtime = app.extensions["corridor"]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}
    try:
        body = event_json()
        created = client.post("/api/events?wait=10", json=body, headers=headers)
        assert created.status_code == 201, created.json
        assert created.json["status"] == "processed"
        assert created.json["interaction_id"] is not None
        again = client.post("/api/events?wait=10", json=body, headers=headers)
        assert again.status_code == 200
        assert again.json["duplicate"] is True
        assert again.json["interaction_id"] == created.json["interaction_id"]
        # And without wait, the thread still takes it: nothing waits for a worker.
        later = client.post("/api/events", json=event_json(external_id="<later@x>"), headers=headers)
        assert later.status_code == 202
        entry = wait_processed(runtime.database, later.json["journal_id"], 10)
        assert entry is not None
        assert entry.status == JournalStatus.PROCESSED
        for query in ("wait=600", "w%61it=600"):  # the name percent-escaped is still the name
            bad_wait = client.post(f"/api/events?{query}", json=event_json(), headers=headers)
            assert bad_wait.status_code == 400
            assert bad_wait.json["error"]["field"] == "wait"
    finally:
        runtime.journal.stop()


def test_requests_waiting_for_processing_never_hold_more_than_their_share_of_threads(
    make_app: AppFactory,
) -> None:
    # No processor runs: a stopped worker, the case where every ?wait lasts its full time.
    app = make_app(journal={"processor": "worker", "max_waiting": 2})
    runtime: Runtime = app.extensions["corridor"]
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}
    answers: list[tuple[int, str]] = []

    def post_and_wait(number: int) -> None:
        response = app.test_client().post(
            "/api/events?wait=20", json=event_json(external_id=f"<waiting-{number}@x>"), headers=headers
        )
        answers.append((response.status_code, response.json["status"]))

    waiting = [threading.Thread(target=post_and_wait, args=(number,)) for number in range(2)]
    for thread in waiting:
        thread.start()
    deadline = time.monotonic() + 10
    while runtime.waiting.acquire(blocking=False):  # both places taken once this fails
        runtime.waiting.release()
        assert time.monotonic() < deadline, "the two requests never started waiting"
        time.sleep(0.01)

    # A third asks to wait too: it is answered at once, durable and received.
    started = time.monotonic()
    third = app.test_client().post("/api/events?wait=20", json=event_json(external_id="<third@x>"), headers=headers)
    assert third.status_code == 202
    assert third.json["status"] == "received"
    assert time.monotonic() - started < 5
    assert find_entry(runtime.database, third.json["journal_id"]) is not None

    # Processing resumes: the two waiting ones get their interactions, and their places are free again.
    assert runtime.journal.drain() == 3
    for thread in waiting:
        thread.join(timeout=10)
    assert sorted(answers) == [(201, "processed"), (201, "processed")]
    assert runtime.waiting.acquire(blocking=False)
    runtime.waiting.release()


def test_the_same_event_posted_three_times_concurrently_is_one_interaction(
    app: Flask, runtime: Runtime, auth: dict[str, str]
) -> None:
    body = event_json()
    barrier = threading.Barrier(3)
    statuses: list[int] = []

    def post() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(client.post("/api/events", json=body, headers=auth).status_code)

    threads = [threading.Thread(target=post) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Three processors at once, one entry each: dedupe must hold between
    # concurrent transactions, not only within one batch.
    runtime.journal.batch_size = 1
    processors = [threading.Thread(target=runtime.journal.drain) for _ in range(3)]
    for thread in processors:
        thread.start()
    for thread in processors:
        thread.join()

    assert statuses == [202, 202, 202]
    assert count(runtime, Interaction) == 1
    assert count(runtime, Customer) == 1
    assert count(runtime, Conversation) == 1
    # Every delivery is journaled, the repeats as duplicates.
    with runtime.database.read() as session:
        journal = session.scalars(select(JournalEntry.status).order_by(JournalEntry.id)).all()
    assert sorted(journal) == ["duplicate", "duplicate", "processed"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"external_id": ""}, "external_id"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2026-11-02T09:00:00"}, "occurred_at"),
        ({"occurred_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, "occurred_at"),
        ({"direction": "sideways"}, "direction"),
        ({"from": {"name": "No Address"}}, "from.address"),
        ({"from": None}, "from"),
        ({"to": [{"address": 42}]}, "to[0].address"),
        ({"attachments": [{"filename": "a.pdf", "content_base64": "***"}]}, "attachments[0].content_base64"),
        ({"thread_refs": "abc"}, "thread_refs"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_malformed_event_gets_400_naming_the_field(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str], change: dict[str, object], field: str
) -> None:
    response = client.post("/api/events", json=event_json(**change), headers=auth)
    assert response.status_code == 400
    assert response.json["error"]["field"] == field
    assert count(runtime, JournalEntry) == 0  # nothing half-written


def test_an_event_a_few_hours_ahead_of_the_server_is_accepted(client: FlaskClient, auth: dict[str, str]) -> None:
    """Other systems' clocks drift: only a time more than a day ahead is refused."""
    ahead = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    response = client.post("/api/events", json=event_json(occurred_at=ahead), headers=auth)
    assert response.status_code == 202


def test_not_json_gets_400_or_415(client: FlaskClient, auth: dict[str, str]) -> None:
    broken = client.post("/api/events", data=b"{not json", headers={**auth, "Content-Type": "application/json"})
    assert broken.status_code == 400
    assert broken.json["error"]["field"] == "body"
    wrong_type = client.post("/api/events", data=b"channel=email", headers={**auth, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415


def test_an_over_limit_body_gets_413(make_app: object, auth: dict[str, str]) -> None:
    app = make_app(app={"max_body_bytes": 4096})  # type: ignore[operator]
    client = app.test_client()
    from hub.models import Role
    from tests.conftest import make_agent

    token = make_agent(app.extensions["corridor"], Role.AGENT, email="small@corridor.test")
    body = event_json(text="x" * 5000)
    response = client.post("/api/events", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 413
    assert response.json["error"]["field"] == "body"


def test_a_failure_in_the_middle_of_the_pipeline_leaves_nothing_half_written(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The search index is written after the customer, conversation and
    # interaction rows: failing there must take all of them back.
    def broken_index(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(runtime.search, "index", broken_index)
    outcome = post_event(client, event_json(), auth)

    assert outcome["status"] == "failed"  # accepted: journaled with its error, not lost
    assert "disk full" in outcome["error"]
    assert count(runtime, Interaction) == 0
    assert count(runtime, Customer) == 0
    assert count(runtime, Conversation) == 0
    with runtime.database.read() as session:
        entry = session.scalars(select(JournalEntry)).one()
    assert entry.status == JournalStatus.FAILED
    assert "disk full" in (entry.error or "")

    # Once the fault is gone, replaying the journal completes the event.
    monkeypatch.undo()
    from hub.journal import replay

    [outcome] = replay(runtime.database, runtime.registry, [entry.id])
    assert outcome.ok
    assert count(runtime, Interaction) == 1
    with runtime.database.read() as session:
        assert session.get(JournalEntry, entry.id).status == JournalStatus.PROCESSED  # type: ignore[union-attr]


def test_one_bad_event_in_a_batch_does_not_take_the_others_down(runtime: Runtime) -> None:
    from hub.ingest import ingest_many
    from tests.hub.events import event

    good = [event(sender=f"c{i}@example.com") for i in range(3)]
    bad = event(sender="d@example.com", external_id="x" * 999)  # over the limit
    with runtime.database.write() as session:
        results = ingest_many(session, [good[0], bad, good[1], good[2]], source="test")
    assert [r.error is None for r in results] == [True, False, True, True]
    assert "external_id" in (results[1].error or "")
    assert count(runtime, Interaction) == 3
    assert count(runtime, JournalEntry) == 4


def test_api_needs_a_token_and_a_role(client: FlaskClient, runtime: Runtime) -> None:
    assert client.post("/api/events", json=event_json()).status_code == 401
    bad = client.post("/api/events", json=event_json(), headers={"Authorization": "Bearer cor_nonsense"})
    assert bad.status_code == 401
    from hub.models import Role
    from tests.conftest import make_agent

    agent = make_agent(runtime, Role.AGENT)
    headers = {"Authorization": f"Bearer {agent}"}
    assert client.post("/api/events", json=event_json(), headers=headers).status_code == 202
    forbidden = client.post("/api/customers/1/merge", json={"source_id": 1}, headers=headers)
    assert forbidden.status_code == 403
    assert "customers.merge" in forbidden.json["error"]["message"]


def test_html_is_sanitised_before_it_is_stored(client: FlaskClient, auth: dict[str, str]) -> None:
    html = '<p onclick="steal()">Hi <b>there</b></p><script>alert(1)</script><a href="javascript:x()">x</a>'
    outcome = post_event(client, event_json(html=html, text=""), auth)
    interaction = client.get(f"/api/customers/{outcome['customer_id']}/timeline", headers=auth).json["interactions"][0]
    assert "<script" not in interaction["html"]
    assert "onclick" not in interaction["html"]
    assert "javascript:" not in interaction["html"]
    assert "<b>there</b>" in interaction["html"]
    assert "Hi there" in interaction["text"]  # text derived from the HTML when none was given


def test_html_that_crashes_the_sanitiser_is_dropped_and_the_text_kept(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    # html5ever (inside nh3) panics on this <meta>; one customer's email must
    # not take the pipeline down.
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset"></head><body>Parcel lost</body>'
    outcome = post_event(client, event_json(html=html, text=""), auth)
    assert outcome["status"] == "processed"
    [interaction] = client.get(f"/api/customers/{outcome['customer_id']}/timeline", headers=auth).json["interactions"]
    assert "Parcel lost" in interaction["text"]
    assert "<meta" not in interaction["html"]
