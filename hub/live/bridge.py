"""TEMPORARY: the write path's after-commit notifications, copied into the live feed.

``hub.ingest`` (being restructured into ``hub/ingest/`` by another change,
so not edited here) still announces what it did through the after-commit
``Notifier``. Until its notify step calls :func:`hub.waiting.on_written`
inside its transaction, this bridge writes those notifications into the feed
in a second transaction, from a thread of its own, so consoles update today.
The price while it lasts: an event can be lost if the process dies between
the two commits. Remove this module and its line in ``hub.runtime`` when the
write path publishes itself.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from hub.db import Database
from hub.live import announce_ingest
from hub.waiting import set_clock, waiting_clocks

log = logging.getLogger(__name__)


class NotifierBridge:
    """Subscribe :meth:`put` to the Notifier; a thread writes what arrives to the feed, in batches.

    The thread has an engine of its own and ends (disposing it) once idle
    for :attr:`IDLE` seconds, so disposing the app's database never strands
    one of its connections mid-write.
    """

    IDLE = 0.5

    def __init__(self, database: Database) -> None:
        self.url = database.url
        self._queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, notification: dict[str, Any]) -> None:
        with self._lock:
            self._queue.put(notification)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="live bridge", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        database = Database(self.url)
        try:
            while True:
                try:
                    batch = [self._queue.get(timeout=self.IDLE)]
                except queue.Empty:
                    with self._lock:
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                try:
                    self._write(database, batch)
                except Exception:
                    log.exception("copying %d notifications into the live feed failed", len(batch))
        finally:
            database.dispose()

    @staticmethod
    def _write(database: Database, batch: list[dict[str, Any]]) -> None:
        # Each conversation's clock in a transaction of its own: this runs
        # beside the write path, and a transaction here holding one
        # conversation's row lock while waiting for another's could deadlock
        # with a batch doing the same in the other order. (In the write path's
        # own transaction, hub.waiting.on_written does it all at once.)
        with database.read() as session:
            clocks = waiting_clocks(session, batch)
        for conversation_id in sorted(clocks):
            with database.write() as session:
                set_clock(session, conversation_id, clocks[conversation_id])
        with database.write() as session:
            announce_ingest(session, batch)
