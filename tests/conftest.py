"""Fixtures shared by the whole suite.

Every test that takes ``database_url`` (directly or through ``app``) runs twice:
on SQLite and on PostgreSQL. The PostgreSQL lane uses the private cluster from
tests.services; under CI=true it never skips.

Schemas are migrated once per session (the real Alembic migrations) and then
reset per test: SQLite by copying a migrated template file, PostgreSQL by
truncating every table. Both are a few milliseconds.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from hub import create_app
from hub.auth import create_agent
from hub.db import Database
from hub.migrate import upgrade
from hub.models import Base, Role
from hub.runtime import Runtime

pytest_plugins = ["tests.services"]

AppFactory = Callable[..., Flask]


def migrated_sqlite(path: Path) -> Path:
    """A new SQLite file at ``path`` with the real migrated schema, to copy empty databases from."""
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    database.dispose()
    # Fold the WAL into the file so that copying the file copies everything.
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("template") / "corridor.db")


@pytest.fixture(scope="session")
def postgres_migrated(postgres_url: str) -> str:
    database = Database(postgres_url)
    upgrade(database)
    database.dispose()
    return postgres_url


def _truncate_postgres(url: str) -> None:
    database = Database(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with database.write_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    database.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database: SQLite in one run of the test, PostgreSQL in the other."""
    if request.param == "sqlite":
        path = tmp_path / "corridor.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_migrated")
    _truncate_postgres(url)
    return url


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[AppFactory]:
    """Build a Corridor app on this test's database with extra settings.

    The process environment is not consulted, so a developer's HUB_* variables
    cannot change what a test sees.
    """
    apps: list[Flask] = []

    def factory(**sections: Mapping[str, Any]) -> Flask:
        overrides: dict[str, dict[str, Any]] = {
            "app": {"instance_dir": str(tmp_path / "instance"), "secret_key": "test-secret"},
            "database": {"url": database_url},
            # No background thread: a test processes the journal when it
            # chooses (settle()), so what it asserts never races a processor.
            "journal": {"processor": "worker"},
        }
        for section, values in sections.items():
            overrides.setdefault(section, {}).update(values)
        app = create_app(overrides=overrides, environ={})
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["corridor"].journal.stop()
        app.extensions["corridor"].database.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@contextmanager
def serving(app: Flask, port: int = 0, threads: int = 4) -> Iterator[str]:
    """``app`` served by waitress on loopback (a free port unless given), as ``corridor run`` does; yields its URL."""
    from waitress import create_server

    from hub.cli import WAITRESS_OPTIONS

    # As `corridor run` configures it: a long test process, like a busy server,
    # holds descriptors past select()'s limit of 1024.
    server = create_server(app, host="127.0.0.1", port=port, threads=threads, **WAITRESS_OPTIONS)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Stop accepting, then close the connections clients (a browser) kept alive,
        # so the server loop (which runs while it has sockets) returns.
        server.close()
        for channel in list(server._map.values()):
            channel.close()
        server.task_dispatcher.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """The app served by waitress on a free loopback port; yields its base URL."""
    with serving(app) as url:
        yield url


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    runtime: Runtime = app.extensions["corridor"]
    return runtime


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def make_agent(runtime: Runtime, role: Role, email: str | None = None, password: str | None = None) -> str:
    """A new agent with ``role``; returns their API token."""
    with runtime.database.write() as session:
        _, token = create_agent(
            session, email=email or f"{role.value}@corridor.test", name=role.value.title(), role=role,
            password=password,
        )  # fmt: skip
    return token


@pytest.fixture
def admin_token(runtime: Runtime) -> str:
    return make_agent(runtime, Role.ADMIN)


@pytest.fixture
def auth(admin_token: str) -> dict[str, str]:
    """Headers of an admin's API requests."""
    return {"Authorization": f"Bearer {admin_token}"}
