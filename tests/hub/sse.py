"""A small server-sent events client for tests: a socket, the request, frames as they come."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Frame:
    id: int | None
    data: dict[str, Any] | None
    retry: int | None = None


@dataclass
class SseClient:
    """Opens ``url`` (``http://host:port/path?query``) and reads frames; ``status``, ``headers`` of the answer."""

    url: str
    headers_out: dict[str, str] = field(default_factory=dict)
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers_out.items())
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n{extra}\r\n".encode())
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
        head, _, self._buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

    def frames(self, count: int, timeout: float = 5.0) -> list[Frame]:
        """The next ``count`` frames carrying data or retry (comments skipped); fewer if the time runs out."""
        found: list[Frame] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            while b"\n\n" in self._buffer and len(found) < count:
                raw, _, self._buffer = self._buffer.partition(b"\n\n")
                frame = _frame(raw.decode())
                if frame is not None:
                    found.append(frame)
            if len(found) >= count:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            self._buffer += chunk
        return found

    def events(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next ``count`` events' data (a ``retry:`` frame on the way is skipped)."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            frames = self.frames(1, max(deadline - time.monotonic(), 0.0))
            if not frames:
                break
            if frames[0].data is not None:
                found.append(frames[0].data)
        return found

    def close(self) -> None:
        self.sock.close()


def _frame(raw: str) -> Frame | None:
    event_id: int | None = None
    data: list[str] = []
    retry: int | None = None
    for line in raw.split("\n"):
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = int(value)
        elif name == "data":
            data.append(value)
        elif name == "retry":
            retry = int(value)
    if not data and retry is None:
        return None
    return Frame(event_id, json.loads("\n".join(data)) if data else None, retry)
