"""A real HTTP server on loopback that receives webhooks, for the outgoing-webhook tests.

Threaded (``http.server.ThreadingHTTPServer``): deliveries to different
conversations arrive at once, and one held open (to time out, or to be
in flight when a worker is killed) must not block the others.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as it arrived."""

    headers: dict[str, str]
    raw: bytes
    at: float
    #: None while the answer is being made.
    status: int | None = None

    @property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed


#: Decides the answer to a request: (status, seconds to wait before answering).
Behaviour = Callable[[dict[str, Any], int], tuple[int, float]]


@dataclass
class Receiver:
    url: str
    #: Requests in arrival order; ``in_flight`` counts those still being answered.
    requests: list[Received] = field(default_factory=list)
    in_flight: int = 0
    behaviour: Behaviour = lambda _body, _n: (200, 0.0)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.status is not None and 200 <= r.status < 300]

    def wait_for(
        self, condition: Callable[[], bool], timeout: float = 10.0, pump: Callable[[], object] | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out; received {[r.body.get('type') for r in self.requests]}"
            if pump is not None:
                pump()
            time.sleep(0.01)


@contextmanager
def receiving(port: int = 0) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (on ``port``, or a free one); yields it with its URL."""
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received = Received(dict(self.headers), raw, time.monotonic())
            with receiver.lock:
                receiver.in_flight += 1
                count = len(receiver.requests)
                # In arrival order: what the sender sent when, whatever it waited for.
                receiver.requests.append(received)
            try:
                status, delay = receiver.behaviour(json.loads(raw), count)
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                status = 0  # the client gave up (a timeout): not an answer it saw
            finally:
                with receiver.lock:
                    receiver.in_flight -= 1
                    received.status = status

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks/corridor")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
