"""Figure 8: live updates, committed -> received by server-sent-events clients, while webhooks arrive.

Processes, loopback only, as ``corridor run`` runs them: Corridor under
waitress with its worker (``tests.bench.httpserve``), the stream server
(``corridor live``) in a process of its own, a load generator posting events
to the web server (``tests.bench.loadgen``), and this process, which holds
the SSE clients (raw sockets on one asyncio loop in a thread) and publishes
marker events through ``hub.live.publish`` in their own transactions.

A marker's latency is from just after its commit to when a client has read
its frame. Clients follow a topic of their own, so the figure is the feed's
path (poller, fan-out, socket) and not the cost of relaying every benchmark
webhook to every client (see the README on fan-out).

Printed: p50/p99 latency at 100 and 1,000 clients; webhook requests/s with
no clients and with 1,000 clients connected and markers flowing; and the
inbox page's server time (p50/p99) on the database the run filled.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from hub import live
from hub.auth import create_agent
from hub.db import Database
from hub.live.tokens import issue_stream_token
from hub.models import Conversation, Role
from tests.bench.common import Result, Sizes, Workspace, hub_environ, percentile, runtime_of, say, seed_people
from tests.bench.webhook import CONNECTIONS, _start
from tests.bench.workload import people
from tests.hub.console import log_in

TOPIC = "bench"
MARKERS = 100
MARKER_RATE = 20.0
TARGET_P99_MS = 250.0
TARGET_WEBHOOK_RATIO = 0.90


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Clients:
    """``count`` SSE clients on one event loop; records when each marker reached each client."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.received: dict[int, list[float]] = defaultdict(list)
        self.connected = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._writers: list[asyncio.StreamWriter] = []

    async def _client(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
        self._writers.append(writer)
        writer.write(f"GET /live/stream?token={self.token} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        self.connected += 1
        while True:
            frame = await reader.readuntil(b"\n\n")
            for line in frame.split(b"\n"):
                if line.startswith(b"data: "):
                    arrived = time.perf_counter()
                    self.received[json.loads(line[6:])["data"]["n"]].append(arrived)

    def connect(self, count: int) -> None:
        for _ in range(count):
            asyncio.run_coroutine_threadsafe(self._client(), self.loop)
        deadline = time.monotonic() + 60
        while self.connected < count and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.connected < count:
            raise RuntimeError(f"only {self.connected} of {count} SSE clients connected")

    def close(self) -> None:
        def shut() -> None:
            for writer in self._writers:
                writer.transport.abort()

        self.loop.call_soon_threadsafe(shut)
        time.sleep(0.2)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


def _publish_markers(database: Database, first: int) -> dict[int, float]:
    committed: dict[int, float] = {}
    for n in range(first, first + MARKERS):
        with database.write() as session:
            live.publish(session, TOPIC, "bench.marker", {"n": n})
        committed[n] = time.perf_counter()
        time.sleep(1 / MARKER_RATE)
    return committed


def _latencies(clients: Clients, committed: dict[int, float], count: int) -> tuple[list[float], int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(len(clients.received[n]) < count for n in committed):
        time.sleep(0.05)
    samples = [(t - committed[n]) * 1000 for n in committed for t in clients.received[n]]
    missing = sum(max(count - len(clients.received[n]), 0) for n in committed)
    return samples, missing


def _load(port: int, token: str, seconds: float, max_requests: int, tag: str) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "tests.bench.loadgen", "--port", str(port), "--connections", str(CONNECTIONS),
        "--seconds", str(seconds), "--max-requests", str(max_requests), "--tag", tag,
        "--token", token, "--expect", "202",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=Path.cwd())


def _rps(load: subprocess.Popen[str]) -> float:
    out, _ = load.communicate(timeout=300)
    report: dict[str, Any] = json.loads(out)
    return float(report["rps"])


INBOX_EMAIL, INBOX_PASSWORD = "inbox@corridor.example", "inbox-bench-password"


def _inbox_timings(workspace: Workspace, db: Path, runs: int) -> tuple[float, float, int]:
    app = workspace.app(db, "live-inbox")
    runtime = runtime_of(app)
    with runtime.database.write() as session:
        create_agent(session, email=INBOX_EMAIL, name="Inbox", role=Role.AGENT, password=INBOX_PASSWORD)
    with runtime.database.read() as session:
        conversations = session.scalar(select(func.count()).select_from(Conversation)) or 0
    client = app.test_client()
    # Logged in through the form, as a browser is: a hand-made cookie goes stale
    # whenever the session's contents change (it did, and the figure was lost).
    if log_in(client, INBOX_EMAIL, INBOX_PASSWORD).status_code != 302:
        raise RuntimeError("the benchmark agent could not log in")
    timings = []
    for n in range(runs + 20):
        started = time.perf_counter()
        answer = client.get("/inbox" if n % 2 else "/inbox?order=activity")
        if answer.status_code != 200:
            raise RuntimeError(f"inbox answered {answer.status_code}")
        if n >= 20:
            timings.append((time.perf_counter() - started) * 1000)
    runtime.database.dispose()
    return percentile(timings, 50), percentile(timings, 99), int(conversations)


def run(workspace: Workspace, sizes: Sizes) -> list[Result]:
    say(
        "\n== 8. Live updates: commit -> SSE client, one stream process (`corridor live`), "
        f"webhooks from a load generator ({CONNECTIONS} connections) meanwhile =="
    )
    db = workspace.fresh_db("live")
    setup = runtime_of(workspace.app(db, "live-setup"))
    seed_people(setup, people())
    with setup.database.write() as session:
        _, api_token = create_agent(
            session, email="bench@corridor.example", name="Bench", role=Role.AGENT, password=None
        )
    setup.database.dispose()
    seconds = max(sizes.http_seconds, MARKERS / MARKER_RATE + 1)

    web = _start("corridor", workspace, db)
    port = _free_port()
    environ = hub_environ({**workspace.overrides(db, "http"), "live": {"port": port}})
    stream_log = (workspace.root / "live.log").open("w")
    streams = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "live"], env=environ, stdout=stream_log, stderr=stream_log
    )
    database = Database(f"sqlite:///{db}")
    results: list[Result] = []
    clients: Clients | None = None
    try:
        time.sleep(1.5)
        baseline = _rps(_load(web.port, api_token, seconds, sizes.http_max_requests, "live-none"))
        say(f"webhooks with no SSE clients: {baseline:8,.0f} req/s")
        clients = Clients(port, issue_stream_token("bench", subject="bench", topics=[TOPIC]))
        connected = 0
        loaded = 0.0
        first = 0
        for count in (100, 1000):
            clients.connect(count - connected)
            connected = count
            load = _load(web.port, api_token, seconds, sizes.http_max_requests, f"live-{count}")
            time.sleep(0.5)
            committed = _publish_markers(database, first)
            first += MARKERS
            loaded = _rps(load)
            samples, missing = _latencies(clients, committed, count)
            p50, p99 = percentile(samples, 50), percentile(samples, 99)
            say(
                f"{count:>5} clients: commit -> received p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
                f"({len(samples):,} deliveries, {missing} missing); webhooks meanwhile {loaded:8,.0f} req/s"
            )
            results.append(
                Result(
                    name=f"live p99 at {count} SSE clients",
                    figure=p99,
                    unit="ms",
                    baseline=None,
                    baseline_label="",
                    higher_is_better=False,
                    target=f"<= {TARGET_P99_MS:.0f} ms",
                    passed=p99 <= TARGET_P99_MS and missing == 0,
                    note=f"p50 {p50:.1f} ms" + (f", {missing} missing" if missing else ""),
                )
            )
        results.append(
            Result(
                name="webhooks with 1,000 SSE clients",
                figure=loaded,
                unit="req/s",
                baseline=baseline,
                baseline_label="no clients",
                higher_is_better=True,
                target=f">= {TARGET_WEBHOOK_RATIO:.0%} of no clients",
                passed=loaded >= TARGET_WEBHOOK_RATIO * baseline,
            )
        )
    finally:
        if clients is not None:
            clients.close()
        streams.terminate()
        streams.wait(timeout=10)
        stream_log.close()
        web.stop()
        database.dispose()
    p50, p99, conversations = _inbox_timings(workspace, db, sizes.latency_runs // 4 or 50)
    say(f"inbox page (server time, {conversations:,} conversations): p50 {p50:.1f} ms  p99 {p99:.1f} ms")
    results.append(
        Result(
            name="inbox page p99",
            figure=p99,
            unit="ms",
            baseline=None,
            baseline_label="",
            higher_is_better=False,
            target="<= 50 ms",
            passed=p99 <= 50,
            note=f"{conversations:,} conversations",
        )
    )
    return results
