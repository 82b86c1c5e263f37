"""Leases: one holder at a time, renewed by its holder, taken over once it lapses."""

from __future__ import annotations

import time
from datetime import timedelta

from hub.leases import holds_lease, lease_holder, release_lease, take_lease
from hub.runtime import Runtime

PERIOD = timedelta(seconds=30)


def test_one_holder_at_a_time_and_its_renewals(runtime: Runtime) -> None:
    database = runtime.database
    assert take_lease(database, "email:support/INBOX", "a", PERIOD)
    assert not take_lease(database, "email:support/INBOX", "b", PERIOD)
    assert take_lease(database, "email:support/INBOX", "a", PERIOD)
    assert lease_holder(database, "email:support/INBOX") == "a"
    # Another name is another lease.
    assert take_lease(database, "email:support/Sent", "b", PERIOD)


def test_a_lapsed_lease_is_taken_over_and_its_old_holder_finds_out(runtime: Runtime) -> None:
    database = runtime.database
    assert take_lease(database, "folder", "dead", timedelta(milliseconds=200))
    assert not take_lease(database, "folder", "successor", PERIOD)
    time.sleep(0.3)
    assert take_lease(database, "folder", "successor", PERIOD)
    assert lease_holder(database, "folder") == "successor"
    with database.write() as session:
        assert holds_lease(session, "folder", "successor")
        assert not holds_lease(session, "folder", "dead")
    # The old holder cannot renew what it lost.
    assert not take_lease(database, "folder", "dead", PERIOD)


def test_a_released_lease_is_free_at_once_and_only_its_holder_releases_it(runtime: Runtime) -> None:
    database = runtime.database
    assert take_lease(database, "folder", "a", PERIOD)
    release_lease(database, "folder", "b")
    assert lease_holder(database, "folder") == "a"
    release_lease(database, "folder", "a")
    assert lease_holder(database, "folder") is None
    assert take_lease(database, "folder", "b", PERIOD)
