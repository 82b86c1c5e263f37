"""Search while the engine is down: the database answers what it can, marked, without a timeout per search,
and the engine takes over again when it is back, caught up, without a restart.

The engine here is a real ``osmem-server`` process of the test's own, on its
own port, stopped with SIGSTOP (a hung engine: connections are accepted and
never answered, the worst case, since every request costs the full timeout)
and continued with SIGCONT, its index intact. The circuit's clock is the
test's, so "15 seconds later" takes no time.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from hub.events import Channel
from hub.models import Role
from hub.runtime import Runtime
from hub.search.engine import EngineBackend
from hub.search.fallback import EngineCircuit
from tests.conftest import AppFactory, make_agent
from tests.hub.events import event
from tests.hub.search.conftest import put, settle
from tests.services import free_port, require
from tests.services.process import SERVICE_TIMEOUT, port_is_open, wait_until

#: Seconds a request to the stopped engine waits; a search that asks it takes at least this long.
TIMEOUT = 2.0
RETRY = 15.0


class Stoppable:
    """An osmem-server process of one test's own: stop() freezes it, resume() lets it carry on."""

    def __init__(self) -> None:
        try:
            import osmem_server
        except ImportError as exc:
            require("search engine", f"osmem-server is not installed ({exc})")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(  # the engine's own binary, no shell
            [osmem_server.resolve_binary(), "--addr", f"127.0.0.1:{self.port}", "--no-ja", "--no-stdin-watch"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_until(lambda: port_is_open("127.0.0.1", self.port), SERVICE_TIMEOUT, interval=0.02):
            self.close()
            require("search engine", "osmem-server did not start")

    def stop(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        self.resume()
        self.process.kill()
        self.process.wait()


@pytest.fixture
def stoppable() -> Iterator[Stoppable]:
    engine = Stoppable()
    yield engine
    engine.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def outage(make_app: AppFactory, stoppable: Stoppable) -> tuple[Flask, Runtime, EngineBackend, Clock]:
    app = make_app(search={"backend": "opensearch", "url": stoppable.url, "replicas": 0, "request_timeout": TIMEOUT,
                           "retry_seconds": RETRY})  # fmt: skip
    runtime: Runtime = app.extensions["corridor"]
    backend = runtime.search
    assert isinstance(backend, EngineBackend)
    backend.verify()
    clock = Clock()
    backend.circuit = EngineCircuit(RETRY, clock=clock)
    return app, runtime, backend, clock


def scrape(app: Flask) -> dict[tuple[str, str], float]:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return {
        (s.name, s.labels.get("reason", "")): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }


def timed_get(client: Any, url: str, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    answer = client.get(url, **kwargs)
    return answer, time.perf_counter() - started


def test_a_stopped_engine_costs_one_timeout_the_database_answers_and_the_engine_takes_over_again(
    outage: tuple[Flask, Runtime, EngineBackend, Clock],
    stoppable: Stoppable,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, runtime, _, clock = outage
    postgres = database_url.startswith("postgresql")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.SUPERVISOR)}"}
    put(runtime, event(Channel.SMS, "+14155550142", hours=0, text="parcel before the outage"))
    settle(runtime)
    before = scrape(app)

    stoppable.stop()
    # Written while the engine is down: in the database and the outbox, not in the engine.
    put(runtime, event(Channel.EMAIL, "maria@example.com", hours=1, text="parcel during the outage"))
    with caplog.at_level(logging.WARNING, logger="hub.search.fallback"):
        first, took = timed_get(client, "/api/search?q=parcel&facets=1", headers=headers)
    assert took >= TIMEOUT  # this search asked the engine and waited for it
    assert [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    if postgres:
        # PostgreSQL's full-text index follows the rows: the fallback holds what the engine does not yet.
        assert first.status_code == 200
        assert first.json["fallback"]["reason"] == "engine-failed"
        assert first.json["fallback"]["backend"] == "postgres"
        assert [h["snippet"] for h in first.json["hits"]] == [
            "<mark>parcel</mark> during the outage",
            "<mark>parcel</mark> before the outage",
        ]
        assert first.json["facets"]["channel"] == {"email": 1, "sms": 1}
    else:
        # SQLite's FTS5 is not written beside an engine: words are not searched from a stale index.
        assert first.status_code == 503
        assert "phone numbers and email addresses" in first.json["error"]["message"]

    # The circuit is open: the next searches do not wait for the engine at all.
    again, took = timed_get(client, "/api/search?q=%2B1%20415%20555%200142", headers=headers)
    assert took < TIMEOUT
    assert again.status_code == 200
    assert again.json["fallback"]["reason"] == "circuit-open"
    assert again.json["fallback"]["backend"] == ("postgres" if postgres else "identities")
    assert [h["snippet"] for h in again.json["hits"]] == ["parcel before the outage"]
    metrics = scrape(app)
    assert metrics[("corridor_search_circuit_open", "")] == 1
    counted = metrics.get(("corridor_search_fallback_total", "circuit-open"), 0)
    assert counted == before.get(("corridor_search_fallback_total", "circuit-open"), 0) + 1

    # The page says where its results come from.
    make_agent(runtime, Role.AGENT, "ana@corridor.test", password="a long enough password")
    from tests.hub.console import log_in

    assert log_in(client, "ana@corridor.test", "a long enough password").status_code == 302
    page, took = timed_get(client, "/search?q=maria%40example.com")
    assert took < TIMEOUT
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "The search engine is not answering." in html
    assert re.findall(r'data-interaction="(\d+)"', html)  # maria's mail, found through her address

    # Back: the worker's indexer catches the engine up from the outbox, and the
    # first search after the retry period finds it answering; no restart.
    stoppable.resume()
    settle(runtime)
    clock.now += RETRY
    with caplog.at_level(logging.WARNING, logger="hub.search.fallback"):
        back = client.get("/api/search?q=parcel&facets=1", headers=headers)
    assert back.status_code == 200
    assert "fallback" not in back.json
    assert [h["snippet"] for h in back.json["hits"]] == [
        "<mark>parcel</mark> during the outage",
        "<mark>parcel</mark> before the outage",
    ]
    assert [r.getMessage() for r in caplog.records if "answers again" in r.getMessage()]
    assert scrape(app)[("corridor_search_circuit_open", "")] == 0
    assert "fallback" not in client.get("/api/search?q=parcel", headers=headers).json


def test_while_the_engine_is_tried_again_other_searches_do_not_wait_for_it() -> None:
    clock = Clock()
    circuit = EngineCircuit(15.0, clock=clock)
    assert circuit.allow()
    circuit.failed("no answer")
    assert not circuit.allow()
    clock.now += 15.0
    assert circuit.allow()  # one search tries the engine...
    assert not circuit.allow()  # ...and the one arriving meanwhile answers from the database
    circuit.failed("no answer")
    clock.now += 14.0
    assert not circuit.allow()
    clock.now += 1.0
    assert circuit.allow()
    circuit.succeeded()
    assert circuit.allow()
    assert circuit.allow()
