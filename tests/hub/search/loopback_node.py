"""TEST ONLY: lets the official elasticsearch client talk to the OpenSearch-compatible engine on loopback.

The 8.x client sends ``application/vnd.elasticsearch+json; compatible-with=8``
(and ``application/vnd.elasticsearch+x-ndjson`` for bulk) in Accept and
Content-Type; the engine the suite starts (``osmem-server``) answers those
with 406. This node class rewrites them to plain ``application/json`` /
``application/x-ndjson`` on the way out; nothing else changes. A real
Elasticsearch needs no such thing, and the product never uses it: Corridor's
OpenSearch users choose ``backend = "opensearch"``.
"""

from __future__ import annotations

from typing import Any

from elastic_transport import Urllib3HttpNode


class CompatibleMediaTypeNode(Urllib3HttpNode):
    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        **options: Any) -> Any:  # fmt: skip
        if headers is not None:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value and "vnd.elasticsearch" in value:
                    headers[name] = "application/x-ndjson" if "ndjson" in value else "application/json"
        return super().perform_request(method, target, body=body, headers=headers, **options)
