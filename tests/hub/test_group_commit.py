"""Group commit: concurrent requests share a transaction, and each answers only after it committed."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from hub.events import Channel
from hub.ingest import IngestResult, accept
from hub.models import Interaction, JournalEntry
from hub.runtime import Runtime
from tests.hub.events import event


def test_requests_arriving_during_a_commit_go_together_in_the_next(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = runtime.search.index
    calls: list[int] = []
    first_started = threading.Event()

    def slow_index(session: object, documents: list[object]) -> None:
        calls.append(len(documents))
        first_started.set()
        time.sleep(0.3)  # a slow disk: callers pile up behind this commit
        index(session, documents)  # type: ignore[arg-type]

    monkeypatch.setattr(runtime.search, "index", slow_index)
    results: dict[int, IngestResult] = {}

    def submit(i: int) -> None:
        [results[i]] = accept(runtime.database, [event(Channel.SMS, f"+1415555{i:04d}")], source="api")
        # Returned means committed: a reader sees the interaction at once.
        with runtime.database.read() as session:
            assert session.get(Interaction, results[i].interaction_id) is not None

    leader = threading.Thread(target=submit, args=(0,))
    leader.start()
    assert first_started.wait(5)
    followers = [threading.Thread(target=submit, args=(i,)) for i in range(1, 7)]
    for thread in followers:
        thread.start()
    for thread in [leader, *followers]:
        thread.join(10)

    assert sorted(results) == list(range(7))
    assert calls[0] == 1
    assert sum(calls) == 7
    assert len(calls) <= 3  # the six followers shared at most two transactions


def test_a_failed_group_commit_fails_every_caller_in_it_and_keeps_nothing(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_write() -> object:
        raise OSError("database is on fire")

    monkeypatch.setattr(runtime.database, "write", broken_write)
    with pytest.raises(OSError, match="on fire"):
        accept(runtime.database, [event(Channel.SMS, "+14155550100")], source="api")
    monkeypatch.undo()
    with runtime.database.read() as session:
        assert session.scalar(select(func.count()).select_from(JournalEntry)) == 0
    # The next caller is not stuck behind the failed group.
    [result] = accept(runtime.database, [event(Channel.SMS, "+14155550100")], source="api")
    assert result.interaction_id is not None
