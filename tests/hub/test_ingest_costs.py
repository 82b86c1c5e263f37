"""What a batch costs in statements: lookups stay per batch, never per event."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import nh3
import pytest
from sqlalchemy import Engine, select
from sqlalchemy import event as sa_event

from hub.db import Database
from hub.events import ChannelEvent, Direction
from hub.ingest import ingest_many
from hub.models import Conversation, Interaction, JournalEntry
from hub.runtime import Runtime
from hub.sanitise import sanitise_html
from tests.hub.events import at, event

# Replies far apart, so that no conversation is still open for the
# continuation window and only the references can thread them.
MONTH_IN_HOURS = 24 * 30
_FROM_CONVERSATION = re.compile(r"\bFROM conversation\b", re.IGNORECASE)


@contextmanager
def statements_on(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)


def _reply(chain: int, depth: int) -> ChannelEvent:
    ids = [f"<chain{chain}-{n}@mail.test>" for n in range(depth + 1)]
    return event(
        sender=f"customer{chain}@example.com",
        hours=depth * MONTH_IN_HOURS + chain / 100,
        external_id=ids[-1],
        thread_refs=tuple(reversed(ids[:-1])),
        subject=f"Order {chain}",
        text=f"message {depth} about order {chain}",
    )


def test_referenced_conversations_load_in_one_statement_per_batch(runtime: Runtime) -> None:
    chains = 40
    with runtime.database.write() as session:
        first = ingest_many(session, [_reply(c, 0) for c in range(chains)], source="test")
    conversation_of = {c: r.conversation_id for c, r in enumerate(first)}
    assert len(set(conversation_of.values())) == chains

    replies = [_reply(c, depth) for depth in (1, 2) for c in range(chains)]
    with statements_on(runtime.database.write_engine) as seen, runtime.database.write() as session:
        results = ingest_many(session, replies, source="test")

    assert [r.error for r in results] == [None] * len(replies)
    assert [r.conversation_id for r in results] == [conversation_of[c] for _ in (1, 2) for c in range(chains)]
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT") and _FROM_CONVERSATION.search(s)]
    # The customers' open conversations, and the referenced ones: one each,
    # however many conversations the batch names.
    assert len(reads) <= 2, reads


def test_an_agent_reply_naming_no_conversation_still_fails_alone(runtime: Runtime) -> None:
    # The bulk load leaves a missing id out; the event fails as it did when
    # each conversation was looked up on its own, and its batch-mates don't.
    items = [_reply(1, 0), event(hours=1, conversation_id=10**9, text="into the void"), _reply(2, 0)]
    with runtime.database.write() as session:
        results = ingest_many(session, items, source="test")
    assert [r.error is None for r in results] == [True, False, True]


def test_conversations_by_id_seek_the_primary_key_on_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "plans.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    statement = select(Conversation.id, Conversation.status).where(Conversation.id.in_([3, 1, 2]))
    try:
        with database.write_engine.connect() as connection:
            compiled = statement.compile(connection, compile_kwargs={"literal_binds": True})
            plan = " | ".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
    finally:
        database.dispose()
    assert "SCAN" not in plan, plan
    assert "SEARCH" in plan, plan


def test_ingest_many_takes_one_context_for_all_or_one_per_item(runtime: Runtime) -> None:
    items = [event(sender=f"c{i}@example.com") for i in range(3)]
    with runtime.database.write() as session:
        with pytest.raises(ValueError, match="one per item"):
            ingest_many(session, items, source="test", contexts=[{}, {}])
        with pytest.raises(ValueError, match="one per item"):
            ingest_many(session, items, source="test", context={}, contexts=[{}, {}, {}])
        ingest_many(session, items, source="test", contexts=[{"n": i} for i in range(3)])
    with runtime.database.read() as session:
        contexts = session.scalars(select(JournalEntry.context).order_by(JournalEntry.id)).all()
    assert contexts == [{"n": 0}, {"n": 1}, {"n": 2}]  # each item journaled with its own


def test_html_is_sanitised_once_on_its_way_to_the_timeline(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    cleaned: list[str] = []
    real_clean = nh3.clean

    def counting_clean(html: str, **options: Any) -> str:
        cleaned.append(html)
        return real_clean(html, **options)

    monkeypatch.setattr(nh3, "clean", counting_clean)
    # What the email parser hands over: HTML it sanitised itself.
    from_parser = sanitise_html('<p onclick="steal()">Parcel damaged</p><script>steal()</script>')
    from_elsewhere = '<p onmouseover="steal()">Parcel lost</p><script>steal()</script>'
    assert len(cleaned) == 1

    with runtime.database.write() as session:
        results = ingest_many(session, [event(html=from_parser), event(html=from_elsewhere)], source="test")

    # Only the HTML nobody had sanitised went through the sanitiser again, and both are stored safe.
    assert cleaned[1:] == [from_elsewhere]
    with runtime.database.read() as session:
        stored = [session.get(Interaction, result.interaction_id) for result in results]
    assert [interaction.html for interaction in stored if interaction is not None] == [
        "<p>Parcel damaged</p>",
        "<p>Parcel lost</p>",
    ]


def test_a_batch_writes_its_waiting_clocks_in_one_statement_each_however_many_conversations_it_touches(
    runtime: Runtime,
) -> None:
    # A batch of visitors' chat messages touches as many conversations as it
    # has messages; each conversation's clock still ends where its own events put it.
    customers = 30
    with runtime.database.write() as session:
        first = ingest_many(
            session, [event(sender=f"w{c}@example.com", hours=c / 100) for c in range(customers)], source="test"
        )
    conversation_of = {c: r.conversation_id for c, r in enumerate(first)}
    assert len(set(conversation_of.values())) == customers

    batch = []
    for c in range(customers):
        batch.append(event(sender=f"w{c}@example.com", hours=1 + c / 100, text="still waiting"))
        if c % 3 != 2:  # answered; for c % 3 == 1 the customer writes again after the answer
            batch.append(event(sender=f"w{c}@example.com", hours=2 + c / 100, direction=Direction.OUTBOUND))
        if c % 3 == 1:
            batch.append(event(sender=f"w{c}@example.com", hours=3 + c / 100, text="one more thing"))
    with statements_on(runtime.database.write_engine) as seen, runtime.database.write() as session:
        results = ingest_many(session, batch, source="test")

    assert [r.error for r in results] == [None] * len(batch)
    assert {r.conversation_id for r in results} == set(conversation_of.values())
    with runtime.database.read() as session:
        clocks = {
            row.id: row.waiting_since for row in session.execute(select(Conversation.id, Conversation.waiting_since))
        }
    expected = {0: None, 1: at(3), 2: at(0)}
    for c in range(customers):
        want = expected[c % 3]
        assert clocks[conversation_of[c]] == (want + timedelta(hours=c / 100) if want else None), c
    writes = [s for s in seen if s.lstrip().upper().startswith("UPDATE CONVERSATION SET WAITING_SINCE")]
    # Answered, and still waiting: one statement each for the whole batch.
    assert len(writes) <= 2, writes
