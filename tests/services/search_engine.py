"""The search engine: ``osmem-server``, an in-memory OpenSearch-compatible engine on loopback (no JVM).

One server per test session (it starts in well under a second); each test
gets a clone of its own: an empty cluster at its own URL, made in milliseconds.
The official ``elasticsearch`` client sends media types with
``compatible-with=N``, which the engine answers with 406: a test-only node
class that sends plain ``application/json`` makes it work, and it belongs in
the tests, never in the product.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from osmem_server import OsmemError, OsmemServer

from tests.services.process import SERVICE_TIMEOUT, require


@pytest.fixture(scope="session")
def search_engine() -> Iterator[OsmemServer]:
    """The session's search engine; tests take :func:`search_engine_url` for a cluster of their own."""
    try:
        server = OsmemServer.start(japanese=False, startup_timeout=SERVICE_TIMEOUT)
    except (OsmemError, OSError) as error:
        require("search engine", f"osmem-server could not start: {error}")
    try:
        yield server
    finally:
        server.close()
        # close() ends the process but leaves its output pipe open, which
        # pytest (warnings as errors) reports as an unclosed file.
        if server.process.stdout is not None:
            server.process.stdout.close()


@pytest.fixture
def search_engine_url(search_engine: OsmemServer) -> Iterator[str]:
    """The URL of an empty OpenSearch-compatible cluster for one test, removed afterwards."""
    clone = search_engine.clone()
    try:
        yield clone.url
    finally:
        clone.close()
