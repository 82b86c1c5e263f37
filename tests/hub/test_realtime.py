"""Live updates reach agents only for data that committed."""

from __future__ import annotations

from typing import Any

import pytest

from hub.events import Channel
from hub.ingest import ingest
from hub.runtime import Runtime
from tests.hub.events import event


def test_notifications_fire_after_commit_and_never_after_rollback(runtime: Runtime) -> None:
    heard: list[dict[str, Any]] = []
    stop = runtime.notifier.subscribe(heard.append)

    with runtime.database.write() as session:
        result = ingest(session, event(Channel.SMS, "+14155550100"), source="test")
        assert heard == []  # not before the commit
    assert [(n["type"], n["interaction_id"]) for n in heard] == [("interaction.created", result.interaction_id)]

    def rolled_back() -> None:
        with runtime.database.write() as session:
            ingest(session, event(Channel.SMS, "+14155550101"), source="test")
            raise RuntimeError("request aborted")

    with pytest.raises(RuntimeError):
        rolled_back()
    assert len(heard) == 1

    stop()
    with runtime.database.write() as session:
        ingest(session, event(Channel.SMS, "+14155550102"), source="test")
    assert len(heard) == 1
