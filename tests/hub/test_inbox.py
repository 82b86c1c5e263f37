"""The inbox: on SQLite, what webhooks receive is journaled in a file of its own (hub.inbox).

These tests hold it to what the journal promises: an entry is never lost or
processed twice across a crash between the two files, ids are never given
twice, and a database and an inbox that do not belong together stop the
processor instead of losing anything.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.db import Database
from hub.events import ChannelEvent
from hub.inbox import COLUMNS, Inbox, InboxCollision, inbox_path
from hub.ingest import ingest_many, receive
from hub.journal import find_entry, process_received, received_backlog
from hub.models import Interaction, JournalEntry, JournalStatus
from hub.runtime import Runtime
from hub.web.event_schema import parse_event
from tests.hub.events import event_json


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only: PostgreSQL journals received entries in the journal table, row locks keeping writers apart."""
    path = tmp_path / "corridor.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def api_event(sender: str) -> ChannelEvent:
    return parse_event(json.dumps(event_json(channel="sms", **{"from": sender})).encode())


def inbox_of(runtime: Runtime) -> Inbox:
    inbox = runtime.database.inbox
    assert inbox is not None
    return inbox


def journal_rows(runtime: Runtime) -> dict[int, str]:
    with runtime.database.read() as session:
        return {row.id: str(row.status) for row in session.execute(select(JournalEntry.id, JournalEntry.status))}


def interactions(runtime: Runtime) -> int:
    with runtime.database.read() as session:
        return int(session.scalar(select(func.count()).select_from(Interaction)) or 0)


def test_the_inbox_holds_every_column_a_received_entry_is_written_with_as_the_journal_does(runtime: Runtime) -> None:
    receive(runtime.database, [api_event("+14155550100")], source="api")
    inbox = inbox_of(runtime)
    assert inbox.path == inbox.database_path.with_name("corridor.inbox.db")
    with sqlite3.connect(inbox.path) as connection:
        columns = {row[1]: bool(row[3]) for row in connection.execute("PRAGMA table_info(received)")}
    table = JournalEntry.__table__
    assert set(COLUMNS) <= set(table.c.keys())
    for name in COLUMNS:
        assert columns[name] == (not table.c[name].nullable), name


def test_received_entries_wait_in_the_inbox_and_move_to_the_journal_when_processed(runtime: Runtime) -> None:
    ids = receive(runtime.database, [api_event(f"+1415555010{i}") for i in range(3)], source="api")
    assert journal_rows(runtime) == {}
    assert received_backlog(runtime.database)[0] == 3
    entry = find_entry(runtime.database, ids[1])
    assert entry is not None
    assert entry.status == JournalStatus.RECEIVED
    assert entry.received_at.tzinfo is not None

    assert runtime.journal.drain() == 3
    assert journal_rows(runtime) == dict.fromkeys(ids, "processed")
    assert received_backlog(runtime.database) == (0, None)
    assert inbox_of(runtime).oldest(10) == []


def test_a_crash_after_the_commit_and_before_the_inbox_is_cleared_processes_nothing_twice(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = receive(runtime.database, [api_event(f"+1415555020{i}") for i in range(4)], source="api")

    def killed(self: Inbox, entry_ids: object) -> None:
        raise OSError("killed")

    monkeypatch.setattr(Inbox, "forget", killed)
    with pytest.raises(OSError, match="killed"):
        process_received(runtime.database, runtime.registry)
    # Committed in the database, still in the inbox: in both files.
    assert journal_rows(runtime) == dict.fromkeys(ids, "processed")
    assert [w.id for w in inbox_of(runtime).oldest(10)] == ids
    assert interactions(runtime) == 4

    monkeypatch.undo()
    # The next pass finds them journaled: it only clears the inbox.
    assert runtime.journal.drain() == 4
    assert inbox_of(runtime).oldest(10) == []
    assert journal_rows(runtime) == dict.fromkeys(ids, "processed")
    assert interactions(runtime) == 4


def test_entries_journaled_straight_to_the_journal_never_take_an_id_the_inbox_gave(runtime: Runtime) -> None:
    first = receive(runtime.database, [api_event("+14155550300")], source="api")
    with runtime.database.write() as session:
        # As mail intake does: journal and timeline in one transaction.
        direct = [r.journal_id for r in ingest_many(session, [api_event("+14155550301")], source="api")]
    second = receive(runtime.database, [api_event("+14155550302")], source="api")
    assert first[0] < direct[0] < second[0]

    assert runtime.journal.drain() == 2
    assert journal_rows(runtime) == {first[0]: "processed", direct[0]: "processed", second[0]: "processed"}


def test_a_new_inbox_numbers_after_everything_the_journal_holds(runtime: Runtime) -> None:
    with runtime.database.write() as session:
        direct = [
            r.journal_id
            for r in ingest_many(session, [api_event(f"+141555504{i:02d}") for i in range(5)], source="api")
        ]
    runtime.database.dispose()
    inbox = inbox_of(runtime)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{inbox.path}{suffix}").unlink(missing_ok=True)

    # Another process starting on this database, with the inbox file gone.
    database = Database(runtime.database.url)
    assert database.inbox is not None
    [fresh] = database.inbox.allocate(1)
    assert fresh > max(direct)


def test_an_inbox_that_does_not_belong_to_the_database_stops_the_processor_and_loses_nothing(
    runtime: Runtime,
) -> None:
    with runtime.database.write() as session:
        [taken] = [r.journal_id for r in ingest_many(session, [api_event("+14155550500")], source="api")]
    inbox = inbox_of(runtime)
    [pending] = receive(runtime.database, [api_event("+14155550501")], source="api")
    # An inbox restored from another backup: it holds an entry under an id
    # the journal has since given to another.
    with sqlite3.connect(inbox.path) as connection:
        connection.execute("UPDATE received SET id = ? WHERE id = ?", (taken, pending))

    with pytest.raises(InboxCollision, match="restored from different backups"):
        process_received(runtime.database, runtime.registry)
    assert [w.id for w in inbox.oldest(10)] == [taken]  # kept, for an admin
    with runtime.database.read() as session:
        entry = session.get(JournalEntry, taken)
        assert entry is not None
        assert entry.source == "api"  # not overwritten


def test_inbox_path_sits_beside_the_database() -> None:
    assert inbox_path(Path("/var/lib/corridor/corridor.db")) == Path("/var/lib/corridor/corridor.inbox.db")
    assert inbox_path(Path("/data/hub")) == Path("/data/hub.inbox.db")
