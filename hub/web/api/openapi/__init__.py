"""The OpenAPI 3.1 description of /api, served at /api/openapi.json.

Kept beside the views it describes; a test walks the app's URL map and fails
when an /api route is missing here, so the document cannot fall behind.
"""

from __future__ import annotations

from typing import Any

from hub.web.api.openapi.blocks import EVENT_EXAMPLE, WEBHOOK_EXAMPLE, _complete, _error_components
from hub.web.api.openapi.integrations import _webhook_events
from hub.web.api.openapi.paths import paths as _paths
from hub.web.api.openapi.schemas import schemas as _schemas

__all__ = ["EVENT_EXAMPLE", "WEBHOOK_EXAMPLE", "openapi_document"]


def openapi_document() -> dict[str, Any]:
    """The whole document, as served at /api/openapi.json."""
    schemas = _schemas()
    paths = _paths()
    _complete(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Corridor API",
            "version": "1",
            "description": "One timeline per customer across email, phone, SMS, WhatsApp and chat.",
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "events", "description": "Events in from any system, and what became of them"},
            {"name": "customers", "description": "Customers, identities, timelines, merges"},
            {"name": "conversations", "description": "Conversations and replies"},
            {"name": "interactions", "description": "Interactions by the provider's id"},
            {"name": "search", "description": "Full-text search, facets and exports"},
            {"name": "inbox", "description": "The agents' inbox and conversation actions"},
            {"name": "attachments", "description": "Files that came with interactions"},
            {"name": "journal", "description": "Raw payloads as they arrived (admins)"},
            {"name": "webhooks", "description": "Outgoing webhook subscriptions and their delivery logs (admins)"},
            {"name": "live", "description": "Live updates for consoles"},
            {"name": "chat", "description": "Agents' typing and read receipts to chat visitors"},
            {"name": "reports", "description": "The supervisors' figures"},
            {"name": "audit", "description": "Who did what (supervisors)"},
            {"name": "meta", "description": "Health, the caller, this document"},
        ],
        "webhooks": _webhook_events(),
        "security": [{"token": []}],
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "`corridor user create` prints one"}
            },
            "schemas": schemas,
            "responses": _error_components(),
        },
        "paths": paths,
    }
