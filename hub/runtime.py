"""Wiring in one place: settings -> database, search, pipeline, connectors.

Everything Corridor runs with is built here from validated settings, so the
app, the CLI, the worker and the tests share one way to start.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from flask import current_app

from hub.auth import TokenCache
from hub.config import HubSettings, Settings
from hub.db import Database
from hub.ingest import PIPELINE_KEY, PipelineConfig
from hub.journal import JournalProcessor
from hub.registry import Registry, load_connectors
from hub.search import SearchBackend, make_backend
from hub.web.event_schema import parse_event


@dataclass
class Runtime:
    settings: Settings
    hub: HubSettings
    instance_dir: Path
    database: Database
    search: SearchBackend
    pipeline: PipelineConfig
    registry: Registry
    #: Puts received journal entries on the timeline ([journal] processor).
    journal: JournalProcessor
    #: Places for ``POST /api/events?wait`` requests waiting for processing
    #: ([journal] max_waiting); one who finds none answers at once.
    waiting: threading.BoundedSemaphore
    tokens: TokenCache = field(default_factory=TokenCache)

    @property
    def secret_key(self) -> str:
        if self.hub.app.secret_key:
            return self.hub.app.secret_key
        # One machine: a key generated once and kept beside the database.
        path = self.instance_dir / "secret_key"
        if not path.exists():
            self.instance_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def build_runtime(settings: Settings) -> Runtime:
    hub = HubSettings.from_settings(settings)
    instance_dir = Path(hub.app.instance_dir).resolve()
    url = hub.database.url or f"sqlite:///{instance_dir / 'corridor.db'}"
    database = Database(
        url,
        sqlite_synchronous=hub.database.sqlite_synchronous.upper(),
        pool_size=hub.database.pool_size,
    )
    search = make_backend(hub.search.backend, database.dialect, hub.search, database)
    pipeline = PipelineConfig(
        default_region=hub.identity.default_region.upper(),
        continuation_window=timedelta(hours=hub.threading.window_hours),
        search=search,
    )
    database.session_info[PIPELINE_KEY] = pipeline
    registry = Registry(settings=settings, database=database)
    # The generic event API's payloads replay like any connector's.
    registry.add_parser("api", lambda raw, _context: [parse_event(raw)])
    load_connectors(registry, hub.app.connectors)
    # Imported here: the reports' views import this module (current_runtime).
    from hub.reports import init_reports

    init_reports(registry)
    journal = JournalProcessor(
        database, registry, batch_size=hub.journal.batch_size, poll_interval=hub.journal.poll_interval
    )
    if hub.journal.processor == "web":
        journal.attach()
    return Runtime(
        settings=settings,
        hub=hub,
        instance_dir=instance_dir,
        database=database,
        search=search,
        pipeline=pipeline,
        registry=registry,
        journal=journal,
        waiting=threading.BoundedSemaphore(hub.journal.max_waiting),
    )


def current_runtime() -> Runtime:
    """The runtime of the Flask app handling this request or command."""
    runtime: Runtime = current_app.extensions["corridor"]
    return runtime
