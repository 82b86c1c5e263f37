"""The search backend on an engine: Elasticsearch or OpenSearch, one implementation for both.

What the two engines have in common lives here and in the modules beside it
(``mapping``, ``query``, ``indexer``, ``lifecycle``): the index body, the
query, the indexer, rebuild and check. What differs is confined to a thin
adapter per client implementing :class:`EngineClient` (``elastic.py`` on the
official ``elasticsearch`` 8.x client, ``opensearch.py`` on ``opensearch-py``):
how each client is built and authenticates, how it opens a point in time,
and which exceptions it raises, turned into the three below.

The application reads and writes through an alias (``<prefix>-interactions``)
over a versioned index (``<prefix>-interactions-v3``); ``corridor search
rebuild`` builds the next version and swaps the alias.

The ingest pipeline never talks to the engine: it writes an outbox row in its
transaction (``in_transaction`` is False), and the indexer in ``corridor
worker`` drains the outbox. An engine that is down therefore never stops
ingest or the timeline; searches answer from the database until it is back
(``hub.search.fallback``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from hub.config import SearchSettings, SettingsError
from hub.search import IndexDocument, Progress, SearchHit, SearchPage, SearchQuery
from hub.search.fallback import EngineCircuit
from hub.search.mapping import index_body
from hub.search.query import (
    HIGHLIGHT,
    HIT_SOURCE,
    NEWEST_SORT,
    RELEVANCE_SORT,
    Facets,
    Filters,
    facet_aggregations,
    facets_from,
    hit_from,
    next_cursor,
    query_clause,
    search_after,
)

if TYPE_CHECKING:
    from hub.db import Database

log = logging.getLogger(__name__)

#: How long a point in time stays open between two pages of a scan.
PIT_KEEP_ALIVE = "2m"


class EngineError(Exception):
    """The engine could not do what was asked."""


class EngineUnavailable(EngineError):
    """Unreachable, timed out, overloaded (429) or failing (5xx): try again later."""


class EngineRefused(EngineError):
    """The engine refused the credentials (401) or the permission (403)."""


class EngineRequestError(EngineError):
    """The engine answered 4xx to a request it understood; ``status`` and the engine's reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


def engine_error(status: int | None, reason: str) -> EngineError:
    """The error for an engine's answer (``status`` None: no answer at all). Adapters raise what this returns."""
    if status is None or status == 429 or status >= 500:
        return EngineUnavailable(f"{status or 'no answer'}: {reason}")
    if status in (401, 403):
        return EngineRefused(f"{status}: {reason}")
    return EngineRequestError(status, reason)


def reason_of(body: Any, fallback: str) -> str:
    """The engine's own words from an error body (``error.type: error.reason``), else ``fallback``."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        causes = error.get("root_cause") or []
        cause = causes[0] if causes and isinstance(causes[0], dict) else error
        return f"{cause.get('type', error.get('type', 'error'))}: {cause.get('reason', error.get('reason', ''))}"
    if isinstance(error, str):
        return error
    return fallback


@dataclass(frozen=True, slots=True)
class BulkItem:
    """What became of one action of a bulk request."""

    doc_id: str
    status: int
    error: str | None


#: How both clients' ``helpers.streaming_bulk`` are called: outcomes per item
#: instead of an exception at the first failure, and items the engine answered
#: 429 retried with backoff a few times before they count as unavailable.
BULK_OPTIONS: dict[str, Any] = {
    "max_chunk_bytes": 50 * 1024 * 1024,
    "raise_on_error": False,
    "max_retries": 3,
    "initial_backoff": 0.5,
}


def bulk_items(results: Iterable[tuple[bool, dict[str, Any]]]) -> list[BulkItem]:
    """The outcomes ``streaming_bulk`` yields (both clients' helpers yield the same shape)."""
    items = []
    for _ok, result in results:
        for item in result.values():
            error = item.get("error")
            if isinstance(error, dict):
                error = f"{error.get('type', 'error')}: {error.get('reason', '')}"
            items.append(
                BulkItem(str(item.get("_id")), int(item.get("status", 0)), None if error is None else str(error))
            )
    return items


class EngineClient(Protocol):
    """What Corridor asks of an engine; one adapter per client library.

    Every method raises :class:`EngineError` subclasses only.
    """

    #: "elasticsearch" or "opensearch".
    product: str

    def info(self) -> dict[str, Any]: ...

    def search(self, index: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """``index`` None: the body names a point in time."""
        ...

    def count(self, index: str, query: dict[str, Any] | None = None) -> int: ...

    def bulk(self, actions: Sequence[dict[str, Any]]) -> list[BulkItem]:
        """One bulk request (429s of single items retried by the client library); an outcome per action."""
        ...

    def create_index(self, name: str, body: dict[str, Any]) -> None: ...

    def delete_index(self, name: str) -> None: ...

    def indices(self, pattern: str) -> list[str]:
        """Names of the indexes matching a wildcard pattern."""
        ...

    def put_settings(self, name: str, settings: dict[str, Any]) -> None: ...

    def refresh(self, name: str) -> None: ...

    def alias_targets(self, alias: str) -> list[str]:
        """The indexes behind ``alias`` (none when it does not exist)."""
        ...

    def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        """All actions at once: readers see the old alias or the new one, never neither."""
        ...

    def open_pit(self, index: str, keep_alive: str) -> str | None:
        """A point in time on ``index``, or None where the engine offers none."""
        ...

    def close_pit(self, pit_id: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class EngineResult:
    """A page of a supervisor search, with the number of matches and, when asked, the facets."""

    page: SearchPage
    total: int
    facets: Facets | None = None


class EngineBackend:
    """The :class:`~hub.search.SearchBackend` on an Elasticsearch or OpenSearch cluster."""

    in_transaction = False

    def __init__(self, client: EngineClient, settings: SearchSettings, database: Database | None = None) -> None:
        self.client = client
        self.settings = settings
        self.name = client.product
        #: Where rebuild and check read and write; set by the runtime.
        self.database = database
        #: Whether searches ask the engine or, while it fails, the database (``hub.search.fallback``).
        self.circuit = EngineCircuit(settings.retry_seconds)

    # -- names --------------------------------------------------------------------------

    @property
    def alias(self) -> str:
        return f"{self.settings.index_prefix}-interactions"

    def versioned(self, version: int) -> str:
        return f"{self.alias}-v{version}"

    def next_index(self) -> str:
        """The name of the next versioned index: one past every one there is."""
        pattern = re.compile(re.escape(self.alias) + r"-v(\d+)$")
        versions = [int(m.group(1)) for name in self.client.indices(f"{self.alias}-v*") if (m := pattern.match(name))]
        return self.versioned(max(versions, default=0) + 1)

    # -- start-up -----------------------------------------------------------------------

    def verify(self) -> str:
        """Reach the engine and make sure the alias exists; raises SettingsError naming the setting at fault.

        Called when ``corridor run`` and ``corridor worker`` start; returns
        what it found, for the start-up line.
        """
        try:
            info = self.client.info()
            targets = self.client.alias_targets(self.alias)
            if not targets:
                index = self.next_index()
                body = index_body(shards=self.settings.shards, replicas=self.settings.replicas, loading=False)
                self.client.create_index(index, body)
                self.client.update_aliases([{"add": {"index": index, "alias": self.alias}}])
                targets = [index]
                log.info("created search index %s behind alias %s", index, self.alias)
        except EngineRefused as exc:
            if self.settings.api_key or self.settings.api_key_file:
                problem = "HUB_SEARCH_API_KEY: the search engine refused the API key"
            elif self.settings.username:
                problem = "HUB_SEARCH_USERNAME: the search engine refused the user name or password"
            else:
                problem = "HUB_SEARCH_API_KEY: the search engine wants credentials and none are set"
            raise SettingsError(f"{problem} ({exc})") from None
        except EngineUnavailable as exc:
            raise SettingsError(
                f"HUB_SEARCH_URL: cannot reach the search engine at {self.settings.url} ({exc})"
            ) from None
        except EngineRequestError as exc:
            raise SettingsError(
                f"HUB_SEARCH_URL: {self.settings.url} does not answer as a search engine ({exc})"
            ) from None
        version = info.get("version", {}).get("number", "?")
        return f"{self.name} {version} at {', '.join(self.settings.urls)}, index {targets[0]}"

    # -- the SearchBackend protocol -------------------------------------------------------

    def index(self, session: Session, documents: Sequence[IndexDocument]) -> None:
        """Nothing to do in the transaction: the pipeline writes outbox rows, the indexer sends them."""

    def delete(self, session: Session, documents: Sequence[IndexDocument]) -> None:
        """Nothing to do in the transaction: the pipeline writes outbox rows, the indexer sends them."""

    def search(self, session: Session, query: SearchQuery) -> SearchPage:
        return self.run(query, Filters.of(query)).page

    def rebuild(self, session: Session, progress: Progress | None = None) -> int:
        """A rebuild behind the alias (:func:`hub.search.lifecycle.rebuild`), in transactions of its own.

        The session is not used: a rebuild runs for minutes, and must not hold
        the caller's transaction (on SQLite, the write lock) that long.
        """
        from hub.search.lifecycle import rebuild

        assert self.database is not None
        return rebuild(self.database, self, progress).loaded

    def health(self, session: Session) -> dict[str, object]:
        """Whether the index agrees with the database (counts only; `corridor search check` compares documents)."""
        from hub.search.lifecycle import count_drift

        return count_drift(session, self)

    # -- searching --------------------------------------------------------------------------

    def run(self, query: SearchQuery, filters: Filters, facets: str | None = None) -> EngineResult:
        """One page of hits for ``query`` with ``filters``; with ``facets`` (an interval), the facets too."""
        order = query.order
        body: dict[str, Any] = {
            "query": query_clause(query.text, filters),
            "sort": RELEVANCE_SORT if order == "relevance" else NEWEST_SORT,
            "size": query.limit + 1,
            "_source": HIT_SOURCE,
            "highlight": HIGHLIGHT,
            # Exact counts: the facets and the total must agree with the database.
            "track_total_hits": True,
        }
        after = search_after(query.cursor, order)
        if after is not None:
            body["search_after"] = after
        if facets is not None:
            body["aggs"] = facet_aggregations(facets)
        answer = self.client.search(self.alias, body)
        raw_hits = answer["hits"]["hits"]
        hits = [hit_from(h) for h in raw_hits[: query.limit]]
        cursor = next_cursor(raw_hits[query.limit - 1], order) if len(raw_hits) > query.limit else None
        return EngineResult(
            page=SearchPage(hits=hits, next_cursor=cursor),
            total=int(answer["hits"]["total"]["value"]),
            facets=facets_from(answer["aggregations"], facets) if facets is not None else None,
        )

    def scan(self, query: dict[str, Any], source: list[str] | bool, *, batch: int = 1000, sort: list[Any] | None = None,
             index: str | None = None, version: bool = False) -> Iterator[list[dict[str, Any]]]:  # fmt: skip
        """Every hit of ``query``, a batch at a time, in one consistent view where the engine offers one.

        A point in time keeps the view still while pages are read (no
        10,000-hit window: ``search_after`` on a unique sort); where the engine
        has none, ``search_after`` on the same unique sort still visits every
        document once, and only changes made during the scan may be missed.
        """
        target = index or self.alias
        pit = self.client.open_pit(target, PIT_KEEP_ALIVE)
        body: dict[str, Any] = {
            "query": query,
            "sort": sort or NEWEST_SORT,
            "size": batch,
            "_source": source,
            "track_total_hits": False,
        }
        if version:
            body["version"] = True
        try:
            while True:
                if pit is not None:
                    body["pit"] = {"id": pit, "keep_alive": PIT_KEEP_ALIVE}
                answer = self.client.search(None if pit is not None else target, body)
                pit = answer.get("pit_id", pit)
                hits = answer["hits"]["hits"]
                if not hits:
                    return
                yield hits
                if len(hits) < batch:
                    return
                body["search_after"] = hits[-1]["sort"]
        finally:
            if pit is not None:
                try:
                    self.client.close_pit(pit)
                except EngineError:
                    log.info("could not close a point in time; it expires by itself")

    def hits(self, raw: Iterable[dict[str, Any]]) -> list[SearchHit]:
        return [hit_from(h) for h in raw]


def make_engine_backend(settings: SearchSettings, database: Database | None = None) -> EngineBackend:
    """The engine backend ``[search] backend`` names, on its client."""
    from hub.search import outbox

    outbox.listen()
    client: EngineClient
    if settings.backend == "elasticsearch":
        from hub.search.elastic import ElasticClient

        client = ElasticClient.from_settings(settings)
    else:
        from hub.search.opensearch import OpenSearchClient

        client = OpenSearchClient.from_settings(settings)
    return EngineBackend(client, settings, database)
