"""Live updates to agents' consoles.

The ingest pipeline publishes after commit: a subscriber never hears of data
that a rollback then took back. In-process for now; a multi-process deployment
swaps this for PostgreSQL LISTEN/NOTIFY behind the same two methods.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Notification = dict[str, Any]
Subscriber = Callable[[Notification], None]


class Notifier:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Start hearing notifications; returns the function that stops it."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, notification: Notification) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(notification)
            except Exception:
                log.exception("live-update subscriber failed")
