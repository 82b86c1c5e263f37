"""The batch: runs the steps of the write path over a batch of items, in one transaction.

``ingest_many(session, items, source=...)`` journals the items (step 1) and
processes them inside the caller's transaction; ``process_journaled`` is
the same for items already in the journal (the journal processor, replays).
A batch runs, for its events:

2. dedupe within the batch (:mod:`hub.ingest.dedupe`);
3. identity: each event's customer (:mod:`hub.ingest.identity`);
2. dedupe against the timeline, the customers locked (:mod:`hub.ingest.dedupe`);
4. threading: each new event's conversation (:mod:`hub.ingest.thread`);
5. append: conversations, interactions, attachments (:mod:`hub.ingest.append`);
6. index: the search index or the outbox (:mod:`hub.ingest.index`);

then the updates, to interactions already stored or just appended
(:mod:`hub.ingest.updates`), the journal status of the duplicates
(:mod:`hub.ingest.journal`) and, after commit, 7. notify
(:mod:`hub.ingest.notify`).

The pipeline is batch-native: one event is a batch of one, and a backfill of a
thousand costs a handful of statements instead of thousands. When anything in a
batch fails, the batch's savepoint is rolled back and its items are retried one
by one, so one bad event never takes good ones down with it, and a failure
never leaves half an interaction behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.events import ChannelEvent, Ingestible, InteractionUpdate
from hub.ingest import append, dedupe, identity, index, journal, notify, thread, updates
from hub.ingest.journal import Arrival
from hub.ingest.pipeline import BatchState, IngestResult, PipelineConfig, pipeline_config
from hub.metrics import instruments
from hub.models import utcnow

log = logging.getLogger(__name__)


def ingest(
    session: Session,
    item: Ingestible,
    *,
    source: str,
    context: Mapping[str, Any] | None = None,
) -> IngestResult:
    """Journal and process one event or update in the caller's transaction."""
    return ingest_many(session, [item], source=source, context=context)[0]


def ingest_many(
    session: Session,
    items: Sequence[Ingestible],
    *,
    source: str,
    context: Mapping[str, Any] | None = None,
    contexts: Sequence[Mapping[str, Any]] | None = None,
) -> list[IngestResult]:
    """Journal and process a batch in the caller's transaction, in order.

    ``source`` names who delivered the items ("api", "twilio.message",
    "email:support@example.com/INBOX"); ``context`` is what that source's
    parser needs, besides the raw payload, to parse it again on replay.
    ``contexts`` instead gives each item its own (each IMAP message has its
    own INTERNALDATE), so items that differ in it are still one batch.
    Failures are returned per item (``error``), never raised, so the caller
    can still commit the journal and answer the provider.
    """
    if not items:
        return []
    if contexts is not None and (context is not None or len(contexts) != len(items)):
        raise ValueError("ingest_many: give one context for every item, or contexts with one per item")
    per_item = contexts if contexts is not None else [context or {}] * len(items)
    arrivals = [Arrival(item, source, item_context) for item, item_context in zip(items, per_item, strict=True)]
    return process_journaled(session, items, journal.journal_processed(session, arrivals, utcnow()))


def process_journaled(session: Session, items: Sequence[Ingestible], journal_ids: Sequence[int]) -> list[IngestResult]:
    """Process items whose payloads are already in the journal (ingest, and replay)."""
    config = pipeline_config(session)
    now = utcnow()
    metrics = instruments()
    metrics.ingest_batch_size.observe(len(items))
    started = time.perf_counter()
    try:
        with session.begin_nested():
            done = Batch(session, config, now).run(items, journal_ids)
        metrics.ingest_batch_seconds.observe(time.perf_counter() - started)
        return done
    except Exception as exc:
        if len(items) == 1:
            return [journal.record_failure(session, journal_ids[0], exc)]
        log.warning("batch of %d failed (%s); retrying one by one", len(items), exc)
    results = []
    for item, journal_id in zip(items, journal_ids, strict=True):
        try:
            with session.begin_nested():
                results.extend(Batch(session, config, now).run([item], [journal_id]))
        except Exception as exc:
            results.append(journal.record_failure(session, journal_id, exc))
    return results


class Batch:
    """One batch's run through the steps; its state is what the steps share."""

    def __init__(self, session: Session, config: PipelineConfig, now: datetime) -> None:
        self.state = BatchState(session, session.connection(), config, now)

    def run(self, items: Sequence[Ingestible], journal_ids: Sequence[int]) -> list[IngestResult]:
        """Every item's result, in order; what changed is announced to the live feed last, in the transaction."""
        results: list[IngestResult | None] = [None] * len(items)
        events = [(i, item, journal_ids[i]) for i, item in enumerate(items) if isinstance(item, ChannelEvent)]
        pending_updates: list[updates.Update] = [
            (i, item, journal_ids[i]) for i, item in enumerate(items) if isinstance(item, InteractionUpdate)
        ]
        if events:
            for i, result in self._events(events).items():
                results[i] = result
        # Updates an event implies (a bounce failing the message it reports on)
        # are applied after the events, so they can name one from this batch.
        for _, item, journal_id in events:
            pending_updates.extend((None, u, journal_id) for u in item.updates)
        if pending_updates:
            for i, result in updates.apply_updates(self.state, pending_updates).items():
                results[i] = result
        notify.announce(self.state)
        final = [r for r in results if r is not None]
        assert len(final) == len(items)
        return final

    def _events(self, events: list[tuple[int, ChannelEvent, int]]) -> dict[int, IngestResult]:
        state = self.state
        results: dict[int, IngestResult] = {}
        unique = dedupe.first_of_each(events, results)
        pending = [identity.pending(state, i, item, journal_id, fp) for i, item, journal_id, fp in unique]
        identity.resolve_customers(state, pending)
        fresh = dedupe.not_on_timeline(state, pending, results)
        loaded = thread.choose_conversations(state, fresh)
        append.save_conversations(state, fresh, loaded)
        ids, documents = append.append_interactions(state, fresh)
        index.index_documents(state, documents)
        for p, interaction_id in zip(fresh, ids, strict=True):
            results[p.index] = IngestResult(
                journal_id=p.journal_id,
                interaction_id=interaction_id,
                customer_id=p.customer_id,
                conversation_id=p.conversation.id if p.conversation else None,
            )
            notify.interaction_created(state, p, interaction_id)
        journal.record_duplicates(state, results.values())
        return results
