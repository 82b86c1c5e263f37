"""What the two engine clients do alike: the requests both libraries spell the same way.

``elasticsearch`` and ``opensearch-py`` share most of their API (the
indices, search, count, the bulk helper). :class:`ClientAdapter` makes those
requests once; an adapter (:mod:`hub.search.elastic`, :mod:`hub.search.opensearch`)
adds only how its client is built, the calls whose arguments differ, its
point in time, and the translation of its exceptions into
:class:`~hub.search.engine.EngineError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from hub.search.engine import BULK_OPTIONS, BulkItem, bulk_items

#: What a library's ``helpers.streaming_bulk`` yields: (ok, item) per action.
BulkResults = Iterable[tuple[bool, dict[str, Any]]]


class ClientAdapter:
    """One engine client, and every request that reads the same on both libraries."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def translated(self) -> AbstractContextManager[None]:
        """The library's exceptions as EngineError, around a request."""
        raise NotImplementedError

    def streaming_bulk(
        self, actions: Sequence[dict[str, Any]], **options: Any
    ) -> Iterable[tuple[bool, dict[str, Any]]]:
        """The library's ``helpers.streaming_bulk``."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        with self.translated():
            return dict(self.client.info())

    def search(self, index: str | None, body: dict[str, Any]) -> dict[str, Any]:
        with self.translated():
            return dict(self.client.search(index=index, body=body))

    def count(self, index: str, query: dict[str, Any] | None = None) -> int:
        with self.translated():
            return int(self.client.count(index=index, body={"query": query} if query else None)["count"])

    def bulk(self, actions: Sequence[dict[str, Any]]) -> list[BulkItem]:
        with self.translated():
            chunk = max(len(actions), 1)
            return bulk_items(self.streaming_bulk(actions, chunk_size=chunk, **BULK_OPTIONS))

    def delete_index(self, name: str) -> None:
        with self.translated():
            self.client.indices.delete(index=name)

    def indices(self, pattern: str) -> list[str]:
        with self.translated():
            return sorted(self.client.indices.get(index=pattern, allow_no_indices=True, ignore_unavailable=True))

    def refresh(self, name: str) -> None:
        with self.translated():
            self.client.indices.refresh(index=name)

    def alias_targets(self, alias: str) -> list[str]:
        with self.translated():
            if not self.client.indices.exists_alias(name=alias):
                return []
            return sorted(self.client.indices.get_alias(name=alias))

    def close(self) -> None:
        self.client.close()
