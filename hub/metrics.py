"""Metrics in the Prometheus exposition format, served at ``/metrics``.

What is counted where it happens: requests by route and status (with their
latency), journal entries received, processed and failed, ingest batches
(sizes and durations), mail intake per mailbox folder and outbound sends by
channel and outcome. What the database knows better than any one process
(how many entries wait for a processor and since when) is read from it at
each scrape, so every web process answers the same: the journal's backlog,
the search index's lag behind the database (the outbox an engine's indexer
drains) and the webhooks waiting to go out. Searches answered from the
database while the engine is down are counted, with whether the process's
circuit to the engine is open. Stream servers count their open
streams (summed over the live ones).

Several processes (``corridor run`` with its worker, N web processes and M
workers on a machine) share their counts through ``prometheus_client``'s
multiprocess mode: each process writes its values to files in the directory
``PROMETHEUS_MULTIPROC_DIR`` names, and a scrape of any web process adds
them up. That mode is chosen when the first metric is made, so the
instruments are made on first use (:func:`instruments`), after ``corridor
run`` has set the variable (see ``prepare_multiprocess``), never at import.

``/metrics`` answers a bearer token (``[metrics] token``) or, without one,
only clients whose address is in ``[metrics] allow_from`` (loopback by
default): an orchestrator scrapes it on an internal address, and a reverse
proxy in front of Corridor should not pass it on.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, abort, request
from sqlalchemy import func, select

from hub.models import OutboxEntry, WebhookDelivery, utcnow

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram
    from prometheus_client.core import Metric

    from hub.db import Database

#: The environment variable prometheus_client's multiprocess mode reads.
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

#: Request latencies: webhooks answer in a few ms, pages in tens.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


@dataclass(frozen=True)
class Instruments:
    """Every metric Corridor records; one set per process."""

    requests: Histogram
    journal_received: Counter
    journal_processed: Counter
    journal_failed: Counter
    ingest_batch_size: Histogram
    ingest_batch_seconds: Histogram
    mail_messages: Counter
    mail_errors: Counter
    mail_last_sync: Gauge
    sends: Counter
    live_streams: Gauge
    live_refused: Counter
    search_fallback: Counter
    search_circuit_open: Gauge


_made: list[Instruments] = []
_making = threading.Lock()


def instruments() -> Instruments:
    """The metrics, made on first use (so ``PROMETHEUS_MULTIPROC_DIR`` is read then)."""
    # Looked up without the lock: every request comes here.
    if _made:
        return _made[0]
    with _making:
        # The first requests of a process arrive together: one makes them.
        if not _made:
            _made.append(_make())
        return _made[0]


def _make() -> Instruments:
    from prometheus_client import Counter, Gauge, Histogram

    return Instruments(
        requests=Histogram(
            "corridor_http_request_duration_seconds",
            "HTTP requests by route and status, with their latency.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
        ),
        journal_received=Counter("corridor_journal_received", "Payloads journaled as received, by source.", ["source"]),
        journal_processed=Counter(
            "corridor_journal_processed", "Received journal entries a processor took through the pipeline."
        ),
        journal_failed=Counter(
            "corridor_journal_failed", "Journal entries that could not be processed (to be retried)."
        ),
        ingest_batch_size=Histogram(
            "corridor_ingest_batch_size", "Items per write-path batch.", buckets=_BATCH_BUCKETS
        ),
        ingest_batch_seconds=Histogram(
            "corridor_ingest_batch_duration_seconds", "Time a write-path batch took.", buckets=_LATENCY_BUCKETS
        ),
        mail_messages=Counter(
            "corridor_mail_messages", "Messages read by the mail intake, by mailbox folder.", ["mailbox", "folder"]
        ),
        mail_errors=Counter(
            "corridor_mail_errors", "Failed mail intake passes, by mailbox folder.", ["mailbox", "folder"]
        ),
        mail_last_sync=Gauge(
            "corridor_mail_last_sync_timestamp_seconds",
            "When a mailbox folder last synced without error (Unix time).",
            ["mailbox", "folder"],
            multiprocess_mode="max",
        ),
        sends=Counter("corridor_outbound_sends", "Replies handed to a channel, by outcome.", ["channel", "outcome"]),
        # Summed over the stream servers that are running: a dead one's streams are gone with it.
        live_streams=Gauge(
            "corridor_live_streams",
            "Live-update streams open (consoles and chat widgets).",
            multiprocess_mode="livesum",
        ),
        live_refused=Counter(
            "corridor_live_refused", "Streams refused because [live] max_streams were open (the client retries)."
        ),
        search_fallback=Counter(
            "corridor_search_fallback",
            "Searches answered from the database because the search engine failed (engine-failed) or had just "
            "failed (circuit-open), or refused because the database could not answer them (unanswered).",
            ["reason"],
        ),
        # Any process that cannot reach the engine is worth an alert.
        search_circuit_open=Gauge(
            "corridor_search_circuit_open",
            "1 while searches skip the search engine after a failure (and retry it every [search] retry_seconds).",
            multiprocess_mode="livemax",
        ),
    )


def prepare_multiprocess(instance_dir: Path) -> Path | None:
    """Give this process and its children one metrics directory, fresh, unless one is set.

    For ``corridor run`` (a web process and its worker). Returns the
    directory it made, or None when ``PROMETHEUS_MULTIPROC_DIR`` was given
    (systemd's ``RuntimeDirectory``, a container's tmpfs): then whoever set
    it empties it before the processes start, as prometheus_client requires.
    """
    if os.environ.get(MULTIPROC_VARIABLE):
        return None
    path = instance_dir / "metrics" / str(os.getpid())
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_VARIABLE] = str(path)
    return path


class _DatabaseCollector:
    """What the database knows at scrape time: the journal's backlog and failures, the search index's lag
    (the outbox an engine's indexer drains), and the webhooks waiting to be delivered."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def describe(self) -> list[Metric]:
        # Nothing to describe up front: collect() queries the database.
        return []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        from hub.journal import failed_count, received_backlog

        waiting, oldest = received_backlog(self.database)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "corridor_journal_backlog_entries", "Received journal entries waiting for a processor.", value=waiting
        )
        yield GaugeMetricFamily(
            "corridor_journal_backlog_age_seconds", "How long the oldest received entry has waited.", value=age
        )
        yield GaugeMetricFamily(
            "corridor_journal_failed_entries",
            "Journal entries failed and waiting for a retry or a person.",
            value=failed_count(self.database),
        )
        now = utcnow()
        with self.database.read() as session:
            outbox = session.execute(select(func.count(), func.min(OutboxEntry.created_at))).one()
            hooks = session.execute(
                select(func.count(), func.min(WebhookDelivery.created_at)).where(
                    WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at.is_not(None)
                )
            ).one()
        yield GaugeMetricFamily(
            "corridor_search_outbox_entries",
            "Interactions written but not yet in the search engine's index (0 on the embedded backends).",
            value=outbox[0],
        )
        yield GaugeMetricFamily(
            "corridor_search_index_lag_seconds",
            "How long the oldest interaction waiting for the search engine has waited: the index's lag.",
            value=(now - outbox[1]).total_seconds() if outbox[1] is not None else 0.0,
        )
        yield GaugeMetricFamily(
            "corridor_webhook_pending_deliveries", "Webhook deliveries waiting to be sent or retried.", value=hooks[0]
        )
        yield GaugeMetricFamily(
            "corridor_webhook_oldest_pending_seconds",
            "How long the oldest waiting webhook delivery has waited.",
            value=(now - hooks[1]).total_seconds() if hooks[1] is not None else 0.0,
        )


def exposition(database: Database) -> bytes:
    """Every process's metrics (multiprocess mode) or this one's, and the database's."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_VARIABLE):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped in prometheus_client 0.26
        sources: Iterable[Any] = [registry]
    else:
        sources = [REGISTRY, registry]
    instruments()  # made, so a scrape before any request still lists them
    registry.register(_DatabaseCollector(database))
    return b"".join(generate_latest(source) for source in sources)


def _allowed(allow_from: Iterable[str], token: str) -> bool:
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    try:
        client = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(client in ipaddress.ip_network(network, strict=False) for network in allow_from)


def register_metrics(app: Flask, token: str, allow_from: list[str]) -> None:
    """Time every request and serve ``/metrics`` on ``app``."""

    def metrics() -> Response:
        if not _allowed(allow_from, token):
            abort(403 if not token else 401)
        from prometheus_client import CONTENT_TYPE_LATEST

        from hub.runtime import current_runtime

        return Response(exposition(current_runtime().database), content_type=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "metrics", metrics)
    wsgi_app = app.wsgi_app

    def timed(environ: dict[str, Any], start_response: Any) -> Any:
        # The start, for the histogram after the response is made.
        environ["corridor.started"] = time.perf_counter()
        return wsgi_app(environ, start_response)

    app.wsgi_app = timed  # type: ignore[method-assign]

    @app.after_request
    def observe(response: Response) -> Response:
        started = request.environ.get("corridor.started")
        if started is not None:
            rule = request.url_rule
            instruments().requests.labels(
                request.method, rule.rule if rule is not None else "unmatched", str(response.status_code)
            ).observe(time.perf_counter() - started)
        return response


def mail_synced(mailbox: str, folder: str, messages: int) -> None:
    """A mail intake pass over a folder ended without error, having read ``messages``."""
    metrics = instruments()
    if messages:
        metrics.mail_messages.labels(mailbox, folder).inc(messages)
    metrics.mail_last_sync.labels(mailbox, folder).set_to_current_time()


def mail_failed(mailbox: str, folder: str) -> None:
    """A mail intake pass over a folder (or its connection) failed."""
    instruments().mail_errors.labels(mailbox, folder).inc()
