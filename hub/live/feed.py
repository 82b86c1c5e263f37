"""The one reader of the live feed in a stream process.

A single thread per process follows ``live_event`` and hands each batch of
new events to a callback; a thousand open streams cost one query per wake-up,
not one each. It is an OS thread on purpose: sqlite3 calls block whatever
runs them, and the stream server's event loop must never wait for the
database.

Wake-ups: on PostgreSQL a ``LISTEN corridor_live`` connection (the publisher's
``NOTIFY`` arrives at its commit), with a poll every ``fallback_interval`` in
case a notification is lost with a dropped connection; on SQLite a poll every
``poll_interval`` (a primary-key range read: microseconds when nothing is new).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from hub.db import Database
from hub.live import CHANNEL, FeedEvent, events_after, position

log = logging.getLogger(__name__)

#: Most events read per query; a busier feed is read in several.
BATCH = 500


class FeedReader:
    """Follows the feed from its current end; ``on_events`` gets new events in id order."""

    def __init__(
        self,
        database: Database,
        on_events: Callable[[list[FeedEvent]], None],
        *,
        poll_interval: float = 0.05,
        fallback_interval: float = 1.0,
    ) -> None:
        self.database = database
        self.on_events = on_events
        self.poll_interval = poll_interval
        self.fallback_interval = fallback_interval
        #: The newest event handed on; every event up to it has been.
        self.position = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        with self.database.read() as session:
            self.position = position(session)
        self._thread = threading.Thread(target=self._run, name="live feed reader", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.database.dialect == "postgresql":
                    self._follow_postgres()
                else:
                    self._ready.set()
                    while not self._stop.is_set():
                        self.read_new()
                        self._stop.wait(self.poll_interval)
            except Exception:
                # A database restart or a dropped connection: read again from
                # where we were once it is back; nothing is lost, the table holds it.
                log.exception("live feed reader failed; retrying in 1 s")
                self._ready.set()
                self._stop.wait(1.0)

    def _follow_postgres(self) -> None:
        url = make_url(self.database.url).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self._ready.set()
            # Events committed before LISTEN took effect are read here.
            self.read_new()
            while not self._stop.is_set():
                for _ in connection.notifies(timeout=self.fallback_interval, stop_after=1):
                    pass
                self.read_new()

    def read_new(self) -> int:
        """Hand on every event after :attr:`position`; returns how many."""
        total = 0
        while True:
            with self.database.read() as session:
                events = events_after(session, self.position, limit=BATCH)
            if not events:
                return total
            self.position = events[-1].id
            total += len(events)
            try:
                self.on_events(events)
            except Exception:
                log.exception("live feed subscriber failed")
            if len(events) < BATCH:
                return total
