"""The engine adapter on the official ``elasticsearch`` client (8.x: Elasticsearch 8 and 9 servers).

Only what differs from OpenSearch is here: building the client, its point in
time (``_pit``), and its exceptions. Everything else is in
:mod:`hub.search.engine`. The 8.x client sends
``application/vnd.elasticsearch+json; compatible-with=8`` and refuses a
server that does not say it is Elasticsearch: for OpenSearch, choose
``backend = "opensearch"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import elastic_transport
import elasticsearch
from elasticsearch import Elasticsearch, helpers

from hub.config import SearchSettings
from hub.search.adapter import BulkResults, ClientAdapter
from hub.search.engine import EngineRequestError, engine_error, reason_of


@contextmanager
def _translated() -> Iterator[None]:
    """The client's exceptions as :class:`EngineError`."""
    try:
        yield
    except elasticsearch.ApiError as exc:
        raise engine_error(exc.meta.status, reason_of(exc.body, str(exc.message))) from None
    except elastic_transport.TransportError as exc:  # connection refused, timeout, TLS
        raise engine_error(None, str(exc)) from None
    except elasticsearch.UnsupportedProductError as exc:
        raise EngineRequestError(406, str(exc)) from None


class ElasticClient(ClientAdapter):
    product = "elasticsearch"

    @classmethod
    def from_settings(cls, settings: SearchSettings, **options: Any) -> ElasticClient:
        """A client for ``[search]``; ``options`` go to the client (tests pass a ``node_class``)."""
        api_key, basic = settings.credentials()
        if api_key:
            options["api_key"] = api_key
        if basic:
            options["basic_auth"] = basic
        if settings.ca_file:
            options["ca_certs"] = settings.ca_file
        return cls(
            Elasticsearch(
                settings.urls,
                request_timeout=settings.request_timeout,
                # The indexer retries with its own backoff; a search should fail fast.
                max_retries=0,
                retry_on_timeout=False,
                # Web threads, the indexer and the health check share one client.
                connections_per_node=16,
                **options,
            )
        )

    def translated(self) -> AbstractContextManager[None]:
        return _translated()

    def streaming_bulk(self, actions: Sequence[dict[str, Any]], **options: Any) -> BulkResults:
        return helpers.streaming_bulk(self.client, actions, **options)

    def create_index(self, name: str, body: dict[str, Any]) -> None:
        with self.translated():
            self.client.indices.create(index=name, settings=body["settings"], mappings=body["mappings"])

    def put_settings(self, name: str, settings: dict[str, Any]) -> None:
        with self.translated():
            self.client.indices.put_settings(index=name, settings={"index": settings})

    def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        with self.translated():
            self.client.indices.update_aliases(actions=actions)

    def open_pit(self, index: str, keep_alive: str) -> str | None:
        try:
            with self.translated():
                return str(self.client.open_point_in_time(index=index, keep_alive=keep_alive)["id"])
        except EngineRequestError as exc:
            # An OpenSearch-compatible server behind this client has no _pit
            # (400 "no handler found"): search_after on a unique sort instead.
            if exc.status in (400, 404, 405):
                return None
            raise

    def close_pit(self, pit_id: str) -> None:
        with self.translated():
            self.client.close_point_in_time(id=pit_id)
