"""Every change reaches the index, in order, once; check finds drift and repair mends it; rebuild loses nothing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, func, select, update

from hub import customers
from hub.events import Channel, IdentityKind, InteractionKind, InteractionUpdate
from hub.ingest import ingest
from hub.models import Interaction, OutboxEntry
from hub.runtime import Runtime
from hub.search import SearchQuery, indexer
from hub.search.engine import EngineBackend
from hub.search.indexer import Change, drain, send
from hub.search.lifecycle import check, outbox_status, rebuild, repair
from hub.search.query import Filters
from tests.hub.events import at, event
from tests.hub.search.conftest import put, settle


def source(engine: EngineBackend, interaction_id: int) -> dict[str, object]:
    answer = engine.client.search(engine.alias, {"query": {"term": {"id": interaction_id}}, "version": True})
    [hit] = answer["hits"]["hits"]
    return {**hit["_source"], "_version": hit["_version"]}


def found(engine: EngineBackend, text: str, **filters: object) -> list[int]:
    query = SearchQuery(text=text, limit=100)
    return [h.interaction_id for h in engine.run(query, Filters(**filters)).page.hits]  # type: ignore[arg-type]


def test_every_change_kind_reaches_the_index(engine_runtime: Runtime, engine: EngineBackend) -> None:
    sms, call, email = put(
        engine_runtime,
        event(Channel.SMS, "+14155550142", hours=0, text="Is my bench on its way?"),
        event(Channel.VOICE, "+14155550142", hours=1, kind=InteractionKind.CALL, external_id="CA1", text=""),
        event(Channel.EMAIL, "maria@example.com", hours=2, subject="Order 48213", text="Where is it?"),
    )
    settle(engine_runtime)
    assert found(engine, "bench") == [sms.interaction_id]

    # A transcript and a call outcome, through the write path.
    with engine_runtime.database.write() as session:
        ingest(
            session,
            InteractionUpdate(channel=Channel.VOICE, external_id="CA1", update_id="CA1:done", occurred_at=at(1.1),
                              status="completed", duration_seconds=42, text_append="the courier lost the parcel"),
            source="test",
        )  # fmt: skip
    settle(engine_runtime)
    assert found(engine, "courier") == [call.interaction_id]
    assert source(engine, call.interaction_id)["status"] == "completed"
    assert found(engine, "parcel", statuses=("completed",)) == [call.interaction_id]

    # A delivery status alone (no text): the ORM change queues the document.
    with engine_runtime.database.write() as session:
        session.execute(update(Interaction).where(Interaction.id == sms.interaction_id).values(status="queued"))
    with engine_runtime.database.write() as session:
        ingest(
            session,
            InteractionUpdate(channel=Channel.SMS, external_id=session.get(Interaction, sms.interaction_id).external_id,  # type: ignore[union-attr]
                              update_id="sms:delivered", occurred_at=at(0.1), status="delivered"),
            source="test",
        )  # fmt: skip
    settle(engine_runtime)
    assert source(engine, sms.interaction_id)["status"] == "delivered"

    # Merge moves the email's document to the phone customer; undo moves it back.
    with engine_runtime.database.write() as session:
        record = customers.merge(session, email.customer_id, sms.customer_id, actor_id=None)  # type: ignore[arg-type]
    settle(engine_runtime)
    assert found(engine, "48213", customer_id=sms.customer_id) == [email.interaction_id]
    with engine_runtime.database.write() as session:
        customers.unmerge(session, record.id, actor_id=None)
    settle(engine_runtime)
    assert found(engine, "48213", customer_id=sms.customer_id) == []
    assert source(engine, email.interaction_id)["customer_id"] == email.customer_id

    # Unlinking the email identity takes its normalised address off the document.
    with engine_runtime.database.write() as session:
        identity = customers.summary(session, email.customer_id).identities[0]  # type: ignore[arg-type]
        assert identity.kind == IdentityKind.EMAIL
        customers.remove_identity(session, email.customer_id, identity.id, actor_id=None)  # type: ignore[arg-type]
    result = settle(engine_runtime)
    assert result.indexed == 1

    # Deleting an interaction (erasure) deletes its document.
    with engine_runtime.database.write() as session:
        doomed = session.get(Interaction, email.interaction_id)
        session.delete(doomed)
    settle(engine_runtime)
    assert found(engine, "48213") == []
    assert check(engine_runtime.database, engine).ok


def test_a_stale_write_never_overwrites_a_newer_one(engine_runtime: Runtime, engine: EngineBackend) -> None:
    [sms] = put(engine_runtime, event(Channel.SMS, "+14155550142", text="first words"))
    settle(engine_runtime)
    indexed = source(engine, sms.interaction_id)
    newer = int(indexed["_version"])  # type: ignore[call-overload]
    assert newer >= 1
    with engine_runtime.database.write() as session:
        session.execute(update(Interaction).where(Interaction.id == sms.interaction_id).values(text="stale words"))
    # An indexer that read an older state (a lower version) sends it late: 409, counted, ignored.
    with engine_runtime.database.read() as session:
        [outcome] = send(engine, session, [Change(sms.interaction_id, newer - 1 if newer > 1 else 0, ())])
    assert outcome.result == "conflict"
    engine.client.refresh(engine.alias)
    assert source(engine, sms.interaction_id)["text"] == "first words"


def test_check_finds_missing_stale_and_orphaned_documents_and_repair_mends_them(
    engine_runtime: Runtime, engine: EngineBackend
) -> None:
    results = put(engine_runtime, *[event(Channel.SMS, "+14155550142", hours=h, text=f"note {h}") for h in range(5)])
    gone, changed = results[0].interaction_id, results[1].interaction_id
    # A write that never reached the index: its outbox row lost before the indexer saw it.
    with engine_runtime.database.write() as session:
        session.execute(delete(OutboxEntry).where(OutboxEntry.interaction_id == gone))
    settle(engine_runtime)
    orphan = dict(source(engine, results[2].interaction_id))
    orphan.pop("_version")
    orphan["id"] = 999_999
    engine.client.bulk([{"_index": engine.alias, "_id": "999999", "_source": orphan}])
    # A change nobody told the index about (a row edited by hand).
    with engine_runtime.database.write() as session:
        session.execute(update(Interaction).where(Interaction.id == changed).values(text="edited behind its back"))
        session.execute(delete(OutboxEntry))
    engine.client.refresh(engine.alias)

    report = check(engine_runtime.database, engine)
    assert (report.missing, report.stale, report.orphaned) == ([gone], [changed], [999_999])
    assert (report.in_database, report.in_index) == (5, 5)
    assert repair(engine_runtime.database, report) == 3
    settle(engine_runtime)
    assert check(engine_runtime.database, engine).ok
    assert found(engine, "behind") == [changed]


def test_a_rebuild_while_events_keep_arriving_loses_nothing(engine_runtime: Runtime, engine: EngineBackend) -> None:
    put(engine_runtime, *[event(Channel.SMS, "+14155550142", hours=h / 100, text=f"before {h}") for h in range(600)])
    settle(engine_runtime)
    old = engine.client.alias_targets(engine.alias)
    stop = threading.Event()
    written: list[int] = []

    def arrivals() -> None:
        n = 0
        while not stop.is_set():
            [r] = put(engine_runtime, event(Channel.EMAIL, f"c{n}@example.com", hours=10 + n, text=f"during {n}"))
            written.append(r.interaction_id)  # type: ignore[arg-type]
            n += 1
            if n % 7 == 0:
                drain(engine_runtime.database, engine)  # the live indexer keeps writing to the old index

    thread = threading.Thread(target=arrivals)
    thread.start()
    try:
        seen: list[tuple[int, int]] = []
        report = rebuild(engine_runtime.database, engine, lambda done, total: seen.append((done, total)))
    finally:
        stop.set()
        thread.join()
    settle(engine_runtime)
    assert engine.client.alias_targets(engine.alias) == [report.index] != old
    assert seen[0][0] == 0
    assert seen[-1][0] >= 600
    assert written, "events arrived during the rebuild"
    final = check(engine_runtime.database, engine)
    assert (final.missing, final.stale, final.orphaned) == ([], [], [])
    with engine_runtime.database.read() as session:
        total = session.scalar(select(func.count()).select_from(Interaction))
    assert engine.client.count(engine.alias) == total == 600 + len(written)
    # The index is back to normal settings and the held outbox rows are purged.
    with engine_runtime.database.read() as session:
        assert outbox_status(session).hold is None


def test_an_indexer_crashing_after_its_bulk_request_loses_and_doubles_nothing(
    engine_runtime: Runtime, engine: EngineBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(engine_runtime, *[event(Channel.SMS, "+14155550142", hours=h, text=f"crash {h}") for h in range(4)])

    def crash(*_args: object) -> None:
        raise RuntimeError("killed between the bulk request and the commit")

    with monkeypatch.context() as patched:
        patched.setattr(indexer, "_record", crash)
        with pytest.raises(RuntimeError):
            indexer.drain_once(engine_runtime.database, engine)
    with engine_runtime.database.read() as session:
        assert outbox_status(session).pending == 4  # nothing marked: it is all sent again
    again = settle(engine_runtime)
    assert again.conflicts == 4  # the engine has them at these versions already: the repeat changes nothing
    assert engine.client.count(engine.alias) == 4
    assert check(engine_runtime.database, engine).ok


def test_indexers_running_at_once_share_the_outbox(engine_runtime: Runtime, engine: EngineBackend) -> None:
    put(engine_runtime, *[event(Channel.SMS, f"+1415555{n:04d}", hours=n, text=f"shared {n}") for n in range(400)])
    results: list[indexer.DrainResult] = []

    def work() -> None:
        results.append(drain(engine_runtime.database, engine))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.client.refresh(engine.alias)
    assert engine.client.count(engine.alias) == 400
    if engine_runtime.database.dialect == "postgresql":
        # FOR UPDATE SKIP LOCKED: every row went to exactly one indexer.
        assert sum(r.indexed for r in results) == 400
        assert sum(r.conflicts for r in results) == 0
    assert check(engine_runtime.database, engine).ok
