"""The migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from hub.db import Database
from hub.migrate import current_revision, downgrade, head_revision, upgrade
from hub.models import Base
from tests.services import fresh_postgres_database


def _check_upgrade_matches_models(database: Database) -> None:
    upgrade(database)
    assert current_revision(database) == head_revision(database)
    with database.write_engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_object": lambda o, name, *a: not (name or "").startswith(
                ("interaction_fts", "ix_interaction_search"))},
        )  # fmt: skip
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], f"models and migrations disagree: {differences}"
    downgrade(database, "base")
    assert set(inspect(database.write_engine).get_table_names()) <= {"alembic_version"}
    upgrade(database)


def test_migrations_apply_to_an_empty_sqlite_and_match_the_models(tmp_path: object) -> None:
    database = Database(f"sqlite:///{tmp_path}/empty.db")
    try:
        _check_upgrade_matches_models(database)
        with database.write_engine.connect() as connection:
            tables = {r[0] for r in connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "interaction_fts" in tables
    finally:
        database.dispose()


def test_migrations_apply_to_an_empty_postgresql_and_match_the_models(postgres_url: str) -> None:
    database = Database(fresh_postgres_database(postgres_url, "corridor_migrations"))
    try:
        _check_upgrade_matches_models(database)
        indexes = {i["name"] for i in inspect(database.write_engine).get_indexes("interaction")}
        assert "ix_interaction_search" in indexes
    finally:
        database.dispose()
