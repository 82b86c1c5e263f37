"""The worker loop: dispatch the feed, send what is due, record outcomes (``corridor worker``)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

from hub.db import Database
from hub.integrations import WebhookSettings
from hub.integrations.delivery import claim_due, record, send
from hub.integrations.dispatch import dispatch
from hub.integrations.targets import Resolver

log = logging.getLogger(__name__)


class WebhookWorker:
    """One loop per worker process; a pool of [webhooks] concurrency threads makes the requests."""

    def __init__(self, database: Database, settings: WebhookSettings, resolver: Resolver | None = None) -> None:
        self.database = database
        self.settings = settings
        self.resolver = resolver

    def step(self, pool: ThreadPoolExecutor) -> int:
        """One pass; returns how much it did (0: idle)."""
        with self.database.write() as session:
            done = dispatch(session, self.settings)
        with self.database.write() as session:
            claimed = claim_due(session, self.settings, limit=self.settings.concurrency)
        futures = [pool.submit(send, c, self.settings, self.resolver) for c in claimed]
        for future in as_completed(futures):
            outcome = future.result()
            # Each outcome is recorded as soon as it is known: a kill later loses no acknowledgement but this one.
            with self.database.write() as session:
                record(session, self.settings, outcome)
        return done + len(claimed)

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: pass after pass, resting [webhooks] poll_interval when idle."""
        with ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="webhook") as pool:
            while not stop.is_set():
                try:
                    busy = self.step(pool)
                except Exception:
                    log.exception("webhook delivery failed; trying again in 1 s")
                    stop.wait(1.0)
                    continue
                if not busy:
                    stop.wait(self.settings.poll_interval)
