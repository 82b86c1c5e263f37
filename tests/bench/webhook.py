"""Figure 2: single-event ingest over HTTP against a bare Flask endpoint.

Three processes, loopback only: this one orchestrates; a server process
(``tests.bench.httpserve``) serves either Corridor or a bare Flask app with
waitress exactly as ``corridor run`` does -- for Corridor, with the worker
process ``corridor run`` starts beside it; a load generator process
(``tests.bench.loadgen``) drives it over keep-alive connections with bounded
duration and request count. Each Corridor request is ``POST /api/events`` with
an API token and a unique external id, so every one is journaled and answered,
then resolved, threaded, appended and indexed by the worker. A Corridor run
counts only once the worker has put everything on the timeline: the time it
takes for the backlog left at the end is added to the run's time.

Runs alternate bare, Corridor, bare, Corridor so that drift on a shared
machine hits both. The servers' CPU use is printed: about one core means the
server (GIL-bound) is the bottleneck, as it should be, not the client.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hub.auth import create_agent
from hub.models import Role
from tests.bench.common import Result, Sizes, Workspace, runtime_of, say, seed_people, wait_drained
from tests.bench.httpserve import THREADS
from tests.bench.workload import people

TARGET_RATIO = 0.50
CONNECTIONS = 8
#: Alternating bare/Corridor rounds, pooled. On a shared two-core machine one
#: round's rate moves by a few per cent either way; a third round narrows the
#: ratio's spread by a fifth against two, for 25 s more.
ROUNDS = 3
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class Server:
    kind: str
    process: subprocess.Popen[str]
    port: int
    log: IO[str]
    #: Corridor's worker process (it processes the journal), started beside the server.
    worker_pid: int | None = None

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.process.pid)

    def worker_cpu_seconds(self) -> float:
        return _cpu_seconds(self.worker_pid) if self.worker_pid else 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _start(kind: str, workspace: Workspace, db: Path | None) -> Server:
    log = (workspace.root / f"server-{kind}.log").open("w")
    command = [sys.executable, "-m", "tests.bench.httpserve", kind, "--root", str(workspace.root)]
    if db is not None:
        command += ["--db", str(db)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=Path.cwd())
    return listening(kind, process, log, workspace.root / f"server-{kind}.log")


def listening(kind: str, process: subprocess.Popen[str], log: IO[str], log_path: Path) -> Server:
    """The server once it printed LISTENING (and, for Corridor, its WORKER first)."""
    assert process.stdout is not None
    worker_pid = None
    line = process.stdout.readline()
    if line.startswith("WORKER "):
        worker_pid = int(line.split()[1])
        line = process.stdout.readline()
    if not line.startswith("LISTENING "):
        process.kill()
        log.close()
        raise RuntimeError(f"{kind} server did not start: {log_path.read_text()}")
    return Server(kind, process, int(line.split()[1]), log, worker_pid)


def settle(server: Server, report: dict[str, Any], db: Path | None) -> dict[str, Any]:
    """Count a Corridor run only once its worker has processed everything it journaled.

    The server answers once a request is journaled; the figure is what reached
    the timeline, so the time the worker needs for the backlog left at the
    end of the run is added to the run's time (the backlog includes the
    warm-up's requests, which makes the figure a little conservative).
    """
    if db is None:
        report.update(backlog=0, drain_seconds=0.0)
        return report
    backlog, drain_seconds = wait_drained(db)
    report.update(backlog=backlog, drain_seconds=drain_seconds)
    report["rps"] = report["ok"] / (report["seconds"] + drain_seconds)
    return report


def run_loadgen(server: Server, sizes: Sizes, *args: str, warmup: float = 1.0) -> dict[str, Any]:
    """The load generator's report on ``server`` (run in its own process, with ``args``), with the server's CPU."""
    command = [
        sys.executable, "-m", "tests.bench.loadgen", "--port", str(server.port), "--connections", str(CONNECTIONS),
        "--seconds", str(sizes.http_seconds), "--warmup", str(warmup), *args,
    ]  # fmt: skip
    cpu_before, worker_before = server.cpu_seconds(), server.worker_cpu_seconds()
    completed = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=sizes.http_seconds + 120, cwd=Path.cwd()
    )
    report: dict[str, Any] = json.loads(completed.stdout)
    # Warm-up included: this is the share of a core the server used while loaded.
    loaded = report["seconds"] + warmup + 0.2
    report["server_cpu"] = (server.cpu_seconds() - cpu_before) / loaded
    report["worker_cpu"] = (server.worker_cpu_seconds() - worker_before) / loaded
    return report


def _load(server: Server, sizes: Sizes, token: str, tag: str) -> dict[str, Any]:
    args = ["--max-requests", str(sizes.http_max_requests), "--tag", tag]
    if token:
        # Corridor answers 202 once the event is journaled (the bare endpoint 201).
        args += ["--token", token, "--expect", "202"]
    return run_loadgen(server, sizes, *args)


def run(workspace: Workspace, sizes: Sizes) -> list[Result]:
    say(
        f"\n== 2. Single-event ingest over HTTP: waitress ({THREADS} threads) in its own process, "
        f"{CONNECTIONS} keep-alive connections from a load-generator process, {sizes.http_seconds:.0f} s per run =="
    )
    db = workspace.fresh_db("http")
    runtime = runtime_of(workspace.app(db, "http-setup"))
    seed_people(runtime, people())
    with runtime.database.write() as session:
        _, token = create_agent(session, email="bench@corridor.example", name="Bench", role=Role.AGENT, password=None)
    runtime.database.dispose()

    servers = {"bare": _start("bare", workspace, None), "corridor": _start("corridor", workspace, db)}
    totals = {kind: [0, 0.0, 0] for kind in servers}  # ok, seconds, errors
    try:
        for round_number in range(ROUNDS):
            for kind, server in servers.items():
                report = _load(server, sizes, token if kind == "corridor" else "", tag=f"r{round_number}")
                report = settle(server, report, db if kind == "corridor" else None)
                totals[kind][0] += report["ok"]
                totals[kind][1] += report["seconds"] + report["drain_seconds"]
                totals[kind][2] += report["errors"]
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
                    + f"  client CPU {report['client_cpu_s'] / (report['seconds'] + 1.2):.0%}"
                )
    finally:
        for server in servers.values():
            server.stop()

    connection = sqlite3.connect(db)
    stored = connection.execute("SELECT count(*) FROM interaction").fetchone()[0]
    journaled = connection.execute("SELECT count(*) FROM journal_entry WHERE source = 'api'").fetchone()[0]
    connection.close()
    say(f"corridor journaled {journaled:,} events and stored {stored:,} interactions (warm-up included)")
    bare_rps = totals["bare"][0] / totals["bare"][1]
    hub_rps = totals["corridor"][0] / totals["corridor"][1]
    errors = int(totals["corridor"][2]) + int(totals["bare"][2])
    ratio = hub_rps / bare_rps
    return [
        Result(
            name="HTTP POST /api/events",
            figure=hub_rps,
            unit="req/s",
            baseline=bare_rps,
            baseline_label="bare Flask 201",
            higher_is_better=True,
            target=f">= {TARGET_RATIO:.0%} of bare Flask",
            passed=ratio >= TARGET_RATIO and errors == 0 and stored == journaled,
            note=f"{errors} errors" if errors else "",
        )
    ]
