"""What every benchmark shares: apps on temp databases, timing, results, memory."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from hub import create_app
from hub.customers import add_identity
from hub.db import Database
from hub.events import IdentityKind
from hub.journal import received_backlog
from hub.models import Customer
from hub.runtime import Runtime
from tests.bench.workload import Person
from tests.conftest import migrated_sqlite


@dataclass(frozen=True)
class Result:
    """One line of the summary table."""

    name: str
    figure: float
    unit: str
    baseline: float | None
    baseline_label: str
    #: Whether a bigger figure is better (rates) or a smaller one (latencies).
    higher_is_better: bool
    target: str
    passed: bool
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.figure / self.baseline


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark runs; ``--quick`` shrinks them for a smoke run."""

    ingest_events: int
    batch: int
    big_events: int
    sample_every: int
    http_seconds: float
    http_max_requests: int
    latency_runs: int


FULL = Sizes(100_000, 1_000, 1_000_000, 100_000, 10.0, 200_000, 2_000)
QUICK = Sizes(20_000, 1_000, 100_000, 10_000, 3.0, 50_000, 300)


class Workspace:
    """A temp directory and a migrated template database to copy from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._template: Path | None = None

    def template(self) -> Path:
        if self._template is None:
            self._template = migrated_sqlite(self.root / "template.db")
        return self._template

    def fresh_db(self, name: str) -> Path:
        """A new SQLite file with the real migrated schema."""
        path = self.root / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template(), path)
        return path

    def app(self, db_path: Path, name: str) -> Flask:
        """A Corridor app exactly as ``create_app`` builds it, on ``db_path``.

        The process environment is ignored (``environ={}``) so a developer's
        HUB_* variables cannot change the figures; everything else is the
        shipped default configuration (WAL, synchronous=NORMAL, FTS5).
        """
        return create_app(overrides=self.overrides(db_path, name), environ={})

    def overrides(self, db_path: Path, name: str) -> dict[str, dict[str, Any]]:
        """The settings ``app`` builds its app with, over the shipped defaults."""
        return {
            "app": {"instance_dir": str(self.root / f"instance-{name}"), "secret_key": "bench"},
            "database": {"url": f"sqlite:///{db_path}"},
        }


def runtime_of(app: Flask) -> Runtime:
    runtime: Runtime = app.extensions["corridor"]
    return runtime


def seed_people(runtime: Runtime, people: Sequence[Person]) -> dict[int, int]:
    """Known customers with email and phone linked, through the hub's own service.

    Returns person index -> customer id. Not timed: this is the state a
    deployment has before the traffic we measure.
    """
    ids: dict[int, int] = {}
    region = runtime.pipeline.default_region
    with runtime.database.write() as session:
        for person in people:
            customer = Customer(display_name=person.name)
            session.add(customer)
            session.flush()
            add_identity(session, customer.id, IdentityKind.EMAIL, person.email, actor_id=None, default_region=region)
            add_identity(session, customer.id, IdentityKind.PHONE, person.phone, actor_id=None, default_region=region)
            ids[person.index] = customer.id
    return ids


def checkpoint(path: Path) -> None:
    """Fold the WAL into the main file, so one run's WAL does not tax the next."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 100 samples is the 99th)."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # reported in kB
    raise LookupError(field)


def rss_mb() -> float:
    """Current resident set size of this process (not the peak)."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """The largest resident set size so far (VmHWM, the same accounting as VmRSS)."""
    return _status_mb("VmHWM")


def say(message: str) -> None:
    print(message, flush=True)


def hub_environ(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """This process's environment without HUB_* variables, plus ``overrides`` as HUB_* variables.

    For a child process (``corridor worker``) that must run with exactly the
    settings an app here was built with from ``overrides``.
    """
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    for section, values in overrides.items():
        for key, value in values.items():
            environ[f"HUB_{section.upper()}_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return environ


def wait_drained(db: Path, timeout: float = 300.0) -> tuple[int, float]:
    """Wait until the journal processor has taken every received entry; (backlog at the start, seconds waited)."""
    started = time.perf_counter()
    database = Database(f"sqlite:///{db}")
    try:
        backlog = received_backlog(database)[0]
        left = backlog
        while left:
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{left} journal entries still received after {timeout:.0f} s: is the worker up?")
            time.sleep(0.02)
            left = received_backlog(database)[0]
    finally:
        database.dispose()
    return backlog, time.perf_counter() - started


@contextmanager
def temporary_workspace(prefix: str, keep: bool) -> Iterator[Workspace]:
    """A Workspace in a new temporary directory, removed afterwards unless ``keep``."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield Workspace(root)
    finally:
        if keep:
            say(f"\nkept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
