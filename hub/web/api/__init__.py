"""The JSON API under /api, authenticated by per-agent API tokens.

One module per resource; each registers its views on the blueprint in
``hub.web.api.blueprint``. Views are entry points: they parse the request,
open one transaction, call a service, and turn the result into JSON. Errors
are JSON too, and name the field at fault (see hub.web.errors). Every route
is described in ``openapi.py`` beside them; a test fails when one is missing.
"""

from __future__ import annotations

from hub.web.api import (
    attachments,
    audit,
    canned,
    chat,
    conversations,
    customers,
    events,
    inbox,
    listing,
    live,
    meta,
    reports,
    search,
    subscriptions,
)
from hub.web.api.blueprint import api

__all__ = [
    "api",
    "attachments",
    "audit",
    "canned",
    "chat",
    "conversations",
    "customers",
    "events",
    "inbox",
    "listing",
    "live",
    "meta",
    "reports",
    "search",
    "subscriptions",
]
