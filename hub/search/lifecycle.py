"""The index's life: rebuild behind the alias, check against the database, repair, status and health.

Rebuild (``corridor search rebuild``), while Corridor keeps running:

1. create the next versioned index with refresh off and no replicas;
2. record the outbox position P (the newest row; on PostgreSQL under a
   short SHARE lock on the outbox, so no transaction still holding a lower id
   can commit later) and hold the outbox rows after it: the indexer keeps
   them once indexed instead of purging them;
3. bulk-load every interaction in id order (keyset, never OFFSET), each at
   version P: its state was read after P, so any change after P has a higher
   version and wins;
4. replay every outbox row after P, whatever the live indexer did with it
   (it has been writing to the old index all along);
5. refresh and verify that the new index holds as many documents as the
   database has interactions (up to the newest replayed id), replaying again
   until it does;
6. swap the alias in one atomic request, then replay everything after P once
   more: a change the live indexer sent to the old index just before the swap
   is now in the new one too;
7. restore refresh and replicas, release the hold, delete the old index.

No write made during the rebuild is lost: each is either in the database
when its interaction is loaded, or an outbox row after P that is replayed
after the swap, or pending, which the live indexer sends to the alias, that
is, to the new index.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from hub.db import Database
from hub.models import ConnectorState, Interaction, OutboxEntry, OutboxState, utcnow
from hub.search import Progress
from hub.search.engine import EngineBackend, EngineError, EngineUnavailable
from hub.search.indexer import HOLD_KEY, STATE_CONNECTOR, STATS_KEY, changes, rebuild_hold, send
from hub.search.mapping import documents_after, index_body
from hub.search.outbox import queue

log = logging.getLogger(__name__)

#: Interactions read and sent per bulk request during a rebuild.
LOAD_BATCH = 2000
#: Outbox rows replayed per bulk request.
REPLAY_BATCH = 1000
#: Seconds after the indexer's last pass before the health check compares counts (the refresh interval, and more).
SETTLE_SECONDS = 5.0
#: Times the count is checked (with a replay between) before a rebuild gives up.
VERIFY_ATTEMPTS = 10


class RebuildFailed(RuntimeError):
    """The new index could not be made equal to the database; the alias still points at the old one."""


@dataclass
class RebuildReport:
    index: str
    previous: list[str]
    position: int
    loaded: int
    replayed: int
    seconds: float


def _retrying(work: Callable[[], Any], attempts: int = 6) -> Any:
    """Run ``work``, waiting and retrying while the engine is unavailable (a rebuild outlasts a hiccup)."""
    delay = 0.5
    for attempt in range(attempts):
        try:
            return work()
        except EngineUnavailable:
            if attempt == attempts - 1:
                raise
            log.warning("search engine unavailable; retrying in %.1f s", delay)
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
    raise AssertionError("unreachable")


def _hold(database: Database, index: str) -> int:
    """Record the outbox position and hold the rows after it; returns the position."""
    with database.write() as session:
        if database.dialect == "postgresql":
            # Waits for every transaction that has inserted into the outbox and
            # keeps new ones out for the moment it takes to read the newest id.
            session.execute(text("LOCK TABLE search_outbox IN SHARE MODE"))
        position = int(session.scalar(select(func.coalesce(func.max(OutboxEntry.id), 0))) or 0)
        value = {"position": position, "index": index, "started_at": utcnow().isoformat()}
        row = session.get(ConnectorState, (STATE_CONNECTOR, HOLD_KEY))
        if row is None:
            session.add(ConnectorState(connector=STATE_CONNECTOR, key=HOLD_KEY, value=value))
        else:
            row.value = value
    return position


def _release(database: Database, position: int | None = None) -> None:
    """End the hold; after a finished rebuild, rows that failed before its position are settled by its load."""
    with database.write() as session:
        if position is not None:
            session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.state == OutboxState.FAILED, OutboxEntry.id <= position)
                .values(state=OutboxState.DONE, indexed_at=utcnow())
            )
        row = session.get(ConnectorState, (STATE_CONNECTOR, HOLD_KEY))
        if row is not None:
            session.delete(row)


def replay(database: Database, backend: EngineBackend, index: str, position: int) -> tuple[int, int]:
    """Send every outbox row after ``position`` to ``index``; returns (rows replayed, newest interaction id seen)."""
    after, replayed = position, 0
    while True:
        with database.read() as session:
            rows = list(
                session.execute(
                    select(OutboxEntry.id, OutboxEntry.interaction_id)
                    .where(OutboxEntry.id > after)
                    .order_by(OutboxEntry.id)
                    .limit(REPLAY_BATCH)
                )
            )
            newest = int(session.scalar(select(func.coalesce(func.max(Interaction.id), 0))) or 0)
            if not rows:
                return replayed, newest
            batch = changes(rows)
            outcomes = _retrying(lambda s=session, b=batch: send(backend, s, b, index=index))  # type: ignore[misc]
        retry = [o for o in outcomes if o.result == "retry"]
        if retry:
            time.sleep(0.5)
            continue  # the same rows again
        for outcome in outcomes:
            if outcome.result == "failed":
                log.warning("replaying interaction %d: %s", outcome.change.interaction_id, outcome.error)
        after = rows[-1][0]
        replayed += len(rows)


def rebuild(database: Database, backend: EngineBackend, progress: Progress | None = None) -> RebuildReport:
    """Build the next index from the database and swap the alias to it (see the module's docstring)."""
    client = backend.client
    started = time.perf_counter()
    previous = client.alias_targets(backend.alias)
    new = backend.next_index()
    settings = backend.settings
    client.create_index(new, index_body(shards=settings.shards, replicas=settings.replicas, loading=True))
    swapped = False
    try:
        position = _hold(database, new)
        with database.read() as session:
            total = int(session.scalar(select(func.count()).select_from(Interaction)) or 0)
        if progress:
            progress(0, total)
        loaded, last = 0, 0
        while True:
            with database.read() as session:
                batch = documents_after(session, last, LOAD_BATCH)
            if not batch:
                break
            actions = [
                {"_op_type": "index", "_index": new, "_id": str(i), "version": max(position, 1),
                 "version_type": "external", "_source": doc}
                for i, doc in batch
            ]  # fmt: skip
            items = _retrying(lambda a=actions: client.bulk(a))  # type: ignore[misc]
            refused = [i for i in items if not (200 <= i.status < 300 or i.status == 409)]
            if refused:
                raise RebuildFailed(f"the engine refused {len(refused)} documents, e.g. {refused[0].doc_id}: "
                                    f"{refused[0].error}")  # fmt: skip
            loaded += len(batch)
            last = batch[-1][0]
            if progress:
                progress(loaded, max(total, loaded))
        replayed, newest = replay(database, backend, new, position)
        for _attempt in range(VERIFY_ATTEMPTS):
            client.refresh(new)
            with database.read() as session:
                in_database = int(
                    session.scalar(select(func.count()).select_from(Interaction).where(Interaction.id <= newest)) or 0
                )
            in_index = client.count(new, {"range": {"id": {"lte": newest}}})
            if in_index == in_database:
                break
            more, newest = replay(database, backend, new, position)
            replayed += more
        else:
            raise RebuildFailed(
                f"the new index holds {in_index} documents up to id {newest}, the database {in_database}"
            )
        swap: list[dict[str, Any]] = [{"remove": {"index": old, "alias": backend.alias}} for old in previous]
        client.update_aliases([*swap, {"add": {"index": new, "alias": backend.alias}}])
        swapped = True
        more, _ = replay(database, backend, new, position)
        replayed += more
        client.put_settings(new, {"refresh_interval": "1s", "number_of_replicas": settings.replicas})
    except BaseException:
        if not swapped:
            try:
                client.delete_index(new)
            except EngineError:
                log.warning("could not delete the unfinished index %s", new)
            _release(database)
        raise
    _release(database, position)
    for old in previous:
        try:
            client.delete_index(old)
        except EngineError as exc:
            log.warning("could not delete the old index %s: %s", old, exc)
    return RebuildReport(new, previous, position, loaded, replayed, time.perf_counter() - started)


# -- check and repair ------------------------------------------------------------------------


@dataclass
class CheckReport:
    """Database and index compared: counts, and the documents that differ (ids, with versions where stale)."""

    in_database: int = 0
    in_index: int = 0
    missing: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    orphaned: list[int] = field(default_factory=list)
    #: Interactions with changes on their way (pending outbox rows): not counted as drift.
    pending: int = 0
    #: channel -> (database, index), for the channels where they differ.
    channels: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: day -> (database, index), for the days where they differ.
    days: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.orphaned)


def _day_expression(database: Database) -> Any:
    if database.dialect == "postgresql":
        return func.to_char(func.timezone("UTC", Interaction.occurred_at), "YYYY-MM-DD")
    return func.substr(Interaction.occurred_at, 1, 10)


def _database_counts(database: Database) -> tuple[dict[str, int], dict[str, int]]:
    with database.read() as session:
        channels = {str(c): int(n) for c, n in session.execute(
            select(Interaction.channel, func.count()).group_by(Interaction.channel))}  # fmt: skip
        day = _day_expression(database)
        days = {str(d): int(n) for d, n in session.execute(select(day, func.count()).group_by(day))}
    return channels, days


def _index_counts(backend: EngineBackend) -> tuple[dict[str, int], dict[str, int]]:
    answer = backend.client.search(
        backend.alias,
        {
            "size": 0,
            "track_total_hits": True,
            "aggs": {
                "channel": {"terms": {"field": "channel", "size": 100}},
                "day": {"date_histogram": {"field": "occurred_at", "calendar_interval": "day", "time_zone": "UTC",
                                           "min_doc_count": 1, "format": "yyyy-MM-dd"}},
            },
        },
    )  # fmt: skip
    aggs = answer["aggregations"]
    channels = {str(b["key"]): int(b["doc_count"]) for b in aggs["channel"]["buckets"]}
    days = {str(b["key_as_string"])[:10]: int(b["doc_count"]) for b in aggs["day"]["buckets"]}
    return channels, days


def _differences(left: dict[str, int], right: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {k: (left.get(k, 0), right.get(k, 0)) for k in sorted(left.keys() | right.keys())
            if left.get(k, 0) != right.get(k, 0)}  # fmt: skip


def _database_fingerprints(database: Database) -> Iterator[tuple[int, str]]:
    last = 0
    while True:
        with database.read() as session:
            batch = documents_after(session, last, LOAD_BATCH)
        if not batch:
            return
        for interaction_id, doc in batch:
            yield interaction_id, doc["fingerprint"]
        last = batch[-1][0]


def _index_fingerprints(backend: EngineBackend) -> Iterator[tuple[int, str]]:
    for hits in backend.scan({"match_all": {}}, ["fingerprint"], batch=LOAD_BATCH, sort=[{"id": "asc"}]):
        for hit in hits:
            yield int(hit["_id"]), str(hit["_source"].get("fingerprint", ""))


def check(database: Database, backend: EngineBackend) -> CheckReport:
    """Compare every document with the database: counts per channel and day, then id by id.

    Stale means the document differs from what the database would index now
    (its fingerprint). Interactions with changes still in the outbox are
    on their way and are not reported.
    """
    report = CheckReport()
    db_channels, db_days = _database_counts(database)
    ix_channels, ix_days = _index_counts(backend)
    report.channels = _differences(db_channels, ix_channels)
    report.days = _differences(db_days, ix_days)
    index_stream = _index_fingerprints(backend)
    current = next(index_stream, None)
    for interaction_id, print_ in _database_fingerprints(database):
        report.in_database += 1
        while current is not None and current[0] < interaction_id:
            report.in_index += 1
            report.orphaned.append(current[0])
            current = next(index_stream, None)
        if current is not None and current[0] == interaction_id:
            report.in_index += 1
            if current[1] != print_:
                report.stale.append(interaction_id)
            current = next(index_stream, None)
        else:
            report.missing.append(interaction_id)
    while current is not None:
        report.in_index += 1
        report.orphaned.append(current[0])
        current = next(index_stream, None)
    with database.read() as session:
        in_flight = set(
            session.scalars(select(OutboxEntry.interaction_id).where(OutboxEntry.state == OutboxState.PENDING))
        )
    report.pending = len(in_flight)
    report.missing = [i for i in report.missing if i not in in_flight]
    report.stale = [i for i in report.stale if i not in in_flight]
    report.orphaned = [i for i in report.orphaned if i not in in_flight]
    return report


def repair(database: Database, report: CheckReport) -> int:
    """Queue every missing, stale and orphaned document for the indexer; returns how many."""
    with database.write() as session:
        return queue(session, [*report.missing, *report.stale, *report.orphaned])


def count_drift(session: Session, backend: EngineBackend) -> dict[str, object]:
    """Database and index counts, for the SearchBackend protocol's health()."""
    in_database = int(session.scalar(select(func.count()).select_from(Interaction)) or 0)
    try:
        in_index = backend.client.count(backend.alias)
    except EngineError as exc:
        return {"backend": backend.name, "ok": False, "problem": f"search engine: {exc}"}
    ok = in_index == in_database
    return {"backend": backend.name, "ok": ok, "database": in_database, "index": in_index,
            "problem": None if ok else f"index holds {in_index} documents, database {in_database}"}  # fmt: skip


# -- status and health ------------------------------------------------------------------------


@dataclass
class OutboxStatus:
    pending: int
    oldest_pending: datetime | None
    failed: int
    #: (interaction id, attempts, reason), newest first.
    failures: list[tuple[int, int, str]]
    totals: dict[str, Any]
    hold: dict[str, Any] | None

    def lag_seconds(self) -> float:
        return (utcnow() - self.oldest_pending).total_seconds() if self.oldest_pending else 0.0


def outbox_status(session: Session, failures: int = 20) -> OutboxStatus:
    pending = session.scalar(select(func.count()).where(OutboxEntry.state == OutboxState.PENDING))
    # Rows are written in time order: the lowest pending id is the oldest change.
    oldest = session.scalar(
        select(OutboxEntry.created_at).where(OutboxEntry.state == OutboxState.PENDING).order_by(OutboxEntry.id).limit(1)
    )
    failed = session.scalar(select(func.count()).where(OutboxEntry.state == OutboxState.FAILED))
    rows = session.execute(
        select(OutboxEntry.interaction_id, OutboxEntry.attempts, OutboxEntry.error)
        .where(OutboxEntry.state == OutboxState.FAILED)
        .order_by(OutboxEntry.id.desc())
        .limit(failures)
    ).all()
    stats = session.get(ConnectorState, (STATE_CONNECTOR, STATS_KEY))
    return OutboxStatus(
        pending=int(pending or 0),
        oldest_pending=oldest,
        failed=int(failed or 0),
        failures=[(r.interaction_id, r.attempts, r.error or "") for r in rows],
        totals=dict(stats.value) if stats is not None else {},
        hold=rebuild_hold(session),
    )


def search_health(database: Database, backend: EngineBackend) -> dict[str, Any]:
    """What /api/health says about search: engine up, lag, failures; ``degraded`` with the reason."""
    with database.read() as session:
        status = outbox_status(session, failures=0)
        in_database = int(session.scalar(select(func.count()).select_from(Interaction)) or 0)
    lag = status.lag_seconds()
    reasons = []
    in_index: int | None = None
    try:
        in_index = backend.client.count(backend.alias)
        engine = "up"
    except EngineError as exc:
        engine = "unavailable"
        reasons.append(f"the search engine is unavailable ({exc})")
    # With nothing on its way, the index must hold exactly the interactions;
    # documents sent in the last seconds may not be refreshed into counts yet.
    last_pass = status.totals.get("last_pass_at")
    settled = not last_pass or (utcnow() - datetime.fromisoformat(last_pass)).total_seconds() > SETTLE_SECONDS
    if in_index is not None and status.pending == 0 and settled and in_index != in_database:
        reasons.append(f"the index holds {in_index} documents, the database {in_database} interactions "
                       "(corridor search check --repair)")  # fmt: skip
    if lag > backend.settings.lag_threshold:
        reasons.append(f"the oldest change waiting for the index is {lag:.0f} s old")
    if status.failed:
        reasons.append(f"{status.failed} outbox rows failed to index (corridor search status)")
    return {
        "backend": backend.name,
        "engine": engine,
        "lag_seconds": round(lag, 1),
        "pending": status.pending,
        "failed": status.failed,
        "documents": in_index,
        "interactions": in_database,
        "degraded": bool(reasons),
        "reason": "; ".join(reasons) or None,
    }
