"""The pipeline's lookups seek their indexes; a plan that scans a table grows with every row stored."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select

from hub import create_app
from hub.db import Database
from hub.events import Channel
from hub.ingest import ingest_many, pairs_in
from hub.models import Identity, Interaction
from hub.pagination import encode_cursor
from hub.runtime import Runtime
from hub.search import SearchQuery
from hub.search.sqlite_fts import CUSTOMER_INDEX, TIME_INDEX, Plan, SqliteFts, Tuning
from tests.hub.events import at, event


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


def test_newest_first_search_plans_seek_their_indexes_on_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    """The time-windows plan reads its index in order (no sort), takes matches from one FTS5 scan
    per window, and the matches-first plan keeps FTS5 in the outer loop."""
    path = tmp_path / "search-plans.db"
    shutil.copyfile(sqlite_template, path)
    app = create_app(
        overrides={"app": {"instance_dir": str(tmp_path), "secret_key": "x"}, "database": {"url": f"sqlite:///{path}"}},
        environ={},
    )
    runtime: Runtime = app.extensions["corridor"]
    items = [event(Channel.SMS, "+14155550100", hours=h, text=f"parcel {h}") for h in range(30)]
    with runtime.database.write() as session:
        customer_id = ingest_many(session, items, source="test")[0].customer_id
    statements: list[tuple[str, Any]] = []

    def log(_c: Any, _cu: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    engine = runtime.database.read_engine
    cursor = encode_cursor(at(20), 10**9)
    searches = {
        TIME_INDEX: [SearchQuery(text="parcel", limit=3), SearchQuery(text="parcel", channels=("sms",), cursor=cursor)],
        CUSTOMER_INDEX: [SearchQuery(text="parcel", customer_id=customer_id, cursor=cursor)],
    }
    try:
        for index, queries in searches.items():
            for query in queries:
                for plan in Plan:
                    statements.clear()
                    sa_event.listen(engine, "before_cursor_execute", log)
                    try:
                        with runtime.database.read() as session:
                            assert SqliteFts(Tuning(first_window=4)).search(session, query, plan=plan).hits
                    finally:
                        sa_event.remove(engine, "before_cursor_execute", log)
                    with engine.connect() as connection:
                        plans = {
                            sql: " | ".join(r[-1] for r in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", p))
                            for sql, p in statements
                            if sql.startswith(("SELECT", "WITH"))
                        }
                    walks = {sql: steps for sql, steps in plans.items() if f"INDEXED BY {index}" in sql}
                    if plan is Plan.TIME_WINDOWS:
                        assert len(walks) >= 2, plans
                        for sql, steps in walks.items():
                            assert f"COVERING INDEX {index}" in steps, (sql, steps)
                            assert "TEMP B-TREE" not in steps, (sql, steps)
                            if "rowid BETWEEN" in sql:
                                # One scan of FTS5 per window, not a lookup per row.
                                assert "LIST SUBQUERY" in steps, (sql, steps)
                                assert "CORRELATED" not in steps, (sql, steps)
                    else:
                        assert not walks, plans
                        [steps] = [s for sql, s in plans.items() if "ORDER BY i.occurred_at DESC" in sql]
                        assert steps.startswith("SCAN interaction_fts VIRTUAL TABLE"), steps
                        assert "SEARCH i USING INTEGER PRIMARY KEY" in steps, steps
    finally:
        runtime.database.dispose()
