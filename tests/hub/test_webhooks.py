"""Outgoing webhooks against a real receiver on loopback, on SQLite and PostgreSQL.

The worker's loop is driven step by step here (``pump``), except in the
kill test, which runs a real ``corridor worker`` process and kills it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub import live
from hub.customers import merge
from hub.events import Channel, Direction, InteractionUpdate
from hub.ingest import ingest_many
from hub.integrations import webhook_settings
from hub.integrations.delivery import claim_due, claim_test, record, send
from hub.integrations.signing import HEADER, signature, verify
from hub.integrations.subscriptions import create_subscription, queue_test
from hub.integrations.targets import TargetRefused, check_url
from hub.integrations.worker import WebhookWorker
from hub.models import AuditRecord, Customer, Interaction, LiveEvent, Role, WebhookDelivery
from hub.runtime import Runtime
from tests.conftest import AppFactory, make_agent
from tests.hub.events import at, event
from tests.hub.receiver import Receiver, receiving
from tests.services import free_port

FAST = {
    "allowed_hosts": ["127.0.0.1"],
    "timeout_seconds": 0.5,
    "retry_base_seconds": 0.05,
    "retry_max_seconds": 0.2,
    "pause_after_failures": 50,
    "poll_interval": 0.02,
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


@pytest.fixture
def hooked(make_app: AppFactory) -> Callable[..., Flask]:
    """An app whose webhooks retry in milliseconds and may call 127.0.0.1."""

    def build(**webhooks: Any) -> Flask:
        return make_app(webhooks={**FAST, **webhooks})

    return build


def _auth(runtime: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_agent(runtime, Role.ADMIN)}"}


def _subscribe(client: FlaskClient, headers: dict[str, str], url: str, *events: str) -> dict[str, Any]:
    response = client.post("/api/subscriptions", json={"url": url, "events": list(events)}, headers=headers)
    assert response.status_code == 201, response.json
    body: dict[str, Any] = response.json
    return body


class Pump:
    """The worker's loop, one step at a time, with the pool it sends from."""

    def __init__(self, runtime: Runtime) -> None:
        self.worker = WebhookWorker(runtime.database, webhook_settings(runtime.settings))
        self.pool = ThreadPoolExecutor(4)

    def __call__(self) -> int:
        return self.worker.step(self.pool)


def _wait_feed(runtime: Runtime, kind: str, count: int) -> None:
    # interaction.created is announced in the write path's transaction, which the journal processor runs.
    deadline = time.monotonic() + 10
    while True:
        with runtime.database.read() as session:
            found = session.scalar(select(func.count()).select_from(LiveEvent).where(LiveEvent.kind == kind)) or 0
        if found >= count:
            return
        assert time.monotonic() < deadline, f"{found} of {count} {kind} events in the feed"
        time.sleep(0.02)


def _ingest(runtime: Runtime, *events: Any) -> None:
    with runtime.database.write() as session:
        ingest_many(session, list(events), source="test")


def test_a_subscriber_gets_signed_interaction_created_and_the_log_shows_it(
    hooked: Callable[..., Flask], receiver: Receiver
) -> None:
    app = hooked()
    runtime, client = app.extensions["corridor"], app.test_client()
    headers = _auth(runtime)
    subscription = _subscribe(client, headers, receiver.url, "interaction.created", "conversation.opened")
    _ingest(runtime, event(Channel.SMS, "+14155550100", text="Where is my parcel?"))
    _wait_feed(runtime, "interaction.created", 1)
    pump = Pump(runtime)
    receiver.wait_for(lambda: len(receiver.acknowledged()) == 2, pump=pump)

    opened, created = receiver.requests
    assert [opened.body["type"], created.body["type"]] == ["conversation.opened", "interaction.created"]
    for request in (opened, created):
        assert verify(subscription["secret"], request.headers[HEADER], request.raw)
        assert not verify("whsec_wrong", request.headers[HEADER], request.raw)
        # A captured request replayed later is refused by its timestamp.
        assert not verify(subscription["secret"], request.headers[HEADER], request.raw, now=time.time() + 301)
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Corridor-Event"] == request.body["type"]
    body = created.body
    assert body["version"] == 1
    assert body["id"].startswith("evt_")
    interaction = body["data"]["interaction"]
    assert (interaction["channel"], interaction["from"], interaction["text"]) == (
        "sms",
        "+14155550100",
        "Where is my parcel?",
    )
    assert body["data"]["conversation"]["id"] == interaction["conversation_id"]

    log = client.get(f"/api/subscriptions/{subscription['id']}/deliveries", headers=headers).json["deliveries"]
    assert [(d["event_type"], d["status"], d["response_code"], d["attempts"]) for d in log] == [
        ("interaction.created", "delivered", 200, 1),
        ("conversation.opened", "delivered", 200, 1),
    ]
    assert all(d["latency_ms"] is not None and d["next_attempt_at"] is None for d in log)
    # Acknowledged: never sent again.
    for _ in range(5):
        pump()
    assert len(receiver.requests) == 2


def test_a_signature_is_over_the_timestamp_and_the_body() -> None:
    header = signature("whsec_s", 1_700_000_000, b'{"id":"evt_1"}')
    assert verify("whsec_s", header, b'{"id":"evt_1"}', now=1_700_000_100)
    assert not verify("whsec_s", header, b'{"id":"evt_2"}', now=1_700_000_100)
    assert not verify("whsec_s", header.replace("t=1700000000", "t=1700000050"), b'{"id":"evt_1"}', now=1_700_000_100)
    assert not verify("whsec_s", "v1=abc", b"{}", now=1_700_000_100)


def test_failed_and_timed_out_deliveries_are_retried_and_a_conversation_keeps_its_order(
    hooked: Callable[..., Flask], receiver: Receiver
) -> None:
    app = hooked()
    runtime, client = app.extensions["corridor"], app.test_client()
    headers = _auth(runtime)
    _subscribe(client, headers, receiver.url, "interaction.created")
    failures: dict[str, int] = {}

    def flaky(body: dict[str, Any], _count: int) -> tuple[int, float]:
        text = body["data"]["interaction"]["text"]
        failures[text] = failures.get(text, 0) + 1
        if text == "first" and failures[text] <= 2:
            return 500, 0.0  # twice a server error
        if text == "second" and failures[text] == 1:
            return 200, 1.5  # once too slow: the sender times out at 0.5 s
        return 200, 0.0

    receiver.behaviour = flaky
    # One conversation (same customer, same hour), and another customer's in between.
    _ingest(runtime, event(Channel.SMS, "+14155550100", text="first", hours=0))
    _ingest(runtime, event(Channel.SMS, "+14155550199", text="other", hours=0.1))
    _ingest(runtime, event(Channel.SMS, "+14155550100", text="second", hours=0.2))
    _ingest(runtime, event(Channel.SMS, "+14155550100", text="third", hours=0.3))
    _wait_feed(runtime, "interaction.created", 4)
    pump = Pump(runtime)
    with runtime.database.read() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    receiver.wait_for(lambda: len({r.body["id"] for r in receiver.requests if r.status == 200}) == 4, pump=pump)

    texts = [r.body["data"]["interaction"]["text"] for r in receiver.requests]
    same_conversation = [t for t in texts if t != "other"]
    # Retries of "first" come before anything later of its conversation; "other" did not wait for it.
    assert same_conversation == ["first", "first", "first", "second", "second", "third"]
    assert texts.index("other") < texts.index("second")
    with runtime.database.read() as session:
        attempts = [a for (a,) in session.execute(select(WebhookDelivery.attempts).order_by(WebhookDelivery.id))]
        statuses = set(session.scalars(select(WebhookDelivery.status)))
    assert sorted(attempts) == [1, 1, 2, 3]
    assert statuses == {"delivered"}


def test_a_subscription_that_keeps_failing_is_paused_the_admin_told_and_resuming_sends_what_waited(
    hooked: Callable[..., Flask], receiver: Receiver
) -> None:
    app = hooked(pause_after_failures=3)
    runtime, client = app.extensions["corridor"], app.test_client()
    headers = _auth(runtime)
    subscription = _subscribe(client, headers, receiver.url, "interaction.created")
    receiver.behaviour = lambda _body, _n: (503, 0.0)
    _ingest(runtime, event(Channel.EMAIL, "ana@example.com", text="one"))
    _wait_feed(runtime, "interaction.created", 1)
    pump = Pump(runtime)

    def paused() -> bool:
        found = client.get(f"/api/subscriptions/{subscription['id']}", headers=headers).json
        return bool(found["status"] == "paused")

    receiver.wait_for(paused, pump=pump)
    found = client.get(f"/api/subscriptions/{subscription['id']}", headers=headers).json
    assert found["consecutive_failures"] == 3
    assert "3 failed attempts in a row" in found["paused_reason"]
    assert "HTTP 503" in found["paused_reason"]
    with runtime.database.read() as session:
        audit = session.scalars(select(AuditRecord).where(AuditRecord.action == "webhook.paused")).one()
    assert audit.target_id == subscription["id"]
    health = client.get("/api/health").json
    assert health["webhooks"]["paused"] == [subscription["id"]]

    # Paused: nothing is sent, but what happens meanwhile is kept.
    _ingest(runtime, event(Channel.EMAIL, "bea@example.com", text="two"))
    _wait_feed(runtime, "interaction.created", 2)
    sent = len(receiver.requests)
    for _ in range(10):
        pump()
    assert len(receiver.requests) == sent

    receiver.behaviour = lambda _body, _n: (204, 0.0)
    response = client.patch(f"/api/subscriptions/{subscription['id']}", json={"status": "active"}, headers=headers)
    assert (response.status_code, response.json["status"]) == (200, "active")
    receiver.wait_for(lambda: len(receiver.acknowledged()) == 2, pump=pump)
    assert sorted(r.body["data"]["interaction"]["text"] for r in receiver.acknowledged()) == ["one", "two"]


def test_send_test_answers_with_what_the_receiver_said(hooked: Callable[..., Flask], receiver: Receiver) -> None:
    app = hooked()
    runtime, client = app.extensions["corridor"], app.test_client()
    headers = _auth(runtime)
    subscription = _subscribe(client, headers, receiver.url, "customer.merged")
    answer = client.post(f"/api/subscriptions/{subscription['id']}/test", headers=headers)
    assert answer.status_code == 200
    assert (answer.json["event_type"], answer.json["status"], answer.json["response_code"]) == (
        "webhook.test", "delivered", 200,
    )  # fmt: skip
    [request] = receiver.requests
    assert request.body["type"] == "webhook.test"
    assert verify(subscription["secret"], request.headers[HEADER], request.raw)

    receiver.behaviour = lambda _body, _n: (404, 0.0)
    answer = client.post(f"/api/subscriptions/{subscription['id']}/test", headers=headers)
    assert (answer.json["status"], answer.json["response_code"]) == ("failed", 404)
    # A test is never retried, and does not count towards pausing.
    assert client.get(f"/api/subscriptions/{subscription['id']}", headers=headers).json["consecutive_failures"] == 0
    assert client.post("/api/subscriptions/999/test", headers=headers).status_code == 404


def test_merges_and_their_undo_are_sent(hooked: Callable[..., Flask], receiver: Receiver) -> None:
    app = hooked()
    runtime, client = app.extensions["corridor"], app.test_client()
    headers = _auth(runtime)
    _subscribe(client, headers, receiver.url, "customer.merged", "customer.unmerged")
    _ingest(runtime, event(Channel.EMAIL, "ana@example.com"), event(Channel.SMS, "+14155550100"))
    with runtime.database.read() as session:
        source, target = sorted(session.scalars(select(Customer.id)))
    merged = client.post(f"/api/customers/{target}/merge", json={"source_id": source}, headers=headers).json
    assert client.post(f"/api/merges/{merged['id']}/undo", headers=headers).status_code == 200
    receiver.wait_for(lambda: len(receiver.acknowledged()) == 2, pump=Pump(runtime))
    bodies = [r.body for r in receiver.requests]
    assert [b["type"] for b in bodies] == ["customer.merged", "customer.unmerged"]
    assert bodies[0]["data"] | {"moved": None} == {
        "merge_id": merged["id"], "customer_id": target, "source_id": source, "target_id": target, "moved": None,
    }  # fmt: skip


def test_a_rolled_back_merge_announces_nothing(hooked: Callable[..., Flask]) -> None:
    app = hooked()
    runtime = app.extensions["corridor"]
    _ingest(runtime, event(Channel.EMAIL, "ana@example.com"), event(Channel.SMS, "+14155550100"))
    with runtime.database.read() as session:
        source, target = sorted(session.scalars(select(Customer.id)))

    def merge_then_fail() -> None:
        with runtime.database.write() as session:
            merge(session, source, target, actor_id=None)
            raise RuntimeError("the request failed after the merge")

    with pytest.raises(RuntimeError):
        merge_then_fail()
    with runtime.database.read() as session:
        assert (
            session.scalar(select(func.count()).select_from(LiveEvent).where(LiveEvent.kind == "customer.merged")) == 0
        )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http://user:pw@93.184.216.34/hook",
        "http:///nohost",
    ],
)
def test_ssrf_targets_are_refused(app: Flask, auth: dict[str, str], url: str) -> None:
    response = app.test_client().post(
        "/api/subscriptions", json={"url": url, "events": ["interaction.created"]}, headers=auth
    )
    assert response.status_code == 400, response.json
    assert response.json["error"]["field"] == "url"


def test_public_addresses_pass_and_the_allow_list_is_by_host() -> None:
    public = check_url("https://hooks.example.com/x?y=1", [], lambda _h, _p: ["93.184.216.34"])
    assert (public.address, public.port, public.path, public.host_header) == (
        "93.184.216.34", 443, "/x?y=1", "hooks.example.com",
    )  # fmt: skip
    # One private answer among public ones refuses the name (a rebinding attempt).
    with pytest.raises(TargetRefused):
        check_url("https://hooks.example.com/", [], lambda _h, _p: ["93.184.216.34", "10.0.0.1"])
    assert check_url("http://127.0.0.1:9/", ["127.0.0.1"]).address == "127.0.0.1"
    with pytest.raises(TargetRefused):
        check_url("http://localhost:9/", ["127.0.0.1"])


def test_a_redirect_is_a_failed_attempt_not_followed(hooked: Callable[..., Flask], receiver: Receiver) -> None:
    app = hooked()
    runtime, client = app.extensions["corridor"], app.test_client()
    headers = _auth(runtime)
    subscription = _subscribe(client, headers, receiver.url, "interaction.created")
    receiver.behaviour = lambda _body, _n: (302, 0.0)
    answer = client.post(f"/api/subscriptions/{subscription['id']}/test", headers=headers).json
    assert (answer["status"], answer["response_code"]) == ("failed", 302)
    assert len(receiver.requests) == 1


def test_subscriptions_are_for_admins_and_check_their_fields(app: Flask, runtime: Runtime) -> None:
    client = app.test_client()
    agent = {"Authorization": f"Bearer {make_agent(runtime, Role.SUPERVISOR)}"}
    assert client.get("/api/subscriptions", headers=agent).status_code == 403
    admin = _auth(runtime)
    bad = client.post(
        "/api/subscriptions", json={"url": "https://x.example/", "events": ["interaction.made"]}, headers=admin
    )
    assert (bad.status_code, bad.json["error"]["field"]) == (400, "events")
    assert client.get("/api/subscriptions/12", headers=admin).status_code == 404
    assert client.delete("/api/subscriptions/12", headers=admin).status_code == 404


@pytest.mark.slow
def test_nothing_is_lost_when_a_worker_is_killed_mid_delivery(
    runtime: Runtime, database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    """A real `corridor worker`, killed with SIGKILL while a request is in flight, then started again."""
    settings = dataclasses.replace(webhook_settings(runtime.settings), allowed_hosts=["127.0.0.1"])
    with runtime.database.write() as session:
        create_subscription(session, settings, url=receiver.url, events=["interaction.created"], actor_id=None)
    total = 12
    _ingest(runtime, *(event(Channel.SMS, f"+1415555{i:04d}", text=f"message {i}") for i in range(total)))
    _wait_feed(runtime, "interaction.created", total)
    # Slow answers, so the kill finds requests in flight.
    receiver.behaviour = lambda _body, _n: (200, 0.3)
    env = {
        **os.environ,
        "HUB_DATABASE_URL": database_url,
        "HUB_APP_INSTANCE_DIR": str(tmp_path / "instance"),
        "HUB_APP_SECRET_KEY": "test",
        "HUB_JOURNAL_POLL_INTERVAL": "0.05",
        "HUB_WEBHOOKS_ALLOWED_HOSTS": '["127.0.0.1"]',
        "HUB_WEBHOOKS_TIMEOUT_SECONDS": "1",
        "HUB_WEBHOOKS_POLL_INTERVAL": "0.05",
        "HUB_WEBHOOKS_CONCURRENCY": "2",
    }

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "--interval", "0.2"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    worker = start()
    try:
        receiver.wait_for(lambda: len(receiver.requests) >= 2 and receiver.in_flight > 0, timeout=60)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        killed_at = len(receiver.acknowledged())
        assert killed_at < total
        worker = start()

        def all_delivered() -> bool:
            with runtime.database.read() as session:
                done = session.scalar(
                    select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "delivered")
                )
            return done == total

        receiver.wait_for(all_delivered, timeout=90)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    texts = [r.body["data"]["interaction"]["text"] for r in receiver.acknowledged()]
    assert sorted(set(texts)) == sorted(f"message {i}" for i in range(total))
    # Only what was in flight at the kill can arrive twice (receivers dedupe by the body's id).
    assert len(texts) - total <= 2


def test_the_readme_verification_snippet_accepts_corridor_signatures() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippet = readme.split("<!-- verify-snippet -->\n```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # noqa: S102 (our own README's code, the point of the test)
    body = b'{"id":"evt_7","version":1}'
    header = signature("whsec_s", int(time.time()), body)
    assert namespace["verify"]("whsec_s", header, body)
    assert not namespace["verify"]("whsec_s", header, body + b" ")
    assert not namespace["verify"]("whsec_s", signature("whsec_s", int(time.time()) - 600, body), body)


def test_delivery_status_reports_and_the_consoles_conversation_events_are_sent(
    hooked: Callable[..., Flask], receiver: Receiver
) -> None:
    app = hooked()
    runtime, client = app.extensions["corridor"], app.test_client()
    headers = _auth(runtime)
    _subscribe(
        client, headers, receiver.url,
        "interaction.delivery_status_changed", "conversation.assigned", "conversation.status_changed",
    )  # fmt: skip
    _ingest(runtime, event(Channel.SMS, "+14155550100", external_id="SMout1", direction=Direction.OUTBOUND))
    _ingest(
        runtime,
        InteractionUpdate(
            channel=Channel.SMS, external_id="SMout1", update_id="SMout1/delivered",
            occurred_at=at(0.01), status="delivered",
        ),
    )  # fmt: skip
    _wait_feed(runtime, "interaction.updated", 1)
    with runtime.database.read() as session:
        conversation_id = session.scalar(select(Interaction.conversation_id))
    # What the console's conversation actions publish, in their own transactions.
    with runtime.database.write() as session:
        live.publish(
            session, live.AGENTS, "conversation.assigned", {"conversation_id": conversation_id, "assignee_id": 1}
        )
    with runtime.database.write() as session:
        live.publish(session, live.AGENTS, "conversation.status_changed",
                     {"conversation_id": conversation_id, "from": "open", "to": "closed"})  # fmt: skip
    receiver.wait_for(lambda: len(receiver.acknowledged()) == 3, pump=Pump(runtime))
    bodies = [r.body for r in receiver.requests]
    assert [b["type"] for b in bodies] == [
        "interaction.delivery_status_changed", "conversation.assigned", "conversation.status_changed",
    ]  # fmt: skip
    assert bodies[0]["data"]["interaction"]["status"] == "delivered"
    assert bodies[1]["data"]["assignee_id"] == 1
    assert bodies[1]["data"]["conversation"]["id"] == conversation_id
    assert (bodies[2]["data"]["from"], bodies[2]["data"]["to"]) == ("open", "closed")


def test_an_erasure_is_sent_and_the_delivery_log_forgets_the_person(
    hooked: Callable[..., Flask], receiver: Receiver
) -> None:
    app = hooked()
    runtime, client = app.extensions["corridor"], app.test_client()
    headers = _auth(runtime)
    _subscribe(client, headers, receiver.url, "interaction.created", "customer.erased")
    _ingest(
        runtime,
        event(Channel.SMS, "+14155550111", text="qqprivate words of the person"),
        event(Channel.SMS, "+14155550122", text="Bob's own words"),
    )
    _wait_feed(runtime, "interaction.created", 2)
    pump = Pump(runtime)
    receiver.wait_for(lambda: len(receiver.acknowledged()) == 2, pump=pump)
    with runtime.database.read() as session:
        person = session.scalars(select(Interaction.customer_id).where(Interaction.text.contains("qqprivate"))).one()

    erased = client.post(f"/api/customers/{person}/erase", headers=headers)

    assert erased.status_code == 200, erased.json
    assert erased.json["erased"]["webhook_deliveries"] == 1
    receiver.wait_for(lambda: len(receiver.acknowledged()) == 3, pump=pump)
    sent = receiver.requests[-1].body
    assert sent["type"] == "customer.erased"
    assert sent["data"]["customer_id"] == person
    assert sent["data"]["customer_ids"] == [person]
    assert sent["data"]["erased"]["interactions"] == 1
    assert b"qqprivate" not in receiver.requests[-1].raw
    assert b"4155550111" not in receiver.requests[-1].raw
    with runtime.database.read() as session:
        bodies = list(session.scalars(select(WebhookDelivery.body)))
    assert not [b for b in bodies if "qqprivate" in b or "4155550111" in b]
    assert any("Bob's own words" in b for b in bodies)  # someone else's log stays


def test_a_refused_connection_is_logged_as_such_not_as_a_timeout(hooked: Callable[..., Flask]) -> None:
    app = hooked()
    runtime, client = app.extensions["corridor"], app.test_client()
    headers = _auth(runtime)
    subscription = _subscribe(client, headers, f"http://127.0.0.1:{free_port()}/nobody", "interaction.created")
    attempt = client.post(f"/api/subscriptions/{subscription['id']}/test", headers=headers).json
    assert attempt["status"] == "failed"
    assert attempt["response_code"] is None
    assert attempt["last_error"].startswith("could not connect: ")
    assert "Connection refused" in attempt["last_error"]


def test_a_test_in_flight_is_never_taken_by_the_worker(hooked: Callable[..., Flask], receiver: Receiver) -> None:
    """A send-test is the caller's: a worker step while it is in flight neither fails it nor sends it again."""
    app = hooked()
    runtime, client = app.extensions["corridor"], app.test_client()
    subscription = _subscribe(client, _auth(runtime), receiver.url, "interaction.created")
    settings = webhook_settings(runtime.settings)
    with runtime.database.write() as session:
        claimed = claim_test(session, queue_test(session, subscription["id"]))
    with runtime.database.read() as session:
        delivery = session.get(WebhookDelivery, claimed.id)
        assert delivery is not None
        assert delivery.next_attempt_at is None  # not the column's default: the worker must not see it as due
    time.sleep(0.01)  # past the test's expiry, which is its creation
    with runtime.database.write() as session:
        assert claim_due(session, settings, limit=10) == []
    outcome = send(claimed, settings)
    with runtime.database.write() as session:
        record(session, settings, outcome)
        delivery = session.get(WebhookDelivery, claimed.id)
        assert delivery is not None
        assert (delivery.status, delivery.response_code) == ("delivered", 200)
    assert len(receiver.requests) == 1
