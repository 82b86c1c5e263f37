"""The journal processor: what webhooks and the event API received reaches the timeline, once.

Entry points journal as *received* and answer; the processor takes received
entries in batches. These tests inject the faults that matter: a crash in the
middle of a batch, a payload that no longer parses, two processors at once,
and the real deployment shape (``corridor run`` with its worker process).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

import hub.journal
import hub.web.api.events
from hub.ingest import receive
from hub.journal import process_received, received_entries
from hub.models import Interaction, JournalEntry, JournalStatus, utcnow
from hub.runtime import Runtime
from hub.web.event_schema import parse_event
from tests.hub.events import event_json
from tests.services import free_port
from tests.waiting import alive


def api_event(**overrides: object) -> object:
    """An event as POST /api/events builds it: its raw payload parses again."""
    return parse_event(json.dumps(event_json(**overrides)).encode())


def statuses(runtime: Runtime) -> list[str]:
    """Every journal entry's status in id order, wherever it is (on SQLite, received ones wait in the inbox)."""
    with runtime.database.read() as session:
        found = {row.id: str(row.status) for row in session.execute(select(JournalEntry.id, JournalEntry.status))}
    for entry in received_entries(runtime.database, limit=10_000):
        found.setdefault(entry.id, str(entry.status))
    return [found[entry_id] for entry_id in sorted(found)]


def interactions(runtime: Runtime) -> int:
    with runtime.database.read() as session:
        return int(session.scalar(select(func.count()).select_from(Interaction)) or 0)


def test_a_crash_in_the_middle_of_a_batch_leaves_every_entry_received_then_processes_each_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    receive(runtime.database, [api_event(**{"from": f"c{i}@example.com"}) for i in range(5)], source="api")  # type: ignore[list-item]
    real = hub.journal.process_journaled

    def crash_after_the_timeline_rows(session: object, items: object, journal_ids: object) -> object:
        real(session, items, journal_ids)  # type: ignore[arg-type]
        # The process dies after writing the interactions, before its commit.
        raise OSError("killed")

    monkeypatch.setattr(hub.journal, "process_journaled", crash_after_the_timeline_rows)
    with pytest.raises(OSError, match="killed"):
        runtime.journal.drain()
    assert statuses(runtime) == ["received"] * 5
    assert interactions(runtime) == 0

    monkeypatch.undo()
    assert runtime.journal.drain() == 5
    assert runtime.journal.drain() == 0
    assert statuses(runtime) == ["processed"] * 5
    assert interactions(runtime) == 5


def test_an_entry_that_no_longer_parses_is_failed_with_its_reason_and_the_rest_go_on(runtime: Runtime) -> None:
    good = api_event()
    receive(runtime.database, [good], source="api")
    receive(runtime.database, [api_event()], source="a-connector-since-disabled")  # type: ignore[list-item]
    receive(runtime.database, [api_event()], source="api")  # type: ignore[list-item]

    assert runtime.journal.drain() == 3

    assert statuses(runtime) == ["processed", "failed", "processed"]
    with runtime.database.read() as session:
        failed = session.scalars(select(JournalEntry).where(JournalEntry.status == JournalStatus.FAILED)).one()
    assert "no parser for source 'a-connector-since-disabled'" in (failed.error or "")
    assert failed.next_attempt_at is not None  # the worker's retries will try it again
    assert interactions(runtime) == 2


def test_entries_are_processed_in_arrival_order_in_bounded_batches(runtime: Runtime) -> None:
    # A customer's messages in the order they arrived: the first opens the
    # conversation, the rest continue it.
    sender = {"from": "ana@example.com"}
    times = [f"2026-11-02T09:0{i}:00Z" for i in range(7)]
    receive(runtime.database, [api_event(occurred_at=t, **sender) for t in times], source="api")  # type: ignore[list-item]
    assert process_received(runtime.database, runtime.registry, limit=3) == 3
    assert statuses(runtime) == ["processed"] * 3 + ["received"] * 4
    assert runtime.journal.drain() == 4
    with runtime.database.read() as session:
        conversations = session.scalars(select(Interaction.conversation_id).distinct()).all()
    assert len(conversations) == 1


def test_two_processors_at_once_take_each_entry_once(runtime: Runtime) -> None:
    body = api_event(**{"from": "same@example.com"})
    receive(runtime.database, [body] * 4 + [api_event() for _ in range(20)], source="api")  # type: ignore[list-item]
    runtime.journal.batch_size = 5
    threads = [threading.Thread(target=runtime.journal.drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    done = statuses(runtime)
    assert done.count("received") == 0
    assert done.count("duplicate") == 3
    assert interactions(runtime) == 21


@pytest.mark.slow
def test_corridor_run_answers_and_its_worker_puts_the_event_on_the_timeline(tmp_path: Path) -> None:
    """The deployment shape: `corridor run` serves, journals, answers; the worker it started processes."""
    port = free_port()
    env = {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'corridor.db'}",
        "HUB_APP_INSTANCE_DIR": str(tmp_path / "instance"),
        "HUB_APP_SECRET_KEY": "test",
        "HUB_JOURNAL_POLL_INTERVAL": "0.02",
    }
    corridor = [sys.executable, "-m", "hub.cli"]
    subprocess.run([*corridor, "db", "upgrade"], env=env, capture_output=True, check=True, timeout=60)
    token = subprocess.run(
        [*corridor, "user", "create", "ana@corridor.test", "--name", "Ana", "--role", "agent"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()[-1]  # fmt: skip
    server = subprocess.Popen(
        [*corridor, "run", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert server.stdout is not None
        seen = []
        while "worker pid" not in (banner := server.stdout.readline()):
            assert banner, "".join(seen)  # the server exited
            seen.append(banner)
        worker_pid = int(banner.rsplit("worker pid", 1)[1].strip(" )\n"))
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def call(method: str, path: str, body: object = None) -> tuple[int, dict[str, object]]:
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())

        deadline = time.monotonic() + 30
        while True:
            try:
                status, answer = call("POST", "/api/events", event_json())
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert status == 202
        journal_id = answer["journal_id"]
        deadline = time.monotonic() + 15
        while (outcome := call("GET", f"/api/events/{journal_id}")[1])["status"] == "received":
            assert time.monotonic() < deadline, "the worker did not process the event"
            time.sleep(0.05)
        assert outcome["status"] == "processed"
        assert outcome["interaction_id"] is not None
        # ?wait works against the worker too: it polls the journal.
        status, waited = call("POST", "/api/events?wait=10", event_json())
        assert status == 201
        assert waited["interaction_id"] is not None
        # Requests first: the worker runs at a lower CPU priority than the server.
        assert os.getpriority(os.PRIO_PROCESS, worker_pid) == min(os.getpriority(os.PRIO_PROCESS, server.pid) + 19, 19)

        # A worker that dies is started again; what arrived meanwhile waits for it, received.
        os.kill(worker_pid, signal.SIGKILL)
        status, answer = call("POST", "/api/events?wait=20", event_json())
        assert (status, answer["status"]) == (201, "processed")
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    output = "".join(seen) + banner + output
    assert "worker running: journal processing" in output
    assert "starting it again" in output
    # Terminated, the server stopped its worker rather than leaving it orphaned.
    assert "signal 15: stopping" in output


@pytest.mark.slow
def test_a_worker_whose_parent_is_gone_stops(tmp_path: Path) -> None:
    """`corridor run` killed with SIGKILL must not leave its worker polling the database for nobody."""
    env = {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'corridor.db'}",
        "HUB_APP_INSTANCE_DIR": str(tmp_path / "instance"),
        "HUB_APP_SECRET_KEY": "test",
    }
    # A parent that starts the worker, then dies; its stdout (a pipe) goes with it.
    parent = subprocess.Popen(
        ["sh", "-c", f'"{sys.executable}" -m hub.cli worker --parent-pid $$ & echo $!; sleep 3'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert parent.stdout is not None
    worker_pid = int(parent.stdout.readline())
    parent.wait(timeout=30)
    parent.stdout.close()
    deadline = time.monotonic() + 40
    while alive(worker_pid):
        assert time.monotonic() < deadline, "the orphaned worker is still running"
        time.sleep(0.2)


def test_health_turns_degraded_when_received_events_wait_for_a_processor(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthy = client.get("/api/health")  # no token: for load balancers and monitoring
    assert healthy.status_code == 200
    assert healthy.json["status"] == "ok"
    assert healthy.json["journal"] == {"received": 0, "oldest_received_seconds": 0.0, "failed": 0}

    receive(runtime.database, [api_event()], source="api")  # type: ignore[list-item]
    assert client.get("/api/health").json["status"] == "ok"  # just arrived
    # Nobody processes it for two minutes: the worker is down.
    later = utcnow() + timedelta(minutes=2)
    monkeypatch.setattr(hub.web.api.events, "utcnow", lambda: later)
    stalled = client.get("/api/health").json
    assert stalled["status"] == "degraded"
    assert "journal processor" in stalled["reason"]
    assert stalled["journal"]["received"] == 1
    assert stalled["journal"]["oldest_received_seconds"] >= 120

    runtime.journal.drain()
    assert client.get("/api/health").json["status"] == "ok"
