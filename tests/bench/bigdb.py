"""Figure 5, and the database figures 3 and 4 read: 1M events through the pipeline.

Every one of the million interactions goes through ``hub.ingest.ingest_many``
(no bulk fill with raw SQL), so the timeline and search figures run on data,
indexes and FTS5 content exactly as production builds them.

Memory: the resident set size is sampled after every ``sample_every`` events.
A pipeline that keeps something per event (an identity map, a cache without
bound, notifications nobody drains) grows linearly; a sound one levels off
once its caches are warm. The baseline is the first sample (caches warm,
SQLite's page cache full); the figure is the last; the target is that the
growth between them stays within 10 %.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from hub.db import Database
from hub.ingest import ingest_many
from hub.migrate import upgrade
from tests.bench.common import Result, Sizes, Workspace, checkpoint, peak_rss_mb, rss_mb, runtime_of, say, seed_people
from tests.bench.workload import HEAVY_PERSON, Workload, people

MAX_GROWTH = 0.10
SEED = 11


@dataclass(frozen=True)
class BigDb:
    path: Path
    interactions: int
    heavy_customer_id: int
    heavy_interactions: int
    #: The long-tail vocabulary the texts were drawn from, most frequent first.
    tail_vocabulary: list[str]


def build(workspace: Workspace, sizes: Sizes, at: Path | None = None) -> tuple[BigDb, list[Result]]:
    """Build the database through the pipeline, in the workspace or at ``at`` (a new file)."""
    total = sizes.big_events
    say(f"\n== 5. Memory while ingesting {total:,} events through the pipeline (builds the DB for 3 and 4) ==")
    path = workspace.fresh_db("big")
    if at is not None:
        at.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, at)
        path = at
    app = workspace.app(path, "big")
    runtime = runtime_of(app)
    workload = Workload(seed=SEED, run_tag="m")
    customers = seed_people(runtime, workload.people)

    say(f"{'events':>10} {'RSS MB':>8} {'peak MB':>8} {'events/s (last step)':>21} {'events/s (all)':>15}")
    samples: list[tuple[int, float]] = []
    done, elapsed, step_elapsed, step_done, errors = 0, 0.0, 0.0, 0, 0
    wall_started = time.perf_counter()
    for batch in workload.batches(total, sizes.batch):
        started = time.perf_counter()
        with runtime.database.write() as session:
            results = ingest_many(session, batch, source="bench")
        took = time.perf_counter() - started
        errors += sum(1 for r in results if r.error)
        elapsed += took
        step_elapsed += took
        done += len(batch)
        step_done += len(batch)
        if done % sizes.sample_every == 0 or done == total:
            rss = rss_mb()
            samples.append((done, rss))
            say(
                f"{done:>10,} {rss:>8.1f} {peak_rss_mb():>8.1f} {step_done / step_elapsed:>21,.0f} "
                f"{done / elapsed:>15,.0f}"
            )
            step_elapsed, step_done = 0.0, 0
    runtime.database.dispose()
    wall = time.perf_counter() - wall_started
    say(f"built in {wall:.0f} s ({elapsed:.0f} s in the pipeline, the rest generating events); {errors} errors")

    checkpoint(path)
    heavy_id = customers[HEAVY_PERSON]
    return _described(path, heavy_id), [_memory_result(total, samples, done, elapsed, errors)]


def reuse(path: Path) -> BigDb:
    """A database an earlier ``build`` left at ``path``, brought to the newest migration.

    Figure 5 (memory) is not measured: it is a by-product of building.
    """
    say(f"\n== Reusing {path} (no figure 5: nothing is ingested) ==")
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    database.dispose()
    checkpoint(path)
    connection = sqlite3.connect(path)
    heavy = people()[HEAVY_PERSON]
    row = connection.execute("SELECT customer_id FROM identity WHERE kind = 'email' AND value = ?", (heavy.email,))
    heavy_id = row.fetchone()[0]
    connection.close()
    return _described(path, heavy_id)


def _described(path: Path, heavy_id: int) -> BigDb:
    connection = sqlite3.connect(path)
    interactions = connection.execute("SELECT count(*) FROM interaction").fetchone()[0]
    heavy = connection.execute("SELECT count(*) FROM interaction WHERE customer_id = ?", (heavy_id,)).fetchone()[0]
    customer_count = connection.execute("SELECT count(*) FROM customer").fetchone()[0]
    conversation_count = connection.execute("SELECT count(*) FROM conversation").fetchone()[0]
    connection.close()
    size_mb = path.stat().st_size / 2**20
    say(
        f"database: {interactions:,} interactions, {customer_count:,} customers, {conversation_count:,} "
        f"conversations, {size_mb:,.0f} MB; heavy customer #{heavy_id} has {heavy:,} interactions"
    )
    return BigDb(
        path=path,
        interactions=interactions,
        heavy_customer_id=heavy_id,
        heavy_interactions=heavy,
        # The same seed draws the same vocabulary the texts were made from.
        tail_vocabulary=Workload(seed=SEED, run_tag="m").tail,
    )


def _memory_result(total: int, samples: list[tuple[int, float]], done: int, elapsed: float, errors: int) -> Result:
    first, last = samples[0][1], samples[-1][1]
    growth = (last - first) / first
    return Result(
        name=f"RSS ingesting {total:,} events",
        figure=last,
        unit="MB",
        baseline=first,
        baseline_label=f"RSS at {samples[0][0]:,}",
        higher_is_better=False,
        target=f"flat: <= +{MAX_GROWTH:.0%} after first sample",
        passed=growth <= MAX_GROWTH and not errors,
        note=f"{growth:+.1%}; peak {peak_rss_mb():.0f} MB; {done / elapsed:,.0f} events/s over the whole build",
    )
