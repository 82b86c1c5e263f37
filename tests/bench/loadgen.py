"""A small keep-alive HTTP/1.1 load generator, run in its own process.

``python -m tests.bench.loadgen --port P --connections 8 --seconds 10 ...``
prints one JSON line with what it measured.

It speaks raw HTTP/1.1 over sockets rather than using ``http.client``: the
client must cost far less per request than the server it measures, or the
baseline (a bare Flask endpoint) would be capped by the client and every ratio
against it would flatter the server. Each connection is a thread with its own
keep-alive socket; each request carries a unique external id, so the hub does
real work every time instead of answering "duplicate". With ``--requests``
it sends pre-rendered requests instead (the Twilio benchmark's, each signed
for itself), each connection its own share of them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import socket
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tests.bench.workload import people

_EMAIL_TEMPLATE = {
    "channel": "email",
    "external_id": "<@ID@@mail.example.com>",
    "occurred_at": "2026-11-02T09:00:00Z",
    "direction": "inbound",
    "from": {"address": "@ADDRESS@", "name": "Customer"},
    "subject": "Order 48213107 has not arrived",
    "text": (
        "Hello,\n\nI placed order 48213107 last week and the Koravime has still not arrived. "
        "The tracking page has not changed since Monday. Could you check with the courier?\n\nThanks"
    ),
    "metadata": {"mailbox": "support@corridor.example"},
}
_SMS_TEMPLATE = {
    "channel": "sms",
    "external_id": "SM@ID@",
    "occurred_at": "2026-11-02T09:05:00Z",
    "direction": "inbound",
    "from": "@PHONE@",
    "to": "+14155550100",
    "text": "Hi, is order 48213107 still coming today?",
}


def _bodies() -> list[bytes]:
    return [json.dumps(t).encode() for t in (_EMAIL_TEMPLATE, _SMS_TEMPLATE)]


@dataclass
class Tally:
    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    #: When this connection stopped sending, and whether for lack of requests.
    ended: float = 0.0
    ran_out: bool = False


def _one_response(reader: BinaryIO) -> tuple[int, bool]:
    """Read one response; returns its status and whether the server keeps the connection."""
    readline = reader.readline
    status_line = readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length, keep = 0, True
    while True:
        line = readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
        elif name == b"transfer-encoding":
            raise ConnectionError("chunked responses are not expected from these endpoints")
    reader.read(length)
    return status, keep


def template_requests(number: int, args: argparse.Namespace) -> Iterator[bytes]:
    """Endless POST /api/events requests for connection ``number``, each with its own external id."""
    addresses = people()
    bodies = _bodies()
    head = (
        f"POST {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\nContent-Type: application/json\r\n"
        + (f"Authorization: Bearer {args.token}\r\n" if args.token else "")
    ).encode()
    for i in itertools.count(1):
        person = addresses[(number * 7919 + i) % len(addresses)]
        unique = f"{args.tag}-{number}-{i}"
        body = (
            bodies[i % 2]
            .replace(b"@ID@", unique.encode())
            .replace(b"@ADDRESS@", person.email.encode())
            .replace(b"@PHONE@", person.phone.encode())
        )
        yield head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def write_requests(path: Path, requests: Sequence[bytes]) -> None:
    """Pre-rendered raw HTTP requests for ``--requests`` (e.g. each with its own signature header)."""
    with path.open("wb") as f:
        for request in requests:
            f.write(struct.pack(">I", len(request)))
            f.write(request)


def read_requests(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        out.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return out


def worker(
    requests: Iterator[bytes],
    args: argparse.Namespace,
    start_at: float,
    measure_from: float,
    stop_at: float,
    budget: threading.Semaphore,
    tally: Tally,
) -> None:
    """One keep-alive connection sending ``requests`` until the run ends or they run out."""
    sock: socket.socket | None = None
    reader: BinaryIO | None = None
    while time.perf_counter() < start_at:
        time.sleep(0.001)
    while True:
        now = time.perf_counter()
        if now >= stop_at or not budget.acquire(blocking=False):
            break
        request = next(requests, None)
        if request is None:
            tally.ran_out = True  # the run is cut short, and says so
            break
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", args.port), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = sock.makefile("rb")
        started = time.perf_counter()
        try:
            sock.sendall(request)
            assert reader is not None
            status, keep = _one_response(reader)
        except (OSError, ValueError):
            status, keep = 0, False
        ended = time.perf_counter()
        if started >= measure_from:
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            if status == args.expect:
                tally.ok += 1
                tally.latencies_ms.append((ended - started) * 1000)
            else:
                tally.errors += 1
        if not keep:
            sock.close()
            sock, reader = None, None
    tally.ended = min(time.perf_counter(), stop_at)
    if sock is not None:
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/api/events")
    parser.add_argument("--token", default="")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--expect", type=int, default=201)
    parser.add_argument("--tag", default="load")
    parser.add_argument("--requests", type=Path, help="send these pre-rendered requests instead of the templates")
    parser.add_argument("--cycle", action="store_true", help="with --requests: start again when they run out")
    args = parser.parse_args()

    if args.requests is not None:
        rendered = read_requests(args.requests)
        # Each connection its own share, so no request is sent twice (unless --cycle).
        shares = [rendered[n :: args.connections] for n in range(args.connections)]
        sources = [itertools.cycle(share) if args.cycle else iter(share) for share in shares]
    else:
        sources = [template_requests(n, args) for n in range(args.connections)]
    tallies = [Tally() for _ in range(args.connections)]
    budget = threading.Semaphore(args.max_requests)
    start_at = time.perf_counter() + 0.2
    measure_from = start_at + args.warmup
    stop_at = measure_from + args.seconds
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    threads = [
        threading.Thread(target=worker, args=(sources[n], args, start_at, measure_from, stop_at, budget, tallies[n]))
        for n in range(args.connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = max(t.ended for t in tallies) - measure_from
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    latencies = sorted(x for t in tallies for x in t.latencies_ms)
    statuses: dict[int, int] = {}
    for t in tallies:
        for status, count in t.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    ok = sum(t.ok for t in tallies)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else 0.0

    print(
        json.dumps(
            {
                "ok": ok,
                "errors": sum(t.errors for t in tallies),
                "statuses": statuses,
                "seconds": elapsed,
                "rps": ok / elapsed if elapsed > 0 else 0.0,
                "p50_ms": pct(50),
                "p99_ms": pct(99),
                # Includes the warm-up; only to show the client was not the bottleneck.
                "client_cpu_s": cpu,
                "ran_out": any(t.ran_out for t in tallies),
            }
        )
    )


if __name__ == "__main__":
    main()
