"""Schema migrations with Alembic, driven from Corridor's own settings.

``corridor db upgrade`` (and ``corridor run``) apply them; there is no
alembic.ini to keep in step with the settings.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from hub.db import Database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option(
        "file_template", "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s"
    )
    config.attributes["engine"] = database.write_engine
    return config


#: The PostgreSQL advisory lock migrations run under (any number; this one is Corridor's).
MIGRATION_LOCK = 0x636F7272


def upgrade(database: Database, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; on PostgreSQL, one process at a time.

    Every ``corridor run`` and ``corridor worker`` upgrades as it starts, and
    a deployment starts several at once: on PostgreSQL the first takes an
    advisory lock and migrates, the others wait for it and find nothing left
    to do. (On SQLite there is one machine, and its write lock serialises them.)
    """
    if database.is_sqlite:
        command.upgrade(alembic_config(database), revision)
        return
    with database.write_engine.connect() as connection:
        connection.exec_driver_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            command.upgrade(alembic_config(database), revision)
        finally:
            connection.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
            connection.commit()


def downgrade(database: Database, revision: str) -> None:
    command.downgrade(alembic_config(database), revision)


def current_revision(database: Database) -> str | None:
    with database.write_engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(database: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database)).get_current_head()


def is_current(database: Database) -> bool:
    return current_revision(database) == head_revision(database)
