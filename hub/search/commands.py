"""``corridor search``: rebuild, check and repair the index, and the outbox's status.

Commands of their own beside ``hub.cli``, which registers them: the index
lifecycle they drive lives in ``hub.search.lifecycle``.
"""

from __future__ import annotations

import logging
import sys
import time

import click
from flask.cli import with_appcontext

from hub.config import SettingsError
from hub.runtime import Runtime, current_runtime
from hub.search.engine import EngineBackend, EngineError
from hub.search.lifecycle import RebuildFailed, check, outbox_status, rebuild
from hub.search.lifecycle import repair as lifecycle_repair

log = logging.getLogger("corridor")


@click.group()
def search() -> None:
    """The full-text index."""


class _RebuildProgress:
    """A progress line for long index work: done/total, documents per second, time left."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.perf_counter()
        self.shown = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - self.shown < 0.5:
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else 0.0
        click.echo(
            f"\r{self.label}: {done:,}/{total:,}  {rate:,.0f} docs/s  ETA {eta:,.0f} s   ",
            nl=done >= total,
            err=True,
        )


def engine_of(runtime: Runtime) -> EngineBackend | None:
    return runtime.search if isinstance(runtime.search, EngineBackend) else None


@search.command("rebuild")
@with_appcontext
def search_rebuild() -> None:
    """Rebuild the index from the database, with progress, while Corridor keeps running.

    On an engine: a new versioned index is loaded and the alias swapped to it
    (see hub.search.lifecycle); writes made meanwhile are replayed, not lost.
    """
    runtime = current_runtime()
    engine = engine_of(runtime)
    if engine is None:
        _reindex_embedded(runtime)
        return
    verify_engine(runtime)
    try:
        report = rebuild(runtime.database, engine, _RebuildProgress("loading interactions"))
    except (RebuildFailed, EngineError) as exc:
        raise click.ClickException(f"rebuild failed, the alias still points at the old index: {exc}") from None
    rate = report.loaded / report.seconds if report.seconds else 0.0
    click.echo(
        f"rebuilt {engine.alias} -> {report.index}: {report.loaded:,} interactions loaded, {report.replayed:,} "
        f"changes replayed, in {report.seconds:.1f} s ({rate:,.0f} docs/s)"
        + (f"; deleted {', '.join(report.previous)}" if report.previous else "")
    )


@search.command("reindex")
@with_appcontext
def search_reindex() -> None:
    """Rebuild the index from the database (the same as `corridor search rebuild`)."""
    runtime = current_runtime()
    if engine_of(runtime) is not None:
        click.get_current_context().invoke(search_rebuild)
        return
    _reindex_embedded(runtime)


def _reindex_embedded(runtime: Runtime) -> None:
    started = time.perf_counter()
    with runtime.database.write() as session:
        progress = _RebuildProgress("indexing interactions")
        count = runtime.search.rebuild(session, progress)
    elapsed = time.perf_counter() - started
    click.echo(f"indexed {count} interactions in {elapsed:.1f} s ({runtime.search.name})")


@search.command("check")
@click.option("--repair", is_flag=True, help="Queue every missing, stale and orphaned document for the indexer.")
@with_appcontext
def search_check(repair: bool) -> None:
    """Whether the index agrees with the database; on an engine, document by document."""
    runtime = current_runtime()
    engine = engine_of(runtime)
    if engine is None:
        with runtime.database.read() as session:
            health = runtime.search.health(session)
        click.echo(" ".join(f"{k}={v}" for k, v in health.items()))
        if not health.get("ok"):
            sys.exit(1)
        return
    try:
        report = check(runtime.database, engine)
    except EngineError as exc:
        raise click.ClickException(f"the search engine is unavailable: {exc}") from None
    click.echo(
        f"database {report.in_database:,} interactions, index {report.in_index:,} documents; "
        f"{len(report.missing)} missing, {len(report.stale)} stale, {len(report.orphaned)} orphaned"
        f" ({report.pending} with changes on their way)"
    )
    for label, ids in (("missing", report.missing), ("stale", report.stale), ("orphaned", report.orphaned)):
        if ids:
            shown = ", ".join(str(i) for i in ids[:20])
            click.echo(f"  {label}: {shown}{' …' if len(ids) > 20 else ''}")
    for what, differences in (("channel", report.channels), ("day", report.days)):
        for key, (in_database, in_index) in list(differences.items())[:20]:
            click.echo(f"  {what} {key}: database {in_database}, index {in_index}")
    if repair and not report.ok:
        queued = lifecycle_repair(runtime.database, report)
        click.echo(f"queued {queued} documents for the indexer")
        return
    if not report.ok:
        sys.exit(1)


@search.command("status")
@with_appcontext
def search_status() -> None:
    """The index and the outbox: lag, pending and failed documents (with the engine's reasons), totals."""
    runtime = current_runtime()
    engine = engine_of(runtime)
    if engine is None:
        click.echo(f"backend {runtime.search.name}: updated in the ingest transaction; no outbox")
        return
    with runtime.database.read() as session:
        status = outbox_status(session)
    try:
        targets = engine.client.alias_targets(engine.alias)
        documents = engine.client.count(engine.alias)
        click.echo(f"{engine.name}: alias {engine.alias} -> {', '.join(targets) or 'nothing'}, {documents:,} documents")
    except EngineError as exc:
        click.echo(f"{engine.name}: unavailable ({exc})")
    click.echo(
        f"outbox: {status.pending:,} pending (lag {status.lag_seconds():.1f} s), {status.failed:,} failed; "
        + ", ".join(f"{k} {v}" for k, v in sorted(status.totals.items()))
    )
    if status.hold:
        click.echo(f"rebuild in progress since {status.hold.get('started_at')} into {status.hold.get('index')}")
    for interaction_id, attempts, reason in status.failures:
        click.echo(f"  interaction {interaction_id} (attempts {attempts}): {reason}")


def verify_engine(runtime: Runtime) -> None:
    """Stop with a message naming the setting when the configured engine cannot be used."""
    engine = engine_of(runtime)
    if engine is None:
        return
    try:
        found = engine.verify()
    except SettingsError as exc:
        click.echo(f"Corridor cannot start: {exc}", err=True)
        sys.exit(2)
    log.info("search: %s", found)
