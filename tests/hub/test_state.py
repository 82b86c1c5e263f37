"""Connector cursors commit with the data they cover, or not at all."""

from __future__ import annotations

import pytest

from hub.events import Channel
from hub.ingest import ingest
from hub.models import Interaction
from hub.runtime import Runtime
from hub.state import all_state, load_state, save_state
from tests.hub.events import event


def test_a_cursor_is_saved_with_its_batch_and_rolled_back_with_it(runtime: Runtime) -> None:
    with runtime.database.write() as session:
        ingest(session, event(Channel.EMAIL, "ana@example.com"), source="test")
        save_state(session, "email", "support/INBOX", {"uidvalidity": 7, "last_uid": 1})

    def interrupted_pass() -> None:
        with runtime.database.write() as session:
            ingest(session, event(Channel.EMAIL, "ana@example.com", hours=1), source="test")
            save_state(session, "email", "support/INBOX", {"uidvalidity": 7, "last_uid": 2})
            raise RuntimeError("connection lost before commit")

    with pytest.raises(RuntimeError):
        interrupted_pass()

    with runtime.database.read() as session:
        assert load_state(session, "email", "support/INBOX") == {"uidvalidity": 7, "last_uid": 1}
        assert session.query(Interaction).count() == 1
        assert all_state(session, "email") == {"support/INBOX": {"uidvalidity": 7, "last_uid": 1}}
        assert load_state(session, "email", "other") is None
