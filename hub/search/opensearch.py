"""The engine adapter on ``opensearch-py`` (OpenSearch 2 and 3, Amazon OpenSearch Service).

Only what differs from Elasticsearch is here: building the client, its point
in time (``_search/point_in_time``), and its exceptions. Everything else is
in :mod:`hub.search.engine`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import opensearchpy
from opensearchpy import OpenSearch, helpers

from hub.config import SearchSettings
from hub.search.adapter import BulkResults, ClientAdapter
from hub.search.engine import EngineRequestError, engine_error, reason_of


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


class OpenSearchClient(ClientAdapter):
    product = "opensearch"

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

    def translated(self) -> AbstractContextManager[None]:
        return _translated()

    def streaming_bulk(self, actions: Sequence[dict[str, Any]], **options: Any) -> BulkResults:
        return helpers.streaming_bulk(self.client, actions, **options)  # type: ignore[no-any-return]  # untyped

    def create_index(self, name: str, body: dict[str, Any]) -> None:
        with self.translated():
            self.client.indices.create(index=name, body=body)

    def put_settings(self, name: str, settings: dict[str, Any]) -> None:
        with self.translated():
            self.client.indices.put_settings(index=name, body={"index": settings})

    def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        with self.translated():
            self.client.indices.update_aliases(body={"actions": actions})

    def open_pit(self, index: str, keep_alive: str) -> str | None:
        try:
            with self.translated():
                return str(self.client.create_pit(index=index, params={"keep_alive": keep_alive})["pit_id"])
        except EngineRequestError as exc:
            # OpenSearch before 2.4 has no point in time.
            if exc.status in (400, 404, 405):
                return None
            raise

    def close_pit(self, pit_id: str) -> None:
        with self.translated():
            self.client.delete_pit(body={"pit_id": [pit_id]})
