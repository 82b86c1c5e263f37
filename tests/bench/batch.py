"""Figure 1: batch ingest through the real pipeline against raw sqlite3 executemany.

The pipeline side is exactly what a backfill does: ``hub.ingest.ingest_many``
on batches of 1,000 events inside ``database.write()`` (BEGIN IMMEDIATE, one
commit per batch), on an app built by ``create_app`` with the shipped
defaults. Building the ChannelEvents is not timed: a connector's parsing is
its own cost, not the hub's.

The baseline writes *the same rows* the pipeline wrote -- read back from the
pipeline's database right after each batch commits, so nothing differs but
the path -- into a fresh copy of the migrated schema with the same pragmas:
per batch, one executemany each for the journal, the interactions and the
FTS5 index, then commit. The customers, identities and conversations the
batch created are copied across before the baseline's clock starts: the
baseline is the floor of unavoidable work, not a second pipeline. Pipeline
and baseline batches alternate, so load from other processes on a shared
machine hits both alike.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from hub.ingest import ingest_many
from tests.bench.common import Result, Sizes, Workspace, runtime_of, say, seed_people
from tests.bench.workload import Workload

TARGET_RATE = 5_000.0
TARGET_RATIO = 0.10
#: Copied before the baseline's clock starts (see the module docstring).
_SETUP_TABLES = ("customer", "identity", "conversation")


def run(workspace: Workspace, sizes: Sizes) -> list[Result]:
    say(f"\n== 1. Batch ingest: {sizes.ingest_events:,} events in batches of {sizes.batch:,} ==")
    pipeline_path = workspace.fresh_db("batch-pipeline")
    app = workspace.app(pipeline_path, "batch")
    runtime = runtime_of(app)
    workload = Workload(seed=7, run_tag="b")
    seed_people(runtime, workload.people)
    raw = _RawBaseline(workspace.fresh_db("batch-raw"), pipeline_path)

    elapsed = 0.0
    outcomes = {"new": 0, "duplicate": 0, "error": 0}
    for batch in workload.batches(sizes.ingest_events, sizes.batch):
        started = time.perf_counter()
        with runtime.database.write() as session:
            results = ingest_many(session, batch, source="bench")
        elapsed += time.perf_counter() - started
        for result in results:
            outcomes["error" if result.error else "duplicate" if result.duplicate else "new"] += 1
        raw.write_batch(results[0].journal_id, results[-1].journal_id)
    runtime.database.dispose()
    raw.close()
    pipeline_rate = sizes.ingest_events / elapsed
    raw_rate = sizes.ingest_events / raw.elapsed
    say(
        f"pipeline: {sizes.ingest_events:,} events in {elapsed:.1f} s = {pipeline_rate:,.0f} events/s "
        f"({outcomes['new']:,} new, {outcomes['duplicate']:,} provider retries, {outcomes['error']} errors)"
    )
    say(f"raw sqlite3 executemany of the same rows: {raw.elapsed:.2f} s = {raw_rate:,.0f} events/s")
    if outcomes["error"]:
        say("  !! the pipeline reported errors; the figure is not meaningful")

    ratio = pipeline_rate / raw_rate
    return [
        Result(
            name="batch ingest (pipeline)",
            figure=pipeline_rate,
            unit="events/s",
            baseline=raw_rate,
            baseline_label="raw executemany",
            higher_is_better=True,
            target=f">= {TARGET_RATE:,.0f}/s and >= {TARGET_RATIO:.0%} of raw",
            passed=pipeline_rate >= TARGET_RATE and ratio >= TARGET_RATIO and not outcomes["error"],
        )
    ]


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


class _RawBaseline:
    """Raw sqlite3 writing the rows each pipeline batch wrote, timed per batch."""

    def __init__(self, path: Path, source: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        # The pragmas hub.db sets on every connection, so only the path differs.
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.connection.execute("ATTACH DATABASE ? AS src", (str(source),))
        self.journal_cols = _columns(self.connection, "journal_entry")
        self.interaction_cols = _columns(self.connection, "interaction")
        self.insert_journal = (
            f"INSERT INTO journal_entry ({', '.join(self.journal_cols)}) "
            f"VALUES ({', '.join('?' * len(self.journal_cols))})"
        )
        self.insert_interaction = (
            f"INSERT INTO interaction ({', '.join(self.interaction_cols)}) "
            f"VALUES ({', '.join('?' * len(self.interaction_cols))})"
        )
        self.insert_fts = "INSERT INTO interaction_fts (rowid, subject, text) VALUES (?, ?, ?)"
        self.subject_at = self.interaction_cols.index("subject")
        self.text_at = self.interaction_cols.index("text")
        self.elapsed = 0.0

    def write_batch(self, first_journal_id: int, last_journal_id: int) -> None:
        connection = self.connection
        # Preparation, not timed: rows the interactions refer to, and the rows to write.
        connection.execute("BEGIN")
        for table in _SETUP_TABLES:
            connection.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM src.{table}")
        connection.execute("COMMIT")
        journal = connection.execute(
            f"SELECT {', '.join(self.journal_cols)} FROM src.journal_entry WHERE id BETWEEN ? AND ? ORDER BY id",
            (first_journal_id, last_journal_id),
        ).fetchall()
        interactions = connection.execute(
            f"SELECT {', '.join(self.interaction_cols)} FROM src.interaction "
            "WHERE journal_id BETWEEN ? AND ? ORDER BY id",
            (first_journal_id, last_journal_id),
        ).fetchall()
        fts = [(row[0], row[self.subject_at], row[self.text_at]) for row in interactions]
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(self.insert_journal, journal)
        connection.executemany(self.insert_interaction, interactions)
        connection.executemany(self.insert_fts, fts)
        connection.execute("COMMIT")
        self.elapsed += time.perf_counter() - started

    def close(self) -> None:
        self.connection.execute("DETACH DATABASE src")
        self.connection.close()
