"""/metrics as a Prometheus scraper sees it, and the request id that follows an event."""

from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from hub.journal import find_entry
from hub.logs import JsonFormatter
from hub.runtime import Runtime
from tests.conftest import AppFactory
from tests.hub.events import event_json


def scrape(client: FlaskClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_journal_and_ingest_are_counted(client: FlaskClient, runtime: Runtime, auth: dict[str, str]) -> None:
    before = scrape(client)
    for _ in range(3):
        assert client.post("/api/events", json=event_json(), headers=auth).status_code == 202
    waiting = scrape(client)
    assert value(waiting, "corridor_journal_backlog_entries") == 3
    assert value(waiting, "corridor_journal_backlog_age_seconds") >= 0
    runtime.journal.drain()
    after = scrape(client)

    posted = {"method": "POST", "route": "/api/events", "status": "202"}
    name = "corridor_http_request_duration_seconds"
    assert value(after, f"{name}_count", **posted) - value(before, f"{name}_count", **posted) == 3
    assert value(after, f"{name}_bucket", **posted, le="+Inf") == value(after, f"{name}_count", **posted)
    received = "corridor_journal_received_total"
    assert value(after, received, source="api") - value(before, received, source="api") == 3
    processed = "corridor_journal_processed_total"
    assert value(after, processed) - value(before, processed) == 3
    assert value(after, "corridor_journal_backlog_entries") == 0
    batches = "corridor_ingest_batch_size_sum"
    assert value(after, batches) - value(before, batches) == 3
    assert value(after, "corridor_ingest_batch_duration_seconds_count") > value(
        before, "corridor_ingest_batch_duration_seconds_count"
    )


def test_a_route_that_does_not_exist_is_one_series_not_one_per_path(client: FlaskClient) -> None:
    for path in ("/no/such/a", "/no/such/b"):
        client.get(path)
    samples = scrape(client)
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(samples, "corridor_http_request_duration_seconds_count", **unmatched) >= 2
    assert not any("/no/such" in str(labels) for _name, labels in samples)


def test_metrics_answer_only_the_allowed_addresses_without_a_token(make_app: AppFactory) -> None:
    app = make_app(metrics={"allow_from": ["10.0.0.0/8"]})
    client = app.test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 403
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200


def test_with_a_token_metrics_answer_the_token_from_anywhere(make_app: AppFactory) -> None:
    client = make_app(metrics={"token": "scrape-secret"}).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    outside = {"REMOTE_ADDR": "192.0.2.7"}
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}, environ_base=outside)
    assert ok.status_code == 200


def test_the_request_id_follows_an_event_from_the_request_to_the_batch_that_processed_it(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    response = client.post("/api/events", json=event_json(), headers={**auth, "X-Request-Id": "lb-7f3a"})
    assert response.headers["X-Request-Id"] == "lb-7f3a"
    journal_id = response.json["journal_id"]
    entry = find_entry(runtime.database, journal_id)
    assert entry is not None
    assert entry.context["request_id"] == "lb-7f3a"

    with caplog.at_level(logging.INFO, logger="hub.journal"):
        runtime.journal.drain()
    [line] = [json.loads(JsonFormatter().format(r)) for r in caplog.records if "journal entries" in r.getMessage()]
    assert line["request_ids"] == ["lb-7f3a"]
    assert journal_id in line["journal_ids"]
    assert line["level"] == "INFO"


def test_a_request_without_a_sensible_id_gets_a_new_one(client: FlaskClient) -> None:
    first = client.get("/api/health", headers={"X-Request-Id": "no spaces <or> quotes"}).headers["X-Request-Id"]
    second = client.get("/api/health").headers["X-Request-Id"]
    assert first != "no spaces <or> quotes"
    assert len(first) == len(second) == 16
    assert first != second


def test_json_logs_are_a_setting(make_app: AppFactory) -> None:
    root = logging.getLogger()
    formatters = [(handler, handler.formatter) for handler in root.handlers]
    try:
        make_app(app={"log_format": "json"})
        assert root.handlers
        assert all(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
    finally:
        for handler, formatter in formatters:
            handler.setFormatter(formatter)
