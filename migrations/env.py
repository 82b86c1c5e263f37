"""Alembic environment: runs against the engine Corridor hands it (hub.migrate)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Engine

from hub.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata

# Tables and indexes that exist on one database only and are created by hand
# in the migrations: the SQLite FTS5 index (and its shadow tables) and the
# PostgreSQL full-text expression index. Autogenerate must not drop them.
_SEARCH_OBJECTS = ("interaction_fts", "ix_interaction_search")


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (name or "").startswith(_SEARCH_OBJECTS)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations must not import application types: render UTCDateTime as the
    # column type it stores.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run() -> None:
    engine: Engine = config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=include_object,
            render_item=render_item,
            # SQLite cannot ALTER most things; batch mode copies the table.
            render_as_batch=engine.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run()
