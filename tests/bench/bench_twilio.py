"""Twilio webhook benchmark: signed inbound SMS per second against a bare Flask endpoint.

    python -m tests.bench.bench_twilio            # 10 s per run, three rounds
    python -m tests.bench.bench_twilio --quick    # 3 s per run

Issue 4, item 9: inbound SMS webhooks per second -- each one signature-checked,
journaled and answered, then put on the timeline by the worker process that
``corridor run`` starts beside the web server -- against a bare Flask endpoint
served the same way, in the same run. A Corridor run counts only once the
worker has processed everything: the time it takes for the backlog left at
the end is added to the run's time. Target: >= 50 %.

The set-up mirrors figure 2 (``tests.bench.webhook``): three processes on
loopback. This one orchestrates; a server process serves either Corridor with
the Twilio connector or the bare Flask app of figure 2 (``httpserve.bare_app``)
with waitress as ``corridor run`` does; a load process drives it over keep-alive
connections. Rounds alternate bare, Corridor, bare, Corridor so that drift on a
shared machine hits both.

Every Corridor request is a distinct inbound SMS (its own MessageSid) from one
of the workload's known customers, signed for the public URL with Twilio's
``RequestValidator`` exactly as Twilio signs it. The requests are rendered and
signed before the clock starts, so the client's cost per request is a socket
write; the bare endpoint receives the very same bytes (to its own path).

The load process is ``tests.bench.loadgen`` with ``--requests``: it sends
these pre-rendered requests, each connection its own share, instead of its
JSON templates.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from twilio.request_validator import RequestValidator

from connectors.twilio import urls
from hub import create_app
from hub.cli import start_worker
from tests.bench.common import (
    FULL,
    QUICK,
    Result,
    Sizes,
    Workspace,
    hub_environ,
    runtime_of,
    say,
    seed_people,
    temporary_workspace,
)
from tests.bench.httpserve import THREADS, bare_app
from tests.bench.loadgen import write_requests
from tests.bench.webhook import CONNECTIONS, ROUNDS, Server, listening, run_loadgen, settle
from tests.bench.workload import people

TARGET_RATIO = 0.50
WARMUP_SECONDS = 1.0
#: Requests rendered per second of a Corridor run: well above what it serves,
#: so a run never runs out (it would say so).
RENDERED_PER_SECOND = 3_000
#: Distinct requests the bare endpoint cycles through (it keeps nothing).
BARE_REQUESTS = 2_000

PUBLIC_URL = "https://corridor.bench.example"
AUTH_TOKEN = "0b1e7c5d2a9f4e6b8c0d1f3a5b7c9e2d"
ACCOUNT_SID = "AC" + "5" * 32
OUR_NUMBER = "+15005550006"
BARE_PATH = "/api/events"
SMS_TEXTS = (
    "Hi, is order 48213107 still coming today?",
    "The courier left my parcel with a neighbour, can you check where?",
    "Please cancel order 52119083 before it ships, thanks",
    "My refund for the Koravime has not arrived yet",
)


# --- the server process ---------------------------------------------------------------


def twilio_settings() -> dict[str, dict[str, Any]]:
    """The settings Corridor is served with: the shipped defaults plus the Twilio connector."""
    return {
        "app": {"connectors": ["twilio"], "public_base_url": PUBLIC_URL},
        "twilio": {
            "auth_token": AUTH_TOKEN,
            "account_sid": ACCOUNT_SID,
            "numbers": [{"number": OUR_NUMBER, "channels": ["sms"]}],
        },
    }


def corridor_settings(root: Path, db: Path) -> dict[str, dict[str, Any]]:
    overrides = twilio_settings()
    overrides["app"].update(instance_dir=str(root / "instance-twilio"), secret_key="bench")
    overrides["database"] = {"url": f"sqlite:///{db}"}
    return overrides


def corridor_app(root: Path, db: Path) -> Flask:
    """Corridor exactly as ``create_app`` builds it, with the Twilio connector enabled."""
    return create_app(overrides=corridor_settings(root, db), environ={})


def serve(kind: str, root: Path, db: Path | None) -> None:
    """Serve one app with waitress as ``corridor run`` does; print LISTENING <port>."""
    import logging

    from waitress.server import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # a deep queue is the load we asked for
    if kind == "bare":
        app = bare_app()
    elif db is not None:
        app = corridor_app(root, db)
        # As `corridor run` does: the worker beside the web process processes the journal.
        runtime_of(app).journal.detach()
        worker = start_worker(hub_environ(corridor_settings(root, db)))
        print(f"WORKER {worker.pid}", flush=True)
    else:
        raise SystemExit("serve corridor needs --db")
    server = create_server(app, host="127.0.0.1", port=0, threads=THREADS, ident="bench")
    print(f"LISTENING {server.effective_port}", flush=True)
    server.run()


def _start(kind: str, root: Path, db: Path | None) -> Server:
    log = (root / f"server-twilio-{kind}.log").open("w")
    command = [sys.executable, "-m", "tests.bench.bench_twilio", "serve", kind, "--root", str(root)]
    if db is not None:
        command += ["--db", str(db)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=Path.cwd())
    return listening(kind, process, log, root / f"server-twilio-{kind}.log")


# --- the requests -----------------------------------------------------------------------------


def inbound_sms(index: int, tag: str, sender: str) -> list[tuple[str, str]]:
    """An inbound SMS webhook's fields, in Twilio's order (as tests/connectors/twilio/fixtures)."""
    sid = "SM" + hashlib.sha256(f"{tag}-{index}".encode()).hexdigest()[:32]
    return [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94107"),
        ("SmsSid", sid),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", SMS_TEXTS[index % len(SMS_TEXTS)]),
        ("FromCountry", "US"),
        ("To", OUR_NUMBER),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", sender),
        ("ApiVersion", "2010-04-01"),
    ]


def render(count: int, tag: str, path: str) -> list[bytes]:
    """``count`` distinct signed inbound-SMS requests to ``path``, as raw HTTP/1.1 bytes."""
    validator = RequestValidator(AUTH_TOKEN)
    signed_url = urls.webhook_url(PUBLIC_URL, urls.INBOUND_MESSAGE)
    phones = [person.phone for person in people()]
    out = []
    for index in range(count):
        fields = inbound_sms(index, tag, phones[(index * 7919) % len(phones)])
        body = urlencode(fields).encode()
        signature = validator.compute_signature(signed_url, dict(fields))
        head = (
            f"POST {path} HTTP/1.1\r\nHost: corridor.bench.example\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


def _run_load(server: Server, requests_file: Path, sizes: Sizes, expect: int, cycle: bool) -> dict[str, Any]:
    args = ["--requests", str(requests_file), "--expect", str(expect), "--max-requests", str(10**9)]
    return run_loadgen(server, sizes, *args, *(["--cycle"] if cycle else []), warmup=WARMUP_SECONDS)


# --- the benchmark ----------------------------------------------------------------------------


def run(workspace: Workspace, sizes: Sizes) -> list[Result]:
    """Both servers, alternating rounds; one Result in the shape of the other figures."""
    say(
        f"\n== Twilio inbound SMS webhooks over HTTP: waitress ({THREADS} threads) in its own process, "
        f"{CONNECTIONS} keep-alive connections, {sizes.http_seconds:.0f} s per run =="
    )
    db = workspace.fresh_db("twilio")
    setup = corridor_app(workspace.root, db)
    seed_people(runtime_of(setup), people())
    runtime_of(setup).database.dispose()

    per_run = int(RENDERED_PER_SECOND * (sizes.http_seconds + WARMUP_SECONDS + 1))
    bare_file = workspace.root / "twilio-bare.requests"
    write_requests(bare_file, render(BARE_REQUESTS, "bare", BARE_PATH))
    servers = {"bare": _start("bare", workspace.root, None), "corridor": _start("corridor", workspace.root, db)}
    totals = {kind: {"ok": 0, "seconds": 0.0, "errors": 0} for kind in servers}
    ran_out = False
    try:
        for round_number in range(ROUNDS):
            corridor_file = workspace.root / f"twilio-r{round_number}.requests"
            write_requests(corridor_file, render(per_run, f"r{round_number}", urls.INBOUND_MESSAGE))
            for kind, server in servers.items():
                if kind == "bare":
                    report = settle(server, _run_load(server, bare_file, sizes, expect=201, cycle=True), None)
                else:
                    report = settle(server, _run_load(server, corridor_file, sizes, expect=200, cycle=False), db)
                    ran_out = ran_out or report["ran_out"]
                totals[kind]["ok"] += report["ok"]
                totals[kind]["seconds"] += report["seconds"] + report["drain_seconds"]
                totals[kind]["errors"] += report["errors"]
                say(
                    f"{kind:<9} round {round_number + 1}: {report['rps']:8,.0f} req/s  p50 {report['p50_ms']:6.2f} ms"
                    f"  p99 {report['p99_ms']:6.2f} ms  errors {report['errors']}  statuses {report['statuses']}"
                    f"  server CPU {report['server_cpu']:.0%}"
                    + (
                        f"  worker CPU {report['worker_cpu']:.0%}  backlog {report['backlog']:,}"
                        f" drained in {report['drain_seconds']:.2f} s"
                        if kind == "corridor"
                        else ""
                    )
                )
    finally:
        for server in servers.values():
            server.stop()

    connection = sqlite3.connect(db)
    stored = connection.execute("SELECT count(*) FROM interaction").fetchone()[0]
    journaled = connection.execute("SELECT count(*) FROM journal_entry WHERE source = 'twilio.message'").fetchone()[0]
    connection.close()
    say(f"corridor journaled {journaled:,} and stored {stored:,} SMS (warm-up included)")
    bare_rps = totals["bare"]["ok"] / totals["bare"]["seconds"]
    hub_rps = totals["corridor"]["ok"] / totals["corridor"]["seconds"]
    errors = int(totals["bare"]["errors"] + totals["corridor"]["errors"])
    ratio = hub_rps / bare_rps
    notes = [f"{errors} errors"] if errors else []
    if ran_out:
        notes.append("ran out of rendered requests; raise RENDERED_PER_SECOND")
    return [
        Result(
            name="HTTP POST Twilio inbound SMS",
            figure=hub_rps,
            unit="req/s",
            baseline=bare_rps,
            baseline_label="bare Flask 201",
            higher_is_better=True,
            target=f">= {TARGET_RATIO:.0%} of bare Flask",
            passed=ratio >= TARGET_RATIO and errors == 0 and stored == journaled,
            note="; ".join(notes),
        )
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, as a child process, one of its servers)."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_twilio", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role")
    serving = sub.add_parser("serve")
    serving.add_argument("kind", choices=["corridor", "bare"])
    serving.add_argument("--root", type=Path, required=True)
    serving.add_argument("--db", type=Path)
    parser.add_argument("--quick", action="store_true", help="3 s per run instead of 10")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    if args.role == "serve":
        serve(args.kind, args.root, args.db)
        return 0

    with temporary_workspace("corridor-bench-twilio-", args.keep) as workspace:
        (result,) = run(workspace, QUICK if args.quick else FULL)
    assert result.ratio is not None
    say(
        f"\nTwilio inbound SMS webhooks: {result.figure:,.0f} req/s vs bare Flask {result.baseline:,.0f} req/s "
        f"= {result.ratio:.1%} (target >= {TARGET_RATIO:.0%}): {'PASS' if result.passed else 'MISS'}"
        + (f" ({result.note})" if result.note else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
