"""Group commit: concurrent requests share a journal transaction, and each answers only after it committed."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

import hub.ingest
from hub.db import Database
from hub.events import ChannelEvent
from hub.ingest import Arrival, receive
from hub.journal import find_entry, received_backlog
from hub.models import Interaction, JournalEntry, JournalStatus
from hub.runtime import Runtime
from hub.web.event_schema import parse_event
from tests.conftest import migrated_sqlite
from tests.hub.events import event_json


def sms(sender: str) -> ChannelEvent:
    """An event exactly as POST /api/events builds it, so the processor can parse it again."""
    return parse_event(json.dumps(event_json(channel="sms", **{"from": sender})).encode())


def test_requests_arriving_during_a_commit_go_together_in_the_next(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    group_commit = hub.ingest._group_commit(runtime.database)
    write = group_commit._writer
    groups: list[int] = []
    first_started = threading.Event()

    def slow_write(arrivals: Sequence[Arrival]) -> list[int]:
        groups.append(len(arrivals))
        first_started.set()
        time.sleep(0.3)  # a slow disk: callers pile up behind this commit
        return write(arrivals)

    monkeypatch.setattr(group_commit, "_writer", slow_write)
    results: dict[int, int] = {}

    def submit(i: int) -> None:
        event = sms(f"+1415555{i:04d}")
        [results[i]] = receive(runtime.database, [event], source="api")
        # Returned means committed: a reader sees the journal row at once,
        # and the id returned is the row holding this caller's payload.
        entry = find_entry(runtime.database, results[i])
        assert entry is not None
        assert entry.status == JournalStatus.RECEIVED
        assert entry.payload == event.raw

    leader = threading.Thread(target=submit, args=(0,))
    leader.start()
    assert first_started.wait(5)
    followers = [threading.Thread(target=submit, args=(i,)) for i in range(1, 7)]
    for thread in followers:
        thread.start()
    for thread in [leader, *followers]:
        thread.join(10)

    assert sorted(results) == list(range(7))
    assert len(set(results.values())) == 7  # one journal row each, none shared
    assert groups[0] == 1
    assert sum(groups) == 7
    assert len(groups) <= 3  # the six followers shared at most two transactions
    # Received is not processed: the timeline is the processor's work.
    with runtime.database.read() as session:
        assert session.scalar(select(func.count()).select_from(Interaction)) == 0
    assert runtime.journal.drain() == 7
    with runtime.database.read() as session:
        assert session.scalar(select(func.count()).select_from(Interaction)) == 7


def test_a_group_failing_half_way_fails_every_caller_in_it_and_keeps_nothing(runtime: Runtime) -> None:
    group_commit = hub.ingest._group_commit(runtime.database)
    good = Arrival(sms("+14155550100"), "api", {})
    # No payload: the database refuses the second row after the first was
    # written, inside the one transaction of the group.
    broken = Arrival(dataclasses.replace(sms("+14155550101"), raw=None), "api", {})  # type: ignore[arg-type]
    with pytest.raises(Exception, match=r"(?i)null"):
        group_commit.submit([good, broken])
    assert received_backlog(runtime.database) == (0, None)
    with runtime.database.read() as session:
        assert session.scalar(select(func.count()).select_from(JournalEntry)) == 0
    # The next caller is not stuck behind the failed group.
    [journal_id] = receive(runtime.database, [sms("+14155550100")], source="api")
    assert runtime.journal.drain() == 1
    with runtime.database.read() as session:
        entry = session.get(JournalEntry, journal_id)
        assert entry is not None
        assert entry.status == JournalStatus.PROCESSED


def test_many_concurrent_callers_each_get_the_id_of_their_own_payload(runtime: Runtime) -> None:
    """Ids come from the rows one INSERT numbered: each must be its caller's, under real contention."""
    threads, per_thread = 12, 40
    sent: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def caller(t: int) -> None:
        try:
            for k in range(per_thread):
                event = sms(f"+1415{t:03d}{k:04d}")
                [journal_id] = receive(runtime.database, [event], source="api")
                assert journal_id not in sent
                sent[journal_id] = event.raw
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    workers = [threading.Thread(target=caller, args=(t,)) for t in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(60)
    assert errors == []
    assert len(sent) == threads * per_thread
    for journal_id, payload in list(sent.items())[::37]:
        entry = find_entry(runtime.database, journal_id)
        assert entry is not None
        assert entry.payload == payload
    # Processed, each entry keeps its id and its payload.
    assert runtime.journal.drain() == len(sent)
    with runtime.database.read() as session:
        stored = {row.id: row.payload for row in session.execute(select(JournalEntry.id, JournalEntry.payload))}
    assert stored == sent


def test_a_request_is_journaled_while_a_batch_holds_a_write_transaction(runtime: Runtime) -> None:
    """The journal processor's batch must not hold webhooks up (on SQLite: the inbox file, hub.inbox)."""
    holding, release = threading.Event(), threading.Event()

    def batch() -> None:
        with runtime.database.write() as session:
            session.execute(select(func.count()).select_from(Interaction))  # on SQLite: BEGIN IMMEDIATE
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=batch)
    thread.start()
    try:
        assert holding.wait(5)
        started = time.monotonic()
        [journal_id] = receive(runtime.database, [sms("+14155550199")], source="api")
        waited = time.monotonic() - started
    finally:
        release.set()
        thread.join(10)
    assert waited < 1.0
    entry = find_entry(runtime.database, journal_id)
    assert entry is not None
    assert entry.status == JournalStatus.RECEIVED


def test_dispose_closes_the_inbox_files_and_a_later_webhook_still_journals(tmp_path: Path) -> None:
    # Each app a process builds and disposes (tests, a reloading server) left its
    # inbox connections open: a thousand descriptors later the server could not answer.
    # SQLite only: the inbox is SQLite's journal file; PostgreSQL journals in the database.
    database = Database(f"sqlite:///{migrated_sqlite(tmp_path / 'corridor.db')}")
    assert database.inbox is not None
    inbox = str(database.inbox.path)

    def open_on_inbox() -> int:
        names = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the listing's own descriptor is gone
                names.append(os.readlink(f"/proc/self/fd/{fd}"))
        return sum(1 for name in names if name.startswith(inbox))

    receive(database, [sms("+14155550101")], source="test")
    assert open_on_inbox() > 0
    database.dispose()
    assert open_on_inbox() == 0
    # A later use opens them again, the group commit's writer too.
    [journal_id] = receive(database, [sms("+14155550102")], source="test")
    assert find_entry(database, journal_id) is not None
    database.dispose()
