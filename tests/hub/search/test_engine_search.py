"""Searching on the engine means what it means on the embedded backends, and finds what people type."""

from __future__ import annotations

import pytest

from hub.events import Channel, InteractionKind
from hub.runtime import Runtime
from hub.search import InvalidQuery, SearchQuery
from hub.search.engine import EngineBackend
from hub.search.mapping import index_body
from hub.search.query import Filters
from tests.hub.events import event
from tests.hub.search.conftest import put, settle


def ids(engine: EngineBackend, text: str) -> list[int]:
    query = SearchQuery(text=text, limit=100)
    return [h.interaction_id for h in engine.run(query, Filters.of(query)).page.hits]


def test_words_phrases_prefixes_and_what_people_type(engine_runtime: Runtime, engine: EngineBackend) -> None:
    email, sms, call = (
        r.interaction_id
        for r in put(
            engine_runtime,
            event(Channel.EMAIL, "Maria.Keller@Example.com", hours=0, subject="Größe der Bank",
                  text="Where is order #48213? The bench is <b>late</b>."),
            event(Channel.SMS, "+493023125042", hours=1, text="Lieferung heute?"),
            event(Channel.VOICE, "+4915112345678", hours=2, kind=InteractionKind.CALL,
                  text="caller asked about a refund"),
        )
    )  # fmt: skip
    settle(engine_runtime)
    assert ids(engine, "grosse") == [email]  # folded
    assert ids(engine, "48213") == [email]
    assert ids(engine, "#48213") == [email]
    assert ids(engine, '"order 48213"') == [email]
    assert ids(engine, '"48213 order"') == []
    assert ids(engine, "bank*") == [email]
    assert ids(engine, "maria.keller@") == [email]
    assert ids(engine, "keller") == [email]
    assert ids(engine, "+49 30 2312") == [sms]
    assert ids(engine, "030 2312-50") == [sms]
    assert ids(engine, "0049 30 23125042") == [sms]
    assert ids(engine, "refund") == [call]
    assert ids(engine, "late bench") == [email]
    assert ids(engine, "late refund") == []
    # Nothing a user types is a syntax error: operators are words or nothing.
    for typed in ['"unbalanced late', "late AND (bench OR", "text:late", "late /regex/", "late +-! ~2"]:
        assert email in ids(engine, typed) or ids(engine, typed) == [], typed
    with pytest.raises(InvalidQuery):
        ids(engine, "+-! *")


def test_highlights_are_escaped_with_mark(engine_runtime: Runtime, engine: EngineBackend) -> None:
    put(engine_runtime, event(Channel.EMAIL, "ana@example.com", text="Please refund <b>order</b> 48213 & more"))
    settle(engine_runtime)
    [hit] = engine.search(None, SearchQuery(text="refund")).hits  # type: ignore[arg-type]
    assert "<mark>refund</mark>" in hit.snippet.lower()
    assert "&lt;b&gt;order&lt;/b&gt;" in hit.snippet
    assert "<b>" not in hit.snippet


def test_the_mapping_is_strict(engine: EngineBackend) -> None:
    """Provider metadata can never add fields: a document with one is refused."""
    assert index_body(shards=1, replicas=0, loading=False)["mappings"]["dynamic"] == "strict"
    [item] = engine.client.bulk([{"_index": engine.alias, "_id": "1", "_source": {"provider_metadata": {"x": 1}}}])
    assert item.status == 400
    assert "strict" in (item.error or "")
