"""The indexer: drains ``search_outbox`` into the engine, in bulk, in ``corridor worker``.

Each pass takes the oldest pending rows, reads the documents of their
interactions as the database holds them *now*, and sends one bulk request.
Every document carries the id of its newest outbox row as an external version,
so the engine keeps whichever write saw the newest state, whatever order
requests arrive in: a stale write is answered 409, counted and dropped.
An interaction that no longer exists is deleted from the index (at that
version, so an older write cannot bring it back).

Failures:

* the engine unreachable, timing out, answering 429 or 5xx: nothing is marked,
  the worker backs off (0.5 s doubling to 30 s) and the rows are sent again;
* a document the engine refuses (a 400, say): its rows are marked failed with
  the engine's reason (`corridor search status` lists them; the next change of
  the interaction, or ``corridor search check --repair``, queues it again).

A crash between the bulk request and the commit leaves the rows pending: they
are sent again, and the engine's versions make the repeat change nothing. On
PostgreSQL, several indexers share the outbox (``FOR UPDATE SKIP LOCKED``);
on SQLite one runs, and holds no write lock while it talks to the engine.

Indexed rows are kept (state ``done``) while a rebuild may still replay them,
and purged once no rebuild needs them (:mod:`hub.search.lifecycle`).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from hub.db import Database, affected
from hub.models import ConnectorState, OutboxEntry, OutboxState, utcnow
from hub.search.engine import EngineBackend, EngineUnavailable
from hub.search.mapping import documents

log = logging.getLogger(__name__)

#: connector_state keys the indexer and the rebuild share.
STATE_CONNECTOR = "search"
STATS_KEY = "indexer"
HOLD_KEY = "rebuild"

#: Seconds between looks at an empty outbox.
IDLE_WAIT = 0.2
MAX_BACKOFF = 30.0


@dataclass
class DrainResult:
    """What one pass did."""

    rows: int = 0
    indexed: int = 0
    deleted: int = 0
    conflicts: int = 0
    failed: int = 0
    #: Documents the engine answered 429/5xx for: left pending, sent again.
    retry: int = 0

    def add(self, other: DrainResult) -> None:
        for name in ("rows", "indexed", "deleted", "conflicts", "failed", "retry"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True, slots=True)
class Change:
    """An interaction to send: its newest outbox row (the version) and every row it covers."""

    interaction_id: int
    version: int
    row_ids: tuple[int, ...]


def changes(rows: Sequence[Any]) -> list[Change]:
    """Rows of (id, interaction_id) grouped by interaction, newest row as the version."""
    grouped: dict[int, list[int]] = defaultdict(list)
    for row_id, interaction_id in rows:
        grouped[interaction_id].append(row_id)
    return [Change(i, max(ids), tuple(ids)) for i, ids in grouped.items()]


@dataclass(frozen=True, slots=True)
class Outcome:
    change: Change
    #: "indexed", "deleted", "conflict", "failed" or "retry".
    result: str
    error: str | None = None


def send(backend: EngineBackend, session: Session, batch: Sequence[Change], index: str | None = None,
         floor: int = 0) -> list[Outcome]:  # fmt: skip
    """The documents of ``batch`` as the database holds them, in one bulk request to ``index`` (default: the alias).

    ``floor`` raises every version to at least that (a rebuild's bulk load is
    at its outbox position). Raises EngineUnavailable when the request as a
    whole could not be made.
    """
    if not batch:
        return []
    docs = documents(session, [c.interaction_id for c in batch])
    target = index or backend.alias
    actions: list[dict[str, Any]] = []
    for change in batch:
        meta: dict[str, Any] = {
            "_index": target,
            "_id": str(change.interaction_id),
            "version": max(change.version, floor),
            "version_type": "external",
        }
        doc = docs.get(change.interaction_id)
        if doc is None:
            actions.append({"_op_type": "delete", **meta})
        else:
            actions.append({"_op_type": "index", "_source": doc, **meta})
    items = backend.client.bulk(actions)
    by_id = {item.doc_id: item for item in items}
    outcomes = []
    for change, action in zip(batch, actions, strict=True):
        item = by_id.get(str(change.interaction_id))
        if item is None:
            outcomes.append(Outcome(change, "retry", "no answer for this document"))
        elif 200 <= item.status < 300:
            outcomes.append(Outcome(change, "deleted" if action["_op_type"] == "delete" else "indexed"))
        elif item.status == 409:
            outcomes.append(Outcome(change, "conflict"))
        elif item.status == 404 and action["_op_type"] == "delete":
            outcomes.append(Outcome(change, "deleted"))  # never indexed, or gone already
        elif item.status == 429 or item.status >= 500:
            outcomes.append(Outcome(change, "retry", item.error))
        else:
            outcomes.append(Outcome(change, "failed", f"{item.status} {item.error or ''}".strip()))
    return outcomes


def _pending(session: Session, limit: int, *, lock: bool) -> list[Any]:
    statement = (
        select(OutboxEntry.id, OutboxEntry.interaction_id)
        .where(OutboxEntry.state == OutboxState.PENDING)
        .order_by(OutboxEntry.id)
        .limit(limit)
    )
    if lock:
        statement = statement.with_for_update(skip_locked=True)
    return list(session.execute(statement))


#: The outcomes that mark their rows done, and the count each adds to.
_COUNTERS = {"indexed": "indexed", "deleted": "deleted", "conflict": "conflicts"}


def _record(session: Session, outcomes: Sequence[Outcome]) -> DrainResult:
    result = DrainResult()
    now = utcnow()
    done: list[int] = []
    for outcome in outcomes:
        rows = list(outcome.change.row_ids)
        result.rows += len(rows)
        counter = _COUNTERS.get(outcome.result)
        if counter is not None:
            done += rows
            setattr(result, counter, getattr(result, counter) + 1)
        elif outcome.result == "failed":
            result.failed += 1
            session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id.in_(rows))
                .values(state=OutboxState.FAILED, error=(outcome.error or "")[:2000], attempts=OutboxEntry.attempts + 1)
            )
            log.warning("interaction %d was not indexed: %s", outcome.change.interaction_id, outcome.error)
        else:
            result.retry += 1
            session.execute(
                update(OutboxEntry).where(OutboxEntry.id.in_(rows)).values(attempts=OutboxEntry.attempts + 1)
            )
    for start in range(0, len(done), 500):
        session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id.in_(done[start : start + 500]))
            .values(state=OutboxState.DONE, indexed_at=now, error=None)
        )
    settled = [o.change for o in outcomes if o.result in _COUNTERS]
    supersede_failures(session, {c.interaction_id: c.version for c in settled})
    _add_stats(session, result)
    purge(session)
    return result


def supersede_failures(session: Session, versions: dict[int, int]) -> None:
    """Failed rows older than a version now in the index are settled by it: no longer failures."""
    for interaction_id, version in versions.items():
        session.execute(
            update(OutboxEntry)
            .where(
                OutboxEntry.interaction_id == interaction_id,
                OutboxEntry.state == OutboxState.FAILED,
                OutboxEntry.id < version,
            )
            .values(state=OutboxState.DONE, indexed_at=utcnow())
        )


def _add_stats(session: Session, result: DrainResult) -> None:
    row = session.get(ConnectorState, (STATE_CONNECTOR, STATS_KEY), with_for_update=True)
    if row is None:
        row = ConnectorState(connector=STATE_CONNECTOR, key=STATS_KEY, value={})
        session.add(row)
    totals = dict(row.value)
    for name in ("indexed", "deleted", "conflicts", "failed"):
        totals[name] = int(totals.get(name, 0)) + getattr(result, name)
    totals["last_pass_at"] = utcnow().isoformat()
    row.value = totals


def rebuild_hold(session: Session) -> dict[str, Any] | None:
    """The running rebuild's record (its outbox position and new index), if one runs."""
    row = session.get(ConnectorState, (STATE_CONNECTOR, HOLD_KEY))
    return dict(row.value) if row is not None and row.value else None


def purge(session: Session) -> int:
    """Delete indexed rows that no rebuild will replay; returns how many.

    The newest id is read before the rebuild's hold: a hold committed after
    that read has a position at or past it, so nothing it needs is deleted.
    """
    newest = session.scalar(select(func.max(OutboxEntry.id)))
    if newest is None:
        return 0
    hold = rebuild_hold(session)
    limit = min(newest, int(hold["position"])) if hold else newest
    return affected(
        session.execute(delete(OutboxEntry).where(OutboxEntry.state == OutboxState.DONE, OutboxEntry.id <= limit))
    )


def drain_once(database: Database, backend: EngineBackend, limit: int | None = None) -> DrainResult:
    """One pass over the oldest pending outbox rows (at most ``limit``); raises EngineUnavailable."""
    limit = limit or backend.settings.batch_size
    if database.is_sqlite:
        # One indexer; no write lock held while the engine answers.
        with database.read() as session:
            batch = changes(_pending(session, limit, lock=False))
            outcomes = send(backend, session, batch)
        if not batch:
            return DrainResult()
        with database.write() as session:
            return _record(session, outcomes)
    with database.write() as session:
        batch = changes(_pending(session, limit, lock=True))
        if not batch:
            return DrainResult()
        outcomes = send(backend, session, batch)
        return _record(session, outcomes)


def drain(database: Database, backend: EngineBackend) -> DrainResult:
    """Passes until the outbox has nothing pending that can be sent now (tests, the CLI)."""
    total = DrainResult()
    while True:
        result = drain_once(database, backend)
        total.add(result)
        if result.rows == 0 or result.retry:
            return total


def run(database: Database, backend: EngineBackend, stop: threading.Event) -> None:
    """The worker loop: drain, back off while the engine is unavailable, until ``stop``."""
    delay = 0.0
    while not stop.is_set():
        try:
            result = drain_once(database, backend)
        except EngineUnavailable as exc:
            delay = min(max(delay * 2, 0.5), MAX_BACKOFF)
            log.warning("search engine unavailable (%s); indexing again in %.1f s", exc, delay)
            stop.wait(delay)
            continue
        except Exception:
            log.exception("indexing failed; trying again in %.0f s", MAX_BACKOFF)
            stop.wait(MAX_BACKOFF)
            continue
        if result.retry:
            delay = min(max(delay * 2, 0.5), MAX_BACKOFF)
            stop.wait(delay)
        elif result.rows == 0:
            delay = 0.0
            stop.wait(IDLE_WAIT)
        else:
            delay = 0.0
