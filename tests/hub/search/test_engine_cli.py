"""`corridor search rebuild | check | status` and start-up against the engine, as an operator uses them."""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import delete

from hub.cli import cli
from hub.config import SettingsError
from hub.events import Channel
from hub.models import OutboxEntry
from hub.runtime import Runtime
from hub.search import lifecycle
from hub.search.engine import EngineBackend
from hub.search.opensearch import OpenSearchClient
from tests.hub.events import event
from tests.hub.search.conftest import put, settle
from tests.services import free_port


def corridor(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app), catch_exceptions=False)


def test_status_shows_documents_the_engine_refused_and_a_rebuild_mends_them(
    engine_app: Flask, engine_runtime: Runtime, engine: EngineBackend
) -> None:
    put(engine_runtime, *[event(Channel.SMS, "+14155550142", hours=h, text=f"hello {h}") for h in range(3)])
    # An index whose mapping has drifted from Corridor's behind the alias: every document is refused.
    [good] = engine.client.alias_targets(engine.alias)
    drifted = f"{engine.alias}-drifted"
    mapping = {"dynamic": "strict", "properties": {"id": {"type": "long"}}}
    engine.client.create_index(drifted, {"settings": {"number_of_shards": 1}, "mappings": mapping})
    engine.client.update_aliases([{"remove": {"index": good, "alias": engine.alias}},
                                  {"add": {"index": drifted, "alias": engine.alias}}])  # fmt: skip
    result = settle(engine_runtime)
    assert result.failed == 3
    status = corridor(engine_app, "search", "status")
    assert status.exit_code == 0, status.output
    assert "3 failed" in status.output
    assert "strict_dynamic_mapping_exception" in status.output
    assert engine_app.test_client().get("/api/health").json["status"] == "degraded"

    rebuilt = corridor(engine_app, "search", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "loading interactions: 3/3" in rebuilt.output
    assert "docs/s" in rebuilt.output
    assert "ETA" in rebuilt.output
    assert "3 interactions loaded" in rebuilt.output
    assert drifted not in engine.client.alias_targets(engine.alias)
    check = corridor(engine_app, "search", "check")
    assert check.exit_code == 0, check.output
    assert "0 missing, 0 stale, 0 orphaned" in check.output
    assert "0 failed" in corridor(engine_app, "search", "status").output
    assert engine_app.test_client().get("/api/health").json["status"] == "ok"


def test_check_repair_queues_what_differs(
    engine_app: Flask, engine_runtime: Runtime, engine: EngineBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    [kept, lost] = put(engine_runtime, event(Channel.SMS, "+14155550142", text="one"),
                       event(Channel.SMS, "+14155550142", hours=1, text="two"))  # fmt: skip
    # A write that never reached the index: its outbox row is lost before the indexer saw it.
    with engine_runtime.database.write() as session:
        session.execute(delete(OutboxEntry).where(OutboxEntry.interaction_id == lost.interaction_id))
    settle(engine_runtime)
    monkeypatch.setattr(lifecycle, "SETTLE_SECONDS", 0.0)
    health = engine_app.test_client().get("/api/health").json
    assert health["status"] == "degraded"
    assert "the index holds 1 documents, the database 2" in health["reason"]
    found = corridor(engine_app, "search", "check")
    assert found.exit_code == 1
    assert f"missing: {lost.interaction_id}" in found.output
    repaired = corridor(engine_app, "search", "check", "--repair")
    assert "queued 1 documents" in repaired.output
    settle(engine_runtime)
    assert corridor(engine_app, "search", "check").exit_code == 0
    del kept


def test_a_wrong_url_stops_start_up_naming_the_setting(engine: EngineBackend) -> None:
    engine.client = OpenSearchClient.from_settings(
        replace(engine.settings, url=f"http://127.0.0.1:{free_port()}", request_timeout=1.0)
    )
    with pytest.raises(SettingsError, match="HUB_SEARCH_URL: cannot reach the search engine"):
        engine.verify()
