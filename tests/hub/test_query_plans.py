"""The pipeline's lookups seek their indexes; a plan that scans a table grows with every row stored."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select

from hub.db import Database
from hub.ingest import pairs_in
from hub.models import Identity, Interaction


def test_lookups_by_several_pairs_seek_the_unique_index_on_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "plans.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    pairs = [("email", "<a@x>"), ("email", "<b@x>"), ("sms", "SM1"), ("voice", "CA1")]
    lookups = [
        select(Interaction.id).where(pairs_in(Interaction.channel, Interaction.external_id, pairs)),
        select(Identity.id).where(pairs_in(Identity.kind, Identity.value, [("email", "a@x"), ("phone", "+1")])),
    ]
    try:
        with database.write_engine.connect() as connection:
            for statement in lookups:
                compiled = statement.compile(connection, compile_kwargs={"literal_binds": True})
                plan = " | ".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
                assert "SCAN" not in plan, plan
                assert "SEARCH" in plan, plan
    finally:
        database.dispose()
