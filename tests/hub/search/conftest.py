"""The search engine for the engine-backend tests, on loopback, through both clients.

Every engine test runs with ``backend = "opensearch"`` (opensearch-py) and
``backend = "elasticsearch"`` (the official client, through the test-only
:class:`~tests.hub.search.loopback_node.CompatibleMediaTypeNode`) against
``osmem-server``, an OpenSearch-compatible engine started for the session; a
fresh clone of it per test. With ``HUB_TEST_ELASTICSEARCH_URL`` set, a third
lane runs the same tests against that real Elasticsearch (official client,
no node class; each test under its own index prefix, deleted afterwards;
``HUB_TEST_ELASTICSEARCH_API_KEY`` and ``HUB_TEST_ELASTICSEARCH_CA_FILE`` for
a cluster with security on).
Without the engine the tests skip, and under ``CI=true`` they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from hub.config import SearchSettings
from hub.ingest import IngestResult, ingest_many
from hub.runtime import Runtime
from hub.search.elastic import ElasticClient
from hub.search.engine import EngineBackend
from hub.search.indexer import DrainResult, drain
from tests.conftest import AppFactory
from tests.hub.search.loopback_node import CompatibleMediaTypeNode
from tests.services import require

REAL_ELASTICSEARCH = os.environ.get("HUB_TEST_ELASTICSEARCH_URL", "")
#: For a real cluster with security on: an API key and the CA of its certificate.
REAL_ELASTICSEARCH_SETTINGS = {
    key: value
    for key, value in (
        ("api_key", os.environ.get("HUB_TEST_ELASTICSEARCH_API_KEY", "")),
        ("ca_file", os.environ.get("HUB_TEST_ELASTICSEARCH_CA_FILE", "")),
    )
    if value
}

_LANES = ["opensearch", "elasticsearch"] + (["elasticsearch-real"] if REAL_ELASTICSEARCH else [])


@pytest.fixture(scope="session")
def search_server() -> Iterator[Any]:
    """osmem-server for the session (its base is frozen; tests write to clones)."""
    try:
        from osmem_server import OsmemError, OsmemServer
    except ImportError as exc:
        require("search engine", f"osmem-server is not installed ({exc})")
    try:
        server = OsmemServer.start(japanese=False)
    except (OsmemError, OSError) as exc:
        require("search engine", f"osmem-server did not start: {exc}")
    server.freeze()
    yield server
    server.close()
    # OsmemServer.close leaves its end of the server's stdout open.
    if server.process.stdout is not None:
        server.process.stdout.close()
    server.process.wait()


@pytest.fixture(params=_LANES)
def engine_lane(request: pytest.FixtureRequest) -> str:
    lane: str = request.param
    return lane


@pytest.fixture
def engine_url(engine_lane: str, request: pytest.FixtureRequest) -> Iterator[str]:
    if engine_lane == "elasticsearch-real":
        yield REAL_ELASTICSEARCH
        return
    clone = request.getfixturevalue("search_server").clone()
    yield clone.url
    clone.close()


@pytest.fixture
def make_engine_app(make_app: AppFactory, engine_lane: str, engine_url: str) -> Iterator[Any]:
    """An app on this test's database with the engine backend of this lane, the index verified (alias made)."""
    prefixes: list[tuple[EngineBackend, str]] = []

    def factory(**sections: dict[str, Any]) -> Flask:
        prefix = f"t{uuid.uuid4().hex[:10]}" if engine_lane == "elasticsearch-real" else "corridor"
        search = {
            "backend": "opensearch" if engine_lane == "opensearch" else "elasticsearch",
            "url": engine_url,
            "index_prefix": prefix,
            "replicas": 0,
            "batch_size": 200,
            **(REAL_ELASTICSEARCH_SETTINGS if engine_lane == "elasticsearch-real" else {}),
            **sections.pop("search", {}),
        }
        app = make_app(search=search, **sections)
        runtime: Runtime = app.extensions["corridor"]
        backend = runtime.search
        assert isinstance(backend, EngineBackend)
        if engine_lane == "elasticsearch":
            backend.client = ElasticClient.from_settings(backend.settings, node_class=CompatibleMediaTypeNode)
        backend.verify()
        prefixes.append((backend, prefix))
        return app

    yield factory
    for backend, prefix in prefixes:
        if engine_lane == "elasticsearch-real":
            for name in backend.client.indices(f"{prefix}-*"):
                backend.client.delete_index(name)
        backend.client.close()


@pytest.fixture
def engine_app(make_engine_app: Any) -> Flask:
    app: Flask = make_engine_app()
    return app


@pytest.fixture
def engine_runtime(engine_app: Flask) -> Runtime:
    runtime: Runtime = engine_app.extensions["corridor"]
    return runtime


@pytest.fixture
def engine(engine_runtime: Runtime) -> EngineBackend:
    backend = engine_runtime.search
    assert isinstance(backend, EngineBackend)
    return backend


def put(runtime: Runtime, *items: object) -> list[IngestResult]:
    with runtime.database.write() as session:
        return ingest_many(session, list(items), source="test")  # type: ignore[arg-type]


def settle(runtime: Runtime) -> DrainResult:
    """Drain the outbox into the engine and make it searchable now (the worker's indexer, in the test's thread)."""
    backend = runtime.search
    assert isinstance(backend, EngineBackend)
    result = drain(runtime.database, backend)
    backend.client.refresh(backend.alias)
    return result


def settings_for(backend: EngineBackend) -> SearchSettings:
    return backend.settings
