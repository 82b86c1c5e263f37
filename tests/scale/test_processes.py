"""Two web processes and three workers on one PostgreSQL, as a deployment runs them.

Events stream in through both web processes (``corridor run --no-worker``,
journaling only); three ``corridor worker`` processes take them through the
pipeline. Every event ends on the timeline exactly once: one interaction per
journal entry, none a duplicate of another worker's. Replies whose first
send failed are retried by whichever worker finds them due, and each leaves
once. ``/metrics`` on either web process adds up what all five counted.
"""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from hub.auth import create_agent
from hub.db import Database
from hub.migrate import upgrade
from hub.models import Interaction, JournalEntry, JournalStatus, OutboundDelivery, Role, utcnow
from tests.connectors.email.conftest import mailbox_table
from tests.fleet import Fleet, fleet_environ
from tests.hub.events import event_json
from tests.services import Dovecot, SmtpServer
from tests.services.postgres import fresh_postgres_database
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

EVENTS = 300
REPLIES = 6
CUSTOMERS = 30


def call(base: str, token: str, method: str, path: str, body: object = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def scrape(base: str) -> dict[str, float]:
    with urllib.request.urlopen(base + "/metrics", timeout=30) as response:
        text = response.read().decode()
    return {
        sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_two_web_processes_and_three_workers_process_every_event_once_and_send_every_reply_once(
    dovecot: Dovecot, smtp_server: SmtpServer, postgres_url: str, tmp_path: Path
) -> None:
    url = fresh_postgres_database(postgres_url, "corridor_fleet")
    database = Database(url)
    upgrade(database)
    with database.write() as session:
        _, token = create_agent(session, email="ops@corridor.test", name="Ops", role=Role.ADMIN, password=None)
    dovecot.add_user("support", "fleet password")
    password_file = tmp_path / "imap-password"
    password_file.write_text("fleet password\n")
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    environ = fleet_environ(
        url,
        tmp_path / "instance",
        app_connectors='["email"]',
        email_mailboxes=json.dumps([mailbox_table(dovecot, smtp_server, password_file)]),
        email_parse_processes="0",
        email_lease_seconds="5",
    )
    # One metrics directory for every process on this machine (hub.metrics).
    environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    try:
        with Fleet(tmp_path, environ) as fleet:
            webs = [fleet.web(f"web-{n}") for n in range(2)]
            for n in range(3):
                fleet.worker(f"worker-{n}")

            def post(n: int) -> int:
                body = event_json(**{"from": {"address": f"customer{n % CUSTOMERS}@example.org"}})
                status, answer = call(webs[n % 2].url, token, "POST", "/api/events", body)
                assert status == 202
                return int(answer["journal_id"])

            with ThreadPoolExecutor(8) as pool:
                journal_ids = list(pool.map(post, range(EVENTS)))
            assert len(set(journal_ids)) == EVENTS

            def processed() -> int:
                with database.read() as session:
                    return int(
                        session.scalar(
                            select(func.count())
                            .select_from(JournalEntry)
                            .where(JournalEntry.status != JournalStatus.RECEIVED)
                        )
                        or 0
                    )

            assert wait_until(lambda: processed() == EVENTS, 120), fleet.logs()
            with database.read() as session:
                statuses = dict(
                    session.execute(select(JournalEntry.status, func.count()).group_by(JournalEntry.status)).all()
                )
                landed = session.execute(select(Interaction.journal_id, Interaction.external_id)).all()
            assert statuses == {JournalStatus.PROCESSED: EVENTS}
            assert len(landed) == EVENTS
            assert sorted(j for j, _ in landed) == sorted(journal_ids)
            assert len({e for _, e in landed}) == EVENTS

            # Replies: the first attempts are refused, so the retries are the workers' to race for.
            conversations = [
                call(webs[0].url, token, "GET", f"/api/journal/{journal_ids[n]}")[1]["conversation_id"]
                for n in range(REPLIES)
            ]
            smtp_server.refuse(count=REPLIES)
            for n, conversation_id in enumerate(conversations):
                _status, answer = call(
                    webs[n % 2].url,
                    token,
                    "POST",
                    f"/api/conversations/{conversation_id}/replies",
                    {"channel": "email", "text": f"Reply {n}"},
                )
                assert answer["will_retry"], answer
            with database.write() as session:
                # The backoff (a minute at first) has passed, for every reply at once.
                session.execute(update(OutboundDelivery).values(next_attempt_at=utcnow()))
            assert wait_until(lambda: len(smtp_server.messages) == REPLIES, 60), fleet.logs()
            # Long enough for any worker that would send one again to have done so.
            wait_until(lambda: len(smtp_server.messages) > REPLIES, 3)
            sent = [message_from_bytes(m.data)["Message-ID"] for m in smtp_server.messages]
            assert len(sent) == len(set(sent)) == REPLIES
            with database.read() as session:
                assert session.scalar(select(func.count()).where(OutboundDelivery.done.is_(False))) == 0

            samples = scrape(webs[1].url)
            received = sum(v for k, v in samples.items() if k.startswith("corridor_journal_received_total"))
            assert received >= EVENTS
            assert samples["corridor_journal_processed_total{}"] >= EVENTS
            labels = json.dumps({"method": "POST", "route": "/api/events", "status": "202"}, sort_keys=True)
            requests = f"corridor_http_request_duration_seconds_count{labels}"
            assert samples[requests] == EVENTS
    finally:
        database.dispose()
