"""The engine adapter on ``opensearch-py`` (OpenSearch 2 and 3, Amazon OpenSearch Service).

Only what differs from Elasticsearch is here: building the client, its point
in time (``_search/point_in_time``), and its exceptions. Everything else is
in :mod:`hub.search.engine`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import opensearchpy
from opensearchpy import OpenSearch, helpers

from hub.config import SearchSettings
from hub.search.engine import BULK_OPTIONS, BulkItem, EngineRequestError, bulk_items, engine_error, reason_of


@contextmanager
def _translated() -> Iterator[None]:
    """The client's exceptions as :class:`~hub.search.engine.EngineError`."""
    try:
        yield
    except opensearchpy.ConnectionError as exc:  # also timeouts and TLS: no answer at all
        raise engine_error(None, str(exc.error)) from None
    except opensearchpy.TransportError as exc:
        status = exc.status_code if isinstance(exc.status_code, int) else None
        raise engine_error(status, reason_of(exc.info, str(exc.error))) from None


class OpenSearchClient:
    product = "opensearch"

    def __init__(self, client: OpenSearch) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: SearchSettings, **options: Any) -> OpenSearchClient:
        """A client for ``[search]``; ``options`` go to the client."""
        api_key, basic = settings.credentials()
        headers = dict(options.pop("headers", {}))
        if api_key:
            headers["Authorization"] = f"ApiKey {api_key}"
        if basic:
            options["http_auth"] = basic
        if settings.ca_file:
            options["ca_certs"] = settings.ca_file
        if any(u.startswith("https://") for u in settings.urls):
            options.setdefault("verify_certs", True)
        return cls(
            OpenSearch(
                hosts=settings.urls,
                timeout=settings.request_timeout,
                max_retries=0,
                retry_on_timeout=False,
                # Web threads, the indexer and the health check share one client.
                pool_maxsize=16,
                headers=headers or None,
                **options,
            )
        )

    def info(self) -> dict[str, Any]:
        with _translated():
            return dict(self.client.info())

    def search(self, index: str | None, body: dict[str, Any]) -> dict[str, Any]:
        with _translated():
            return dict(self.client.search(index=index, body=body))

    def count(self, index: str, query: dict[str, Any] | None = None) -> int:
        with _translated():
            return int(self.client.count(index=index, body={"query": query} if query else None)["count"])

    def bulk(self, actions: Sequence[dict[str, Any]]) -> list[BulkItem]:
        with _translated():
            return bulk_items(
                helpers.streaming_bulk(self.client, actions, chunk_size=max(len(actions), 1), **BULK_OPTIONS)
            )

    def create_index(self, name: str, body: dict[str, Any]) -> None:
        with _translated():
            self.client.indices.create(index=name, body=body)

    def delete_index(self, name: str) -> None:
        with _translated():
            self.client.indices.delete(index=name)

    def indices(self, pattern: str) -> list[str]:
        with _translated():
            return sorted(self.client.indices.get(index=pattern, allow_no_indices=True, ignore_unavailable=True))

    def put_settings(self, name: str, settings: dict[str, Any]) -> None:
        with _translated():
            self.client.indices.put_settings(index=name, body={"index": settings})

    def refresh(self, name: str) -> None:
        with _translated():
            self.client.indices.refresh(index=name)

    def alias_targets(self, alias: str) -> list[str]:
        with _translated():
            if not self.client.indices.exists_alias(name=alias):
                return []
            return sorted(self.client.indices.get_alias(name=alias))

    def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        with _translated():
            self.client.indices.update_aliases(body={"actions": actions})

    def open_pit(self, index: str, keep_alive: str) -> str | None:
        try:
            with _translated():
                return str(self.client.create_pit(index=index, params={"keep_alive": keep_alive})["pit_id"])
        except EngineRequestError as exc:
            # OpenSearch before 2.4 has no point in time.
            if exc.status in (400, 404, 405):
                return None
            raise

    def close_pit(self, pit_id: str) -> None:
        with _translated():
            self.client.delete_pit(body={"pit_id": [pit_id]})

    def close(self) -> None:
        self.client.close()
