"""Web chat: live latency with 1,000 visitors connected, and messages/s one web process accepts.

Two figures, each against a baseline measured in the same run:

1. **Latency at 1,000 idle visitors.** A ``corridor live`` process (the real
   stream server, started as ``corridor run`` starts it) holds 1,000 visitors'
   open streams; one more visitor and one agent console are followed by this
   process. *Visitor -> agent*: from the visitor's POST to the agent's stream
   delivering ``interaction.created`` (journal, processing, the live feed, the
   stream process's poll). *Agent -> visitor*: from the agent's
   ``POST /api/conversations/{id}/replies`` with ``channel: chat`` to the
   visitor's stream delivering the reply's text. Baseline: a bare
   ``hub.live.publish`` to the agent's stream (what the feed alone costs).
   Target p99 <= 250 ms.
2. **Messages/s.** Visitors' ``POST /chat/api/<site>/messages`` over waitress
   in its own process (with the worker beside it, as ``corridor run``), each
   with its own client id, against a bare Flask endpoint served the same way
   (``tests.bench.httpserve``), rounds alternating. A Corridor run counts only
   once the worker has put everything on the timeline. Target >= 50 %.

Run alone: ``python -m tests.bench.bench_chat [--quick]``; or ``make bench`` /
``python -m tests.bench --only chat``.
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from connectors.webchat.visitors import issue_visitor_token, new_visitor_id, session_key
from hub import create_app
from hub.auth import create_agent
from hub.cli import start_live, start_worker
from hub.live import AGENTS, chat_topic, publish
from hub.live.tokens import issue_stream_token
from hub.models import Interaction, Role
from tests.bench.common import (
    FULL,
    QUICK,
    Result,
    Sizes,
    Workspace,
    hub_environ,
    percentile,
    runtime_of,
    say,
    temporary_workspace,
)
from tests.bench.httpserve import THREADS, bare_app
from tests.bench.loadgen import write_requests
from tests.bench.webhook import CONNECTIONS, ROUNDS, Server, listening, settle
from tests.hub.sse import SseClient
from tests.services import free_port

SITE = "bench"
ORIGIN = "https://shop.bench.example"
SECRET = "bench"
IDLE_VISITORS = 1_000
TARGET_P99_MS = 250.0
TARGET_RATIO = 0.50
WARMUP_SECONDS = 1.0
RENDERED_PER_SECOND = 3_000
#: Visitors the load's messages come from (each sends many: the limits are raised for the run).
LOAD_VISITORS = 500
TEXTS = ("Hi, where is order 48213107?", "Can I change the delivery address?", "Thanks, that helps!")


def settings(root: Path, db: Path, live_port: int) -> dict[str, dict[str, Any]]:
    """Shipped defaults plus the web chat with one site; limits raised so the load measures the path."""
    return {
        "app": {"connectors": ["webchat"], "instance_dir": str(root / "instance-chat"), "secret_key": SECRET},
        "database": {"url": f"sqlite:///{db}"},
        "live": {"port": live_port},
        "webchat": {
            "sites": [{"name": SITE, "origins": [ORIGIN]}],
            "messages_per_minute": 10**7,
            "conversations_per_hour": 10**7,
            "agents_online_seconds": 0,  # no console in the bench: the chat is open
        },
    }


def serve(kind: str, root: Path, db: Path | None) -> None:
    """Serve one app with waitress as ``corridor run`` does; print LISTENING <port>."""
    import logging

    from waitress.server import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if kind == "bare":
        app = bare_app()
    elif db is not None:
        overrides = settings(root, db, free_port())
        app = create_app(overrides=overrides, environ={})
        runtime_of(app).journal.detach()
        worker = start_worker(hub_environ(overrides))
        print(f"WORKER {worker.pid}", flush=True)
    else:
        raise SystemExit("serve corridor needs --db")
    server = create_server(app, host="127.0.0.1", port=0, threads=THREADS, ident="bench")
    print(f"LISTENING {server.effective_port}", flush=True)
    server.run()


def _start(kind: str, root: Path, db: Path | None) -> Server:
    log = (root / f"server-chat-{kind}.log").open("w")
    command = [sys.executable, "-m", "tests.bench.bench_chat", "serve", kind, "--root", str(root)]
    if db is not None:
        command += ["--db", str(db)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=Path.cwd())
    return listening(kind, process, log, root / f"server-chat-{kind}.log")


def render(count: int, tag: str, path: str) -> list[bytes]:
    """``count`` visitor messages (LOAD_VISITORS visitors, a client id each) as raw HTTP/1.1 requests."""
    tokens = [issue_visitor_token(SECRET, SITE, new_visitor_id()) for _ in range(LOAD_VISITORS)]
    out = []
    for index in range(count):
        body = json.dumps(
            {"visitor_token": tokens[index % LOAD_VISITORS], "client_id": f"{tag}-{index}", "text": TEXTS[index % 3]}
        ).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {ORIGIN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


def _run_load(server: Server, requests_file: Path, sizes: Sizes, expect: int, cycle: bool) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "tests.bench.loadgen", "--port", str(server.port), "--connections", str(CONNECTIONS),
        "--requests", str(requests_file), "--seconds", str(sizes.http_seconds), "--expect", str(expect),
        "--warmup", str(WARMUP_SECONDS), "--max-requests", str(10**9),
    ]  # fmt: skip
    if cycle:
        command.append("--cycle")
    cpu_before = server.cpu_seconds()
    completed = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=sizes.http_seconds + 120, cwd=Path.cwd()
    )
    report: dict[str, Any] = json.loads(completed.stdout)
    report["server_cpu"] = (server.cpu_seconds() - cpu_before) / (report["seconds"] + WARMUP_SECONDS + 0.2)
    return report


def throughput(workspace: Workspace, sizes: Sizes) -> Result:
    say(
        f"\n== Web chat: visitors' messages over HTTP, waitress ({THREADS} threads) in its own process, "
        f"{CONNECTIONS} keep-alive connections, {sizes.http_seconds:.0f} s per run =="
    )
    db = workspace.fresh_db("chat-http")
    per_run = int(RENDERED_PER_SECOND * (sizes.http_seconds + WARMUP_SECONDS + 1))
    bare_file = workspace.root / "chat-bare.requests"
    write_requests(bare_file, render(2_000, "bare", "/api/events"))
    servers = {"bare": _start("bare", workspace.root, None), "corridor": _start("corridor", workspace.root, db)}
    totals = {kind: {"ok": 0, "seconds": 0.0, "errors": 0} for kind in servers}
    try:
        for round_number in range(ROUNDS):
            corridor_file = workspace.root / f"chat-r{round_number}.requests"
            write_requests(corridor_file, render(per_run, f"r{round_number}", f"/chat/api/{SITE}/messages"))
            for kind, server in servers.items():
                if kind == "bare":
                    report = settle(server, _run_load(server, bare_file, sizes, expect=201, cycle=True), None)
                else:
                    report = settle(server, _run_load(server, corridor_file, sizes, expect=202, cycle=False), db)
                totals[kind]["ok"] += report["ok"]
                totals[kind]["seconds"] += report["seconds"] + report["drain_seconds"]
                totals[kind]["errors"] += report["errors"]
                say(
                    f"{kind:<9} round {round_number + 1}: {report['rps']:8,.0f} msg/s  p50 {report['p50_ms']:6.2f} ms"
                    f"  p99 {report['p99_ms']:6.2f} ms  errors {report['errors']}  statuses {report['statuses']}"
                    f"  server CPU {report['server_cpu']:.0%}"
                    + (
                        f"  answered {report['ok'] / report['seconds']:,.0f}/s, backlog {report['backlog']:,}"
                        f" drained in {report['drain_seconds']:.2f} s"
                        if kind == "corridor"
                        else ""
                    )
                )
    finally:
        for server in servers.values():
            server.stop()
    connection = sqlite3.connect(db)
    stored = connection.execute("SELECT count(*) FROM interaction WHERE channel = 'chat'").fetchone()[0]
    journaled = connection.execute("SELECT count(*) FROM journal_entry WHERE source = 'webchat'").fetchone()[0]
    connection.close()
    say(f"corridor journaled {journaled:,} visitor messages and stored {stored:,} (warm-up included)")
    bare = totals["bare"]["ok"] / totals["bare"]["seconds"]
    hub = totals["corridor"]["ok"] / totals["corridor"]["seconds"]
    errors = int(totals["bare"]["errors"] + totals["corridor"]["errors"])
    return Result(
        name="chat: visitor messages over HTTP",
        figure=hub,
        unit="msg/s",
        baseline=bare,
        baseline_label="bare Flask 201",
        higher_is_better=True,
        target=f">= {TARGET_RATIO:.0%} of bare Flask",
        passed=hub / bare >= TARGET_RATIO and errors == 0 and stored == journaled,
        note=f"{errors} errors" if errors else "",
    )


def _wait(stream: SseClient, kind: str, deadline: float) -> dict[str, Any] | None:
    while time.monotonic() < deadline:
        for event in stream.events(1, timeout=max(deadline - time.monotonic(), 0.001)):
            if event["kind"] == kind:
                return event
    return None


def _healthy(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET /live/health HTTP/1.1\r\nHost: x\r\n\r\n")
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"corridor live did not answer on port {port}")


def latency(workspace: Workspace, sizes: Sizes) -> list[Result]:
    runs = 200 if sizes is FULL else 50
    say(f"\n== Web chat latency: {IDLE_VISITORS:,} idle visitors on one `corridor live` process, {runs} runs each ==")
    db = workspace.fresh_db("chat-live")
    live_port = free_port()
    overrides = settings(workspace.root, db, live_port)
    overrides["journal"] = {"processor": "web"}
    app: Flask = create_app(overrides=overrides, environ={})
    runtime = runtime_of(app)
    client = app.test_client()
    with runtime.database.write() as session:
        _, agent_token = create_agent(
            session, email="agent@bench.example", name="Bench Agent", role=Role.AGENT, password=None
        )
    auth = {"Authorization": f"Bearer {agent_token}"}
    live = start_live(hub_environ(overrides))
    idle: list[socket.socket] = []
    try:
        _healthy(live_port)
        started = time.perf_counter()
        # The idle visitors' streams as their widgets open them (the token is what the
        # session call hands out; minting it here keeps the setup out of the figure).
        for _ in range(IDLE_VISITORS):
            topic = chat_topic(session_key(SITE, new_visitor_id()))
            token = issue_stream_token(SECRET, subject="visitor", topics=[topic], origins=["http://localhost"])
            sock = socket.create_connection(("127.0.0.1", live_port))
            sock.sendall(
                f"GET /live/stream?token={token} HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost\r\n\r\n".encode()
            )
            idle.append(sock)
        say(f"{len(idle):,} visitors connected in {time.perf_counter() - started:.1f} s")
        me = client.post(f"/chat/api/{SITE}/session", json={}, headers={"Origin": ORIGIN}).json
        agent = SseClient(
            f"http://127.0.0.1:{live_port}/live/stream?token="
            + issue_stream_token(SECRET, subject="agent:bench", topics=[AGENTS])
        )
        visitor = SseClient(
            f"http://127.0.0.1:{live_port}/live/stream?token={me['stream']['token']}", {"Origin": "http://localhost"}
        )
        agent.frames(1)
        visitor.frames(1)

        baseline: list[float] = []
        for n in range(runs):
            t0 = time.perf_counter()
            with runtime.database.write() as session:
                publish(session, AGENTS, "bench.ping", {"n": n})
            if _wait(agent, "bench.ping", time.monotonic() + 5) is not None:
                baseline.append((time.perf_counter() - t0) * 1000)

        up: list[float] = []
        for n in range(runs):
            t0 = time.perf_counter()
            answer = client.post(
                f"/chat/api/{SITE}/messages",
                json={"visitor_token": me["visitor_token"], "client_id": f"up-{n}", "text": f"Question {n}"},
                headers={"Origin": ORIGIN},
            )
            assert answer.status_code == 202, answer.json
            if _wait(agent, "interaction.created", time.monotonic() + 5) is not None:
                up.append((time.perf_counter() - t0) * 1000)
        with runtime.database.read() as session:
            conversation = session.scalar(select(Interaction.conversation_id).where(Interaction.channel == "chat"))
        down: list[float] = []
        for n in range(runs):
            t0 = time.perf_counter()
            answer = client.post(
                f"/api/conversations/{conversation}/replies",
                json={"channel": "chat", "text": f"Answer {n}"},
                headers=auth,
            )
            if answer.status_code != 201:
                with runtime.database.read() as session:
                    rows = session.execute(
                        select(
                            Interaction.id,
                            Interaction.conversation_id,
                            Interaction.direction,
                            Interaction.session_key,
                            Interaction.occurred_at,
                        )
                    ).all()
                raise RuntimeError(f"{answer.json} {conversation} {rows[:3]} {rows[-3:]}")
            if _wait(visitor, "chat.message", time.monotonic() + 5) is not None:
                down.append((time.perf_counter() - t0) * 1000)
        agent.close()
        visitor.close()
    finally:
        for sock in idle:
            sock.close()
        live.terminate()
        live.wait(timeout=30)
        runtime.journal.stop()
        runtime.database.dispose()

    base_p99 = percentile(baseline, 99)
    results = []
    for name, samples in (("visitor -> agent stream", up), ("agent reply -> visitor stream", down)):
        lost = runs - len(samples)
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        say(f"{name:<30} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  ({lost} not delivered within 5 s)")
        results.append(
            Result(
                name=f"chat: {name} p99",
                figure=p99,
                unit="ms",
                baseline=base_p99,
                baseline_label="bare publish p99",
                higher_is_better=False,
                target=f"<= {TARGET_P99_MS:.0f} ms at {IDLE_VISITORS:,} visitors",
                passed=p99 <= TARGET_P99_MS and lost == 0,
                note=f"p50 {p50:.0f} ms" + (f", {lost} lost" if lost else ""),
            )
        )
    say(f"{'bare publish -> agent stream':<30} p50 {percentile(baseline, 50):6.1f} ms  p99 {base_p99:6.1f} ms")
    return results


def run(workspace: Workspace, sizes: Sizes, parts: tuple[str, ...] = ("latency", "throughput")) -> list[Result]:
    """Both figures (or the ``parts`` named)."""
    return [
        *(latency(workspace, sizes) if "latency" in parts else []),
        *([throughput(workspace, sizes)] if "throughput" in parts else []),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_chat", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role")
    serving = sub.add_parser("serve")
    serving.add_argument("kind", choices=["corridor", "bare"])
    serving.add_argument("--root", type=Path, required=True)
    serving.add_argument("--db", type=Path)
    parser.add_argument("--quick", action="store_true", help="3 s per run instead of 10, fewer latency runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--part", choices=["latency", "throughput"], help="only this figure")
    args = parser.parse_args(argv)
    if args.role == "serve":
        serve(args.kind, args.root, args.db)
        return 0
    with temporary_workspace("corridor-bench-chat-", args.keep) as workspace:
        parts = (args.part,) if args.part else ("latency", "throughput")
        for result in run(workspace, QUICK if args.quick else FULL, parts):
            say(f"{result.name}: {result.figure:,.1f} {result.unit} ({'PASS' if result.passed else 'MISS'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
