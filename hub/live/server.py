"""The stream server: server-sent events for consoles and chat widgets (``corridor live``).

Why a process of its own, on asyncio: a stream is an idle socket held for
hours. Waitress gives every request a thread from a small pool, so a few
open consoles would take every thread webhooks need (measured with 1,000
streams: the ninth stream waits forever with 8 threads; with 1,100 threads
webhooks drop from ~1,340 to ~130 requests/s). One event loop holds
thousands of sockets at a few kilobytes each and writes a frame to each
subscriber of an event in one pass, and in its own process it never takes
the web process's GIL from a webhook. No monkey-patching: the database is
read by one :class:`~hub.live.feed.FeedReader` thread per process, and
replays after a reconnect run in a thread pool, so sqlite3, which blocks
whatever calls it, never stalls the loop.

The protocol (``GET /live/stream?token=…[&last_event_id=N]``):

* ``token`` from the app (hub.live.tokens) names the topics; it is checked
  once, and the stream closes when it expires (the page fetches another).
* ``Last-Event-ID`` (sent by ``EventSource`` on its own reconnects) or
  ``last_event_id`` (for a new ``EventSource`` after a token refresh):
  every event of the token's topics after it is sent first, then live ones,
  without gaps or repeats. A client too far behind (more than
  :data:`REPLAY_LIMIT` events, or behind what pruning kept) gets one
  ``live.reset`` event instead, and reloads what it shows.
* Each event is ``id: N`` and ``data: {"id", "topic", "kind", "data", "at"}``
  (the default ``message`` event); ``retry:`` first; a ``: keep-alive``
  comment every [live] heartbeat_seconds, which is also how dead clients are
  found (the write fails).
* CORS: an ``Origin`` must be in [live] allowed_origins or the token's own
  origins; the response names it in ``Access-Control-Allow-Origin``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from hub.db import Database
from hub.live import FeedEvent, events_after, oldest_id, position
from hub.live.feed import FeedReader
from hub.live.tokens import InvalidToken, StreamGrant, read_stream_token
from hub.metrics import instruments

log = logging.getLogger(__name__)

STREAM_PATH = "/live/stream"
HEALTH_PATH = "/live/health"
#: Most events replayed after a reconnect; beyond, the client reloads (``live.reset``).
REPLAY_LIMIT = 1000
#: Bytes queued for one client before it counts as stuck and is dropped (it
#: reconnects and replays; a stuck client must not grow the server's memory).
MAX_BUFFER = 1 << 20
_HEAD_LIMIT = 16 * 1024
_RESET_KIND = "live.reset"


@dataclass(frozen=True)
class StreamSettings:
    """How the stream server behaves ([live] settings)."""

    secret: str
    token_ttl: int = 600
    heartbeat: float = 15.0
    retry_ms: int = 2000
    poll_interval: float = 0.05
    max_streams: int = 5000
    allowed_origins: tuple[str, ...] = ()


def encode(event: FeedEvent) -> bytes:
    """One event as a server-sent events frame."""
    return f"id: {event.id}\ndata: {json.dumps(event.as_json(), separators=(',', ':'))}\n\n".encode()


class _Stream:
    """One open stream: where its events go, and the newest it has been sent."""

    __slots__ = ("expires_at", "last_id", "pending", "topics", "writer")

    def __init__(self, writer: asyncio.StreamWriter, topics: tuple[str, ...], last_id: int, expires_at: float):
        self.writer = writer
        self.topics = topics
        self.last_id = last_id
        self.expires_at = expires_at
        #: Live events held back while a replay is read (None once live).
        self.pending: list[tuple[int, bytes]] | None = None

    def offer(self, event_id: int, frame: bytes) -> None:
        if event_id <= self.last_id:
            return
        if self.pending is not None:
            self.pending.append((event_id, frame))
            return
        self.send(event_id, frame)

    def send(self, event_id: int, frame: bytes) -> None:
        self.writer.write(frame)
        self.last_id = event_id
        if self.writer.transport.get_write_buffer_size() > MAX_BUFFER:
            self.writer.transport.abort()


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


def _parse(head: bytes) -> _Request | None:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return _Request(method.upper(), parts.path, query, headers)


class StreamServer:
    """Serves live streams from one database; see the module docstring."""

    def __init__(self, database: Database, settings: StreamSettings) -> None:
        self.database = database
        self.settings = settings
        self.feed = FeedReader(database, self._from_feed, poll_interval=settings.poll_interval)
        self.port = 0
        self._streams: set[_Stream] = set()
        self._by_topic: dict[str, set[_Stream]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        #: stop() may come before serve() has a loop (a parent killed in the first second).
        self._stop_requested = threading.Event()

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    # -- the feed, from its thread --------------------------------------------------------------

    def _from_feed(self, events: list[FeedEvent]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._dispatch, events)

    def _dispatch(self, events: list[FeedEvent]) -> None:
        for event in events:
            subscribers = self._by_topic.get(event.topic)
            if not subscribers:
                continue
            frame = encode(event)
            for stream in list(subscribers):
                stream.offer(event.id, frame)

    # -- serving --------------------------------------------------------------------------------

    async def serve(self, host: str, port: int, ready: Callable[[int], None] | None = None) -> None:
        """Serve until :meth:`stop`; ``ready`` gets the bound port once streams are accepted."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_requested.is_set():
            return  # asked to stop before it began: never bind the port, or nobody would stop it
        await self._loop.run_in_executor(None, self.feed.start)
        server = await asyncio.start_server(self._handle, host, port, limit=_HEAD_LIMIT, backlog=4096)
        self.port = server.sockets[0].getsockname()[1]
        heartbeat = asyncio.create_task(self._heartbeat())
        log.info("live streams on http://%s:%d%s", host, self.port, STREAM_PATH)
        if ready is not None:
            ready(self.port)
        try:
            async with server:
                await self._stopping.wait()
        finally:
            heartbeat.cancel()
            for stream in list(self._streams):
                stream.writer.transport.abort()
            await asyncio.get_running_loop().run_in_executor(None, self.feed.stop)

    def stop(self) -> None:
        """Stop serving (from any thread), or never start if :meth:`serve` has not begun yet."""
        self._stop_requested.set()
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat)
            now = time.time()
            for stream in list(self._streams):
                if now >= stream.expires_at:
                    # The page fetches a new token and reconnects from its last id.
                    stream.writer.transport.close()
                else:
                    stream.writer.write(b": keep-alive\n\n")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
                return
            request = _parse(head)
            if request is None:
                self._reply(writer, 400, "malformed request")
                return
            await self._route(request, reader, writer)
        except ConnectionError:
            pass
        finally:
            with suppress(Exception):
                writer.close()

    def _cors(self, origin: str | None, grant: StreamGrant | None = None) -> str:
        if origin and (origin in self.settings.allowed_origins or (grant is not None and origin in grant.origins)):
            return f"Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n"
        return "Vary: Origin\r\n"

    def _reply(self, writer: asyncio.StreamWriter, status: int, message: str, extra: str = "") -> None:
        reason = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                  404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[status]  # fmt: skip
        body = json.dumps({"error": {"status": status, "message": message}} if status >= 400 else {"status": message})
        encoded = body.encode()
        writer.write(
            (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(encoded)}\r\n"
                f"Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n{extra}\r\n"
            ).encode()
            + encoded
        )

    async def _route(self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        origin = request.headers.get("origin")
        if request.path == HEALTH_PATH:
            self._reply(writer, 200, "ok", self._cors(origin))
            return
        if request.path != STREAM_PATH:
            self._reply(writer, 404, f"no such path; streams are at {STREAM_PATH}")
            return
        if request.method == "OPTIONS":
            self._reply(writer, 204, "", self._cors(origin) + "Access-Control-Allow-Headers: Last-Event-ID\r\n")
            return
        if request.method != "GET":
            self._reply(writer, 405, "streams are read with GET", "Allow: GET, OPTIONS\r\n")
            return
        try:
            grant = read_stream_token(self.settings.secret, request.query.get("token", ""), self.settings.token_ttl)
        except InvalidToken as exc:
            self._reply(writer, 401, str(exc), self._cors(origin))
            return
        if origin and origin not in self.settings.allowed_origins and origin not in grant.origins:
            self._reply(writer, 403, f"origin {origin} may not read this stream")
            return
        if len(self._streams) >= self.settings.max_streams:
            instruments().live_refused.inc()
            self._reply(writer, 503, "too many open streams; try again shortly", "Retry-After: 5\r\n")
            return
        raw_last = request.headers.get("last-event-id") or request.query.get("last_event_id") or ""
        last = int(raw_last) if raw_last.isdigit() else None
        await self._stream(grant, last, origin, reader, writer)

    async def _stream(
        self,
        grant: StreamGrant,
        last: int | None,
        origin: str | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        now_at = self.feed.position
        stream = _Stream(
            writer, grant.topics, now_at if last is None else last, grant.issued_at + self.settings.token_ttl
        )
        replay = last is not None and last < now_at
        if replay:
            stream.pending = []
        self._streams.add(stream)
        for topic in grant.topics:
            self._by_topic.setdefault(topic, set()).add(stream)
        open_streams = instruments().live_streams
        open_streams.inc()
        try:
            writer.write(
                (
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                    "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nX-Content-Type-Options: nosniff\r\n"
                    f"Connection: close\r\n{self._cors(origin, grant)}\r\n"
                    f"retry: {self.settings.retry_ms}\n\n"
                ).encode()
            )
            if replay:
                assert last is not None
                loop = asyncio.get_running_loop()
                events, reset_at = await loop.run_in_executor(None, self._replay, grant.topics, last)
                if reset_at is not None:
                    stream.writer.write(self._reset_frame(reset_at))
                    stream.last_id = reset_at
                for event in events:
                    stream.send(event.id, encode(event))
                held, stream.pending = stream.pending or [], None
                for event_id, frame in held:
                    stream.offer(event_id, frame)
            while await reader.read(1024):
                pass  # a client has nothing to say after its request; EOF ends the stream
        finally:
            open_streams.dec()
            self._streams.discard(stream)
            for topic in grant.topics:
                subscribers = self._by_topic.get(topic)
                if subscribers is not None:
                    subscribers.discard(stream)
                    if not subscribers:
                        del self._by_topic[topic]

    def _replay(self, topics: Sequence[str], after: int) -> tuple[list[FeedEvent], int | None]:
        """Events of ``topics`` after ``after``; or none and the id to reset to, when too far behind."""
        with self.database.read() as session:
            oldest = oldest_id(session)
            if oldest is not None and after < oldest - 1:
                return [], position(session)
            events = events_after(session, after, topics, limit=REPLAY_LIMIT + 1)
            if len(events) > REPLAY_LIMIT:
                return [], position(session)
            return events, None

    @staticmethod
    def _reset_frame(reset_at: int) -> bytes:
        data = {"id": reset_at, "topic": "", "kind": _RESET_KIND, "data": {}, "at": None}
        return f"id: {reset_at}\ndata: {json.dumps(data)}\n\n".encode()


@contextmanager
def serving_in_thread(server: StreamServer, host: str = "127.0.0.1", port: int = 0) -> Iterator[int]:
    """Run ``server`` on its own event loop in a thread (tests, benchmarks); yields the port."""
    bound: list[int] = []
    started = threading.Event()
    failure: list[BaseException] = []

    def ready(bound_port: int) -> None:
        bound.append(bound_port)
        started.set()

    def run() -> None:
        try:
            asyncio.run(server.serve(host, port, ready=ready))
        except BaseException as exc:
            failure.append(exc)
            started.set()

    thread = threading.Thread(target=run, name="live stream server", daemon=True)
    thread.start()
    started.wait(30)
    if failure or not bound:
        raise RuntimeError(f"the stream server did not start: {failure[0] if failure else 'timeout'}")
    try:
        yield bound[0]
    finally:
        server.stop()
        thread.join(timeout=10)
