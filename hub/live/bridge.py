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
from hub.waiting import on_written

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
                    with database.write() as session:
                        on_written(session, batch)
                except Exception:
                    log.exception("copying %d notifications into the live feed failed", len(batch))
        finally:
            database.dispose()
