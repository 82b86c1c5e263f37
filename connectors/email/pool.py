"""Parsing fetched mail in worker processes, so that a backfill uses more than one core.

Parsing MIME is pure Python and bound by the CPU (about 0.4 ms for a support
mail); in the intake's own process it takes turns, under the GIL, with reading
IMAP responses and writing the timeline, which is the part that cannot be
spread out (one SQLite writer). A :class:`ParsePool` parses a batch in
``processes`` worker processes while the intake downloads the next batch and
commits the one before.

What keeps this sound:

* The parser is pure (bytes and a context in, a ChannelEvent out), so a worker
  holds nothing worth losing, and results come back in the order the messages
  were given, each message with its event or its error.
* A message the parser refuses comes back as an error, which the intake
  journals as unparseable, exactly as when it parses in-process.
* A worker that dies (the OOM killer, a crash in a C extension) breaks the
  pool. The pool is started again and the affected messages are parsed again
  one by one, so that only a message that kills its parser twice ends as an
  error and every other one is parsed. Nothing is skipped or doubled: the
  intake commits a batch only when every message of it has a result.
* Where workers cannot be used at all (no process may be started, or none can
  load the parser), the pool says so once in the log and parses in-process,
  rather than journal every message as failed.
* Workers are forked from multiprocessing's fork server, a single-threaded
  process that imported the parser once, never from the intake's own process:
  its other threads (other folders, the worker's loops) may hold locks at the
  moment of a fork, and a child that inherits a held lock deadlocks.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from connectors.email.settings import MAX_PARSE_PROCESSES
from hub.contract import ChannelEvent

log = logging.getLogger(__name__)

#: Bytes and journal context of one fetched message in; its event out.
Parser = Callable[[bytes, Mapping[str, Any]], ChannelEvent]
#: One message to parse: its bytes and its context.
ParseItem = tuple[bytes, Mapping[str, Any]]
#: Seconds the workers stay up after the last pass that used them.
IDLE_TIMEOUT = 60.0
#: How often a message is parsed in a fresh worker after its worker died
#: before it counts as the message that kills the parser.
CRASH_ATTEMPTS = 2


@dataclass(frozen=True, slots=True)
class Parsed:
    """What became of one message: its event, or why the parser refused it."""

    event: ChannelEvent | None = None
    error: str | None = None


def parse_each(parser: Parser, items: Sequence[ParseItem]) -> list[Parsed]:
    """Parse every message; one the parser refuses gets its error, the rest go on.

    Runs in the worker processes (and in-process when the pool has none).
    """
    parsed = []
    for raw, context in items:
        try:
            parsed.append(Parsed(event=parser(raw, context)))
        except Exception as exc:  # any parser failure is the message's, never the batch's
            parsed.append(Parsed(error=f"{type(exc).__name__}: {exc}"))
    return parsed


def default_processes() -> int:
    """Worker processes for ``parse_processes = -1``: one per CPU this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not every platform can tell
        return os.cpu_count() or 1


def prepare(parser: Parser) -> None:
    """Start the fork server now, with the parser's module imported, so the first pool starts at once.

    Starting it costs as much as importing the hub (about a second); a worker
    calls this when it starts, so that the first backfill does not wait for it.
    Harmless when it is running already, and where there is no fork server.
    """
    if _start_method() != "forkserver":
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([parser.__module__])
    from multiprocessing import forkserver  # only where there is one (not on Windows)

    forkserver.ensure_running()


def _ignore_interrupts() -> None:
    """In a worker: Ctrl-C is for the intake, which stops its workers itself (no traceback from each)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class ParseJob:
    """The parse of one batch, under way; :meth:`result` waits for it."""

    def __init__(
        self,
        pool: ParsePool,
        executor: ProcessPoolExecutor | None,
        chunks: list[Sequence[ParseItem]],
        futures: list[Future[list[Parsed]]],
    ) -> None:
        self._pool = pool
        self._executor = executor
        self._chunks = chunks
        self._futures = futures
        self._results: list[Parsed] | None = None

    @classmethod
    def done(cls, pool: ParsePool, results: list[Parsed]) -> ParseJob:
        job = cls(pool, None, [], [])
        job._results = results
        return job

    def result(self) -> list[Parsed]:
        """One :class:`Parsed` per message, in the order they were submitted."""
        if self._results is None:
            results: list[Parsed] = []
            for chunk, future in zip(self._chunks, self._futures, strict=True):
                try:
                    results.extend(future.result())
                    continue
                except BrokenProcessPool:
                    assert self._executor is not None
                    self._pool.replace(self._executor)
                except Exception as exc:  # e.g. a result that could not be sent back: try each message
                    log.warning("parsing %d messages in a worker failed (%s); parsing them one by one", len(chunk), exc)
                results.extend(self._pool.parse_isolated(chunk))
            self._results = results
        return self._results


class ParsePool:
    """Worker processes that parse batches of fetched mail; ``processes=0`` parses in-process.

    One pool per parser and size serves the whole process (:func:`shared`):
    every folder's intake, so a worker watching ten folders still has one
    parser process per CPU, not ten. A pass takes a :meth:`lease`; the workers
    start with the first batch and stop :attr:`idle_timeout` seconds after the
    last lease ends (starting them costs a fork and a few imports each, so the
    passes of one catch-up share them, while a worker that only sees a message
    now and then does not keep them around).
    """

    def __init__(self, parser: Parser, processes: int, *, idle_timeout: float = IDLE_TIMEOUT) -> None:
        if not 0 <= processes <= MAX_PARSE_PROCESSES:
            raise ValueError(f"processes: expected 0 to {MAX_PARSE_PROCESSES}, got {processes}")
        self.parser = parser
        self.processes = processes
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._leases = 0
        self._idle_timer: threading.Timer | None = None
        #: How many times a broken pool was started again (for tests and logs).
        self.restarts = 0
        #: Why worker processes cannot be used here (they cannot start, or
        #: cannot run the parser at all); until :meth:`close`, parsing is
        #: in-process, as without processes, instead of failing every message.
        self.unusable: str | None = None

    @property
    def running(self) -> bool:
        """Whether worker processes are up (or starting)."""
        return self._executor is not None

    def pids(self) -> list[int]:
        """Process ids of the workers started so far (for monitoring, and for tests that kill one)."""
        with self._lock:
            executor = self._executor
        # concurrent.futures has no public accessor; _processes maps pid -> process.
        return sorted(getattr(executor, "_processes", None) or ())

    @contextlib.contextmanager
    def lease(self) -> Iterator[ParsePool]:
        """Use the pool for a while; its workers stay up at least until the lease ends."""
        with self._lock:
            self._leases += 1
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
        try:
            yield self
        finally:
            with self._lock:
                self._leases -= 1
                if not self._leases and self._executor is not None:
                    self._idle_timer = threading.Timer(self.idle_timeout, self._close_if_idle)
                    self._idle_timer.daemon = True
                    self._idle_timer.start()

    def submit(self, items: Sequence[ParseItem]) -> ParseJob:
        """Start parsing ``items``; in-process, they are parsed before this returns."""
        if not self.processes or self.unusable or not items:
            return ParseJob.done(self, parse_each(self.parser, items))
        # One chunk per worker: a batch is shared out evenly, and each chunk
        # costs one round trip instead of one per message.
        size = math.ceil(len(items) / self.processes)
        chunks = [items[start : start + size] for start in range(0, len(items), size)]
        executor = None
        try:
            executor = self._running()
            futures = [executor.submit(parse_each, self.parser, chunk) for chunk in chunks]
        except BrokenProcessPool:
            # Broken by a crash during an earlier batch that nobody has waited for yet.
            if executor is not None:
                self.replace(executor)
            return ParseJob.done(self, self.parse_isolated(items))
        except Exception as exc:  # no process can be started here (limits, a sandbox)
            self._give_up(f"{type(exc).__name__}: {exc}")
            return ParseJob.done(self, parse_each(self.parser, items))
        return ParseJob(self, executor, chunks, futures)

    def parse_isolated(self, items: Sequence[ParseItem]) -> list[Parsed]:
        """Parse each message on its own, after a worker died.

        A worker's death takes every message it was given with it, and the
        pool's other work too. Parsed alone, a message that kills the parser
        again (in :data:`CRASH_ATTEMPTS` fresh workers) is the culprit; the
        others were only caught in the crash and are parsed as usual.
        """
        results = []
        for item in items:
            parsed = None
            if not self.unusable:
                parsed, failure = self._parse_alone(item)
                # Before a message takes the blame, make sure the workers can
                # run the parser at all: otherwise every message would fail.
                if failure is not None and not self._workers_can_parse():
                    self._give_up(failure)
                    parsed = None
            if parsed is None:
                (parsed,) = parse_each(self.parser, [item])
            results.append(parsed)
        return results

    def _parse_alone(self, item: ParseItem) -> tuple[Parsed, str | None]:
        """The message parsed in a worker by itself, and what went wrong outside the parser, if anything."""
        failure = ""
        for _attempt in range(CRASH_ATTEMPTS):
            try:
                executor = self._running()
            except Exception as exc:  # no process can be started here (limits, a sandbox)
                failure = f"{type(exc).__name__}: {exc}"
                break
            try:
                (parsed,) = executor.submit(parse_each, self.parser, [item]).result()
            except BrokenProcessPool:
                self.replace(executor)
                failure = f"the parser's process died while reading this message ({CRASH_ATTEMPTS} times)"
                continue
            except Exception as exc:  # the message or its event could not be sent across
                failure = f"{type(exc).__name__}: {exc}"
                break
            return parsed, None
        return Parsed(error=failure), failure

    def _workers_can_parse(self) -> bool:
        """Whether a fresh worker can run the parser on nothing (and so get as far as a message)."""
        executor = None
        try:
            executor = self._running()
            executor.submit(parse_each, self.parser, []).result()
        except BrokenProcessPool:
            if executor is not None:
                self.replace(executor)
            return False
        except Exception:  # no worker starts, or the parser cannot even be sent to one
            return False
        return True

    def _give_up(self, reason: str) -> None:
        if self.unusable is None:
            log.error("mail parser processes cannot be used (%s); parsing in the intake's own process", reason)
        self.unusable = reason

    def replace(self, broken: ProcessPoolExecutor) -> None:
        """Have fresh workers instead of ``broken`` ones (once, however many jobs noticed)."""
        with self._lock:
            if self._executor is not broken:
                return
            self._executor = None
            self.restarts += 1
        log.warning("a mail parser process died; starting the parser processes again")
        # The survivors are killed first: the executor only sends them SIGTERM
        # and then waits for each, and one caught mid-start by the forkserver
        # outlived it once and hung the intake (CI, 3.11.7). Their batches are
        # lost with the broken pool anyway and go to fresh workers one by one.
        for process in list((getattr(broken, "_processes", None) or {}).values()):
            with contextlib.suppress(OSError, ValueError):
                process.kill()
        broken.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers now; batches not started are cancelled. The pool may be used again (and try again)."""
        with self._lock:
            executor, self._executor = self._executor, None
            self.unusable = None
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _close_if_idle(self) -> None:
        with self._lock:
            if self._leases:
                return
            executor, self._executor = self._executor, None
            self._idle_timer = None
        if executor is not None:
            log.debug("mail parser processes idle for %.0f s; stopping them", self.idle_timeout)
            executor.shutdown(wait=True)

    def _running(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                prepare(self.parser)
                self._executor = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context(_start_method()),
                    initializer=_ignore_interrupts,
                )
            return self._executor


_shared: dict[tuple[Parser, int], ParsePool] = {}
_shared_lock = threading.Lock()


def shared(parser: Parser, processes: int) -> ParsePool:
    """The process's pool for ``parser`` with ``processes`` workers, made on first use."""
    with _shared_lock:
        pool = _shared.get((parser, processes))
        if pool is None:
            pool = _shared[(parser, processes)] = ParsePool(parser, processes)
        return pool


def shutdown() -> None:
    """Stop every shared pool's workers now (a command that is done, a worker that stops)."""
    with _shared_lock:
        pools = list(_shared.values())
    for pool in pools:
        pool.close()
