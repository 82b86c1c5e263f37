"""The PostgreSQL lane, figure 1: batch ingest through the pipeline against raw psycopg of the same rows.

A private PostgreSQL cluster (as the test suite starts one, durability off)
holds two migrated databases. The pipeline side is figure 1's: batches of
``ingest_many`` inside ``database.write()``, on an app built by
``create_app`` with the shipped defaults and the PostgreSQL URL (search:
PostgreSQL full-text, the GIN index on interaction). After each batch, the
rows it wrote to the journal and the interactions are read back and written
into the other database twice per batch, alternating with the pipeline so
load from other processes hits all three alike: once with ``executemany``
and once with ``COPY``, each in one transaction, the search index
maintained by PostgreSQL in both. The customers, identities and
conversations the batch created are copied across, untimed, first: the
baselines are the floor of unavoidable writes, not a second pipeline.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from hub.db import Database
from hub.ingest import ingest_many
from hub.migrate import upgrade
from tests.bench.common import Result, Sizes, Workspace, runtime_of, say, seed_people
from tests.bench.workload import Workload
from tests.services.postgres import PostgresCluster, _postgres_bindir, fresh_postgres_database

TARGET_RATIO = 0.30
_SETUP_TABLES = ("customer", "identity", "conversation")
_TIMED_TABLES = ("journal_entry", "interaction")


def run(workspace: Workspace, sizes: Sizes) -> list[Result]:
    say(f"\n== P1. Batch ingest on PostgreSQL: {sizes.ingest_events:,} events in batches of {sizes.batch:,} ==")
    bindir = _postgres_bindir()
    if bindir is None:
        say("no PostgreSQL server binaries here: the PostgreSQL lane is skipped")
        return []
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
        return _run(workspace, sizes, cluster.url)
    except (RuntimeError, OSError, psycopg.Error, subprocess.SubprocessError) as error:
        say(f"the PostgreSQL lane could not run: {error}")
        return []
    finally:
        cluster.stop()


def _dsn(url: str) -> str:
    parsed = make_url(url)
    return f"host={parsed.host} port={parsed.port} user={parsed.username} dbname={parsed.database}"


def _run(workspace: Workspace, sizes: Sizes, base_url: str) -> list[Result]:
    pipeline_url = fresh_postgres_database(base_url, "bench_pipeline")
    raw_url = fresh_postgres_database(base_url, "bench_raw")
    for url in (pipeline_url, raw_url):
        database = Database(url)
        upgrade(database)
        database.dispose()
    app = _app_on(workspace, pipeline_url)
    runtime = runtime_of(app)
    workload = Workload(seed=7, run_tag="p")
    seed_people(runtime, workload.people)
    raw = _RawBaseline(_dsn(pipeline_url), _dsn(raw_url))

    elapsed = 0.0
    errors = 0
    for batch in workload.batches(sizes.ingest_events, sizes.batch):
        started = time.perf_counter()
        with runtime.database.write() as session:
            results = ingest_many(session, batch, source="bench")
        elapsed += time.perf_counter() - started
        errors += sum(1 for r in results if r.error)
        raw.write_batch(results[0].journal_id, results[-1].journal_id)
    runtime.database.dispose()
    raw.close()
    rate = sizes.ingest_events / elapsed
    executemany_rate = sizes.ingest_events / raw.elapsed["executemany"]
    copy_rate = sizes.ingest_events / raw.elapsed["copy"]
    say(f"pipeline: {rate:,.0f} events/s ({errors} errors)")
    say(f"raw psycopg executemany of the same rows: {executemany_rate:,.0f} events/s; COPY: {copy_rate:,.0f} events/s")
    return [
        Result(
            name="PG batch ingest vs executemany",
            figure=rate,
            unit="events/s",
            baseline=executemany_rate,
            baseline_label="raw executemany",
            higher_is_better=True,
            target=f">= {TARGET_RATIO:.0%} of raw",
            passed=rate / executemany_rate >= TARGET_RATIO and not errors,
        ),
        Result(
            name="PG batch ingest vs COPY",
            figure=rate,
            unit="events/s",
            baseline=copy_rate,
            baseline_label="raw COPY",
            higher_is_better=True,
            target=f">= {TARGET_RATIO:.0%} of raw",
            passed=rate / copy_rate >= TARGET_RATIO and not errors,
        ),
    ]


def _app_on(workspace: Workspace, url: str) -> Any:
    from hub import create_app

    overrides = {
        "app": {"instance_dir": str(workspace.root / "instance-pg-batch"), "secret_key": "bench"},
        "database": {"url": url},
    }
    return create_app(overrides=overrides, environ={})


class _RawBaseline:
    """The rows of each pipeline batch written again with raw psycopg: executemany, then COPY."""

    def __init__(self, source_dsn: str, target_dsn: str) -> None:
        self.source = psycopg.connect(source_dsn, autocommit=True)
        self.target = psycopg.connect(target_dsn)
        self.columns = {table: self._columns(table) for table in (*_SETUP_TABLES, *_TIMED_TABLES)}
        self.elapsed = {"executemany": 0.0, "copy": 0.0}

    def _columns(self, table: str) -> list[tuple[str, str]]:
        rows = self.source.execute(
            "SELECT column_name, udt_name FROM information_schema.columns "
            "WHERE table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        # udt_name: an enum's own name, "_text" for text[].
        return [(name, f"{kind[1:]}[]" if kind.startswith("_") else kind) for name, kind in rows]

    def _copy_out(self, table: str, where: str, params: tuple[Any, ...]) -> bytes:
        names = ", ".join(name for name, _ in self.columns[table])
        query = f"COPY (SELECT {names} FROM {table} WHERE {where} ORDER BY id) TO STDOUT (FORMAT binary)"
        with self.source.cursor() as cursor, cursor.copy(query, params) as copy:
            return b"".join(bytes(chunk) for chunk in copy)

    def _copy_in(self, table: str, data: bytes) -> None:
        names = ", ".join(name for name, _ in self.columns[table])
        with self.target.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT binary)") as copy:
            copy.write(data)

    def _text_rows(self, table: str, where: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        # Every value as text, cast back on insert: the driver's own conversion
        # of each type is then the same work the pipeline's driver does.
        names = ", ".join(f"{name}::text" for name, _ in self.columns[table])
        return self.source.execute(
            f"SELECT {names} FROM {table} WHERE {where} ORDER BY id",
            params,
        ).fetchall()

    def write_batch(self, first_journal_id: int, last_journal_id: int) -> None:
        # Untimed: what the batch's interactions refer to, once.
        for table in _SETUP_TABLES:
            known = self.target.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
            assert known is not None
            self._copy_in(table, self._copy_out(table, "id > %s", (known[0],)))
        self.target.commit()
        journal_where, interaction_where = "id BETWEEN %s AND %s", "journal_id BETWEEN %s AND %s"
        span = (first_journal_id, last_journal_id)
        binary = {
            "journal_entry": self._copy_out("journal_entry", journal_where, span),
            "interaction": self._copy_out("interaction", interaction_where, span),
        }
        text = {
            "journal_entry": self._text_rows("journal_entry", journal_where, span),
            "interaction": self._text_rows("interaction", interaction_where, span),
        }
        for way in ("executemany", "copy"):  # COPY's rows stay, as the pipeline's do
            started = time.perf_counter()
            with self.target.cursor() as cursor:
                for table in _TIMED_TABLES:
                    if way == "copy":
                        self._copy_in(table, binary[table])
                        continue
                    names = ", ".join(name for name, _ in self.columns[table])
                    marks = ", ".join(f"%s::{kind}" for _, kind in self.columns[table])
                    cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", text[table])
            self.target.commit()
            self.elapsed[way] += time.perf_counter() - started
            if way == "copy":
                break
            # The same rows go in again the other way: out with them, untimed.
            self.target.execute("DELETE FROM interaction WHERE journal_id BETWEEN %s AND %s", span)
            self.target.execute("DELETE FROM journal_entry WHERE id BETWEEN %s AND %s", span)
            self.target.commit()

    def close(self) -> None:
        self.source.close()
        self.target.close()
