"""Search while the engine is down: a short circuit breaker, and the database's own answer meanwhile.

An engine that stops answering must not take search with it, and must not
cost every search a timeout either. :class:`EngineCircuit` (one per process,
on the engine backend) opens at the first request the engine fails; while it
is open, searches go straight to the database, and every ``retry_seconds``
one search (never several at once) tries the engine again. The first that
succeeds closes it: recovery needs no restart, and the indexer in ``corridor
worker`` meanwhile catches the index up from the outbox, which kept every
change.

What the database can answer depends on its own index, which is not the same
on both databases:

* **PostgreSQL** full text is an expression index that PostgreSQL keeps with
  the rows, whatever the search backend: the fallback finds everything the
  engine would, with the same filters, exact facets, newest first or ranked
  by ``ts_rank`` (a different ranking from the engine's BM25, and marked so).
* **SQLite**'s FTS5 table is written in the ingest transaction only when it
  *is* the backend; under an engine nothing writes it, so it is stale and is
  never read. What stays exact there are the phone numbers and email
  addresses a search names (the identity index: ``hub.search.rows.listing``),
  with their facets; words get a clear "not while the engine is down".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fallback:
    """Why and how a search was answered without the engine (the API's ``fallback`` field)."""

    #: "engine-failed" (this search tried it) or "circuit-open" (a recent one did).
    reason: str
    #: What the engine said when it last failed.
    problem: str
    #: What answered: "postgres" (full text) or "identities" (addresses only).
    backend: str
    #: The order the hits are in; "relevance" on PostgreSQL is ts_rank, not the engine's score.
    order: str
    #: Seconds until a search tries the engine again.
    retry_in: float


class EngineCircuit:
    """Closed: every search asks the engine. Open: none does, until one trial after ``retry_seconds``."""

    def __init__(self, retry_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._lock = threading.Lock()
        #: When the engine may be tried again; None while closed.
        self._retry_at: float | None = None
        self.problem = ""

    @property
    def is_open(self) -> bool:
        return self._retry_at is not None

    def retry_in(self) -> float:
        retry_at = self._retry_at
        return 0.0 if retry_at is None else max(0.0, retry_at - self.clock())

    def allow(self) -> bool:
        """Whether this search may ask the engine: always while closed, one trial per period while open."""
        with self._lock:
            if self._retry_at is None:
                return True
            now = self.clock()
            if now < self._retry_at:
                return False
            # This search is the trial; the others carry on from the database
            # until it has an answer, instead of queueing behind its timeout.
            self._retry_at = now + self.retry_seconds
            return True

    def failed(self, problem: str) -> None:
        """The engine failed a request: open (again) for ``retry_seconds``."""
        with self._lock:
            opened = self._retry_at is None
            self._retry_at = self.clock() + self.retry_seconds
            self.problem = problem
        if opened:
            log.warning(
                "search engine unavailable (%s): searches answer from the database, the engine is tried "
                "again every %.0f s",
                problem,
                self.retry_seconds,
            )

    def succeeded(self) -> None:
        """The engine answered: close, if it was open."""
        if self._retry_at is None:  # the common case, without the lock
            return
        with self._lock:
            reopened = self._retry_at is not None
            self._retry_at = None
            self.problem = ""
        if reopened:
            log.warning("search engine answers again: searches use it from now on")
