"""The OpenAPI 3.1 description of /api, served at /api/openapi.json.

Kept beside the views it describes; a test walks the app's URL map and fails
when an /api route is missing here, so the document cannot fall behind.
"""

from __future__ import annotations

from typing import Any

from hub.events import Channel, DeliveryStatus, Direction, IdentityKind, InteractionKind
from hub.integrations import EVENT_TYPES
from hub.models import JournalStatus
from hub.web.api.search import EXPORT_COLUMNS

#: The example ChannelEvent: what POST /api/events takes, round-tripped by the contract test.
EVENT_EXAMPLE: dict[str, Any] = {
    "channel": "email",
    "external_id": "<c5a1e0f2@mail.example.com>",
    "occurred_at": "2026-11-02T09:00:00Z",
    "direction": "inbound",
    "from": {"address": "ana.lima@example.com", "name": "Ana Lima"},
    "subject": "Order 48213 has not arrived",
    "text": "Hello, my order 48213 was due on Monday and has not arrived.",
}
#: What a subscriber receives for interaction.created (the body of every delivery has this shape).
WEBHOOK_EXAMPLE: dict[str, Any] = {
    "id": "evt_1042",
    "version": 1,
    "type": "interaction.created",
    "created_at": "2026-11-02T09:00:01Z",
    "data": {
        "interaction": {
            "id": 311,
            "customer_id": 27,
            "conversation_id": 88,
            "channel": "sms",
            "direction": "inbound",
            "kind": "message",
            "external_id": "SM8d2f0c0e5b9a4c4f9d0b6f1e2a3c4d5e",
            "occurred_at": "2026-11-02T09:00:00Z",
            "from": "+14155550123",
            "to": "+15005550006",
            "subject": "",
            "text": "Is my order 48213 on its way?",
            "status": "received",
            "error_code": None,
            "error_message": None,
            "author_id": None,
        },
        "conversation": {
            "id": 88,
            "customer_id": 27,
            "status": "open",
            "subject": "",
            "assignee_id": None,
            "opened_at": "2026-11-02T09:00:00Z",
            "last_activity_at": "2026-11-02T09:00:00Z",
            "closed_at": None,
        },
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


#: Error answers, each with the Error schema; :func:`_complete` gives every operation those it can get.
_ERROR_RESPONSES: dict[str, tuple[str, str | None, str]] = {
    "400": ("Invalid input; the error names the field", "limit", "must be between 1 and 200"),
    "401": ("No or unknown API token", None, "log in, or send Authorization: Bearer <API token>"),
    "403": ("Your role may not do this", None, "your role (agent) may not do this (journal.read)"),
    "404": ("No such resource; the message says which", None, "no customer 999"),
    "409": ("The change contradicts the data", "source_id", "customer 2 is already merged into customer 1"),
    "413": ("The body is larger than [app] max_body_bytes", "body", "the body is larger than 1048576 bytes"),
    "415": ("The body is not JSON", "body", "send Content-Type: application/json"),
    "422": ("Understood, but cannot be done", "channel", "no sender is configured for sms"),
    "429": ("Too many requests; Retry-After says when to try again", None, "too many requests"),
    "503": (
        "The database is unavailable (restarting, or locked past its timeout); Retry-After says when to try again",
        None,
        "the database is unavailable; try again shortly",
    ),
}


def _error(description: str) -> dict[str, Any]:
    """An error answer particular to one operation (a 409 that says what conflicts)."""
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _error_components() -> dict[str, Any]:
    return {
        status: {
            "description": description,
            "content": {
                "application/json": {
                    "schema": _ref("Error"),
                    "example": {"error": {"status": int(status), "field": field, "message": message}},
                }
            },
        }
        for status, (description, field, message) in _ERROR_RESPONSES.items()
    }


def _complete(paths: dict[str, Any]) -> None:
    """Add to every operation the error answers the server gives it, by what the operation takes.

    Every operation reads the database (503 when it is unavailable); one with
    a token may get 401 and 403; query parameters or a body, 400; an id in
    the path, 404; a JSON body, 413 and 415. 409 and 422 are the operations'
    own and written beside them.
    """
    for path, operations in paths.items():
        for operation in operations.values():
            wanted = ["503"]
            if operation.get("security") != []:
                wanted += ["401", "403"]
            parameters = operation.get("parameters", [])
            if any(p["in"] == "query" for p in parameters) or "requestBody" in operation:
                wanted.append("400")
            if "{" in path:
                wanted.append("404")
            if "requestBody" in operation:
                wanted += ["413", "415"]
            for status in wanted:
                operation["responses"].setdefault(status, {"$ref": f"#/components/responses/{status}"})


def _id_param(name: str, example: int = 1) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}, "example": example}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _enum(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": [v.value for v in values]}


def _search_parameters() -> list[dict[str, Any]]:
    """The search and its filters, shared by the search and its export."""
    return [
        {**_query("q", 'Words, "phrases", prefix*'), "example": "order"},
        _query("channel", "Repeat or comma-separate"),
        _query("direction", "inbound, outbound, internal"),
        _query("since", "ISO 8601"),
        _query("until", "ISO 8601"),
        _query("customer", "Customer id", {"type": "integer"}),
        _query("kind", "message, call, voicemail, note...; repeat or comma-separate (engine backends)"),
        _query("status", "Delivery or call status; repeat or comma-separate (engine backends)"),
        _query("agent", "Id of the agent who wrote it; repeat or comma-separate (engine backends)"),
    ]


def _body(schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body with its example (the contract test sends it)."""
    return {"required": True, "content": {"application/json": {"schema": schema, "example": example}}}


def _webhook_schemas() -> dict[str, Any]:
    event_type = {"type": "string", "enum": sorted(EVENT_TYPES)}
    return {
        "SubscriptionInput": {
            "type": "object",
            "required": ["url", "events"],
            "additionalProperties": False,
            "properties": {
                "url": {
                    "type": "string",
                    "description": "http(s); must resolve to public addresses unless its host is in "
                    "[webhooks] allowed_hosts",
                },
                "events": {"type": "array", "minItems": 1, "items": event_type},
                "description": {"type": "string", "maxLength": 500},
            },
        },
        "SubscriptionChange": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string"},
                "events": {"type": "array", "minItems": 1, "items": event_type},
                "description": {"type": "string", "maxLength": 500},
                "status": {
                    "type": "string",
                    "enum": ["active", "paused"],
                    "description": "active resumes: what waited is sent, in order",
                },
            },
        },
        "Subscription": {
            "type": "object",
            "required": ["id", "url", "events", "status", "consecutive_failures"],
            "properties": {
                "id": {"type": "integer"},
                "url": {"type": "string"},
                "description": {"type": "string"},
                "events": {"type": "array", "items": event_type},
                "status": {"type": "string", "enum": ["active", "paused"]},
                "paused_reason": {"type": ["string", "null"]},
                "paused_at": {"type": ["string", "null"], "format": "date-time"},
                "consecutive_failures": {"type": "integer"},
                "created_at": {"type": "string", "format": "date-time"},
                "secret": {
                    "type": "string",
                    "description": "Signs X-Corridor-Signature (HMAC-SHA256 over '<t>.<body>')",
                },
            },
        },
        "SubscriptionList": {
            "type": "object",
            "required": ["subscriptions"],
            "properties": {
                "subscriptions": {"type": "array", "items": _ref("Subscription")},
                "event_types": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "Delivery": {
            "type": "object",
            "required": ["id", "event_id", "event_type", "status", "attempts"],
            "properties": {
                "id": {"type": "integer"},
                "subscription_id": {"type": "integer"},
                "event_id": {"type": "string"},
                "event_type": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                "attempts": {"type": "integer"},
                "response_code": {"type": ["integer", "null"]},
                "latency_ms": {"type": ["integer", "null"]},
                "last_error": {"type": ["string", "null"]},
                "last_attempt_at": {"type": ["string", "null"], "format": "date-time"},
                "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
                "created_at": {"type": "string", "format": "date-time"},
                "delivered_at": {"type": ["string", "null"], "format": "date-time"},
                "body": {
                    "type": "object",
                    "description": "Exactly what is posted: id, version, type, created_at, data",
                },
            },
        },
        "WebhookEvent": {
            "type": "object",
            "required": ["id", "version", "type", "created_at", "data"],
            "description": "The body of every delivery, signed in X-Corridor-Signature: t=<unix>,v1=<hex "
            "HMAC-SHA256(secret, '<t>.<body>')>. Dedupe by id: a delivery may arrive twice only if Corridor "
            "stopped between your 2xx and recording it.",
            "properties": {
                "id": {"type": "string", "description": "The event's id; the same on every retry"},
                "version": {"type": "integer", "const": 1},
                "type": {"type": "string", "enum": [*sorted(EVENT_TYPES), "webhook.test"]},
                "created_at": {"type": "string", "format": "date-time"},
                "data": {"type": "object"},
            },
            "example": WEBHOOK_EXAMPLE,
        },
        "DeliveryLog": {
            "type": "object",
            "required": ["deliveries", "next_cursor"],
            "properties": {
                "deliveries": {"type": "array", "items": _ref("Delivery")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
    }


def _webhook_events() -> dict[str, Any]:
    """The requests Corridor makes to subscribers, one per event type (OpenAPI 3.1 ``webhooks``)."""
    events = {**EVENT_TYPES, "webhook.test": "Sent by 'send test' only"}
    return {
        name: {
            "post": {
                "operationId": "on" + "".join(part.title() for part in name.replace(".", "_").split("_")),
                "tags": ["webhooks"],
                "summary": summary,
                "parameters": [
                    {
                        "name": "X-Corridor-Signature",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                        "example": "t=1793610001,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
                    },
                    {"name": "X-Corridor-Event", "in": "header", "required": True, "schema": {"type": "string"}},
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("WebhookEvent")}}},
                "responses": {
                    "2XX": {"description": "Acknowledged: never sent again"},
                    "default": {"description": "Anything else (or no answer in [webhooks] timeout_seconds) is retried"},
                },
            }
        }
        for name, summary in events.items()
    }


def _webhook_paths() -> dict[str, Any]:
    sid = _id_param("subscription_id")
    tags = ["webhooks"]
    return {
        "/api/subscriptions": {
            "get": {
                "operationId": "listWebhookSubscriptions",
                "tags": tags,
                "summary": "Outgoing webhook subscriptions (admins), and the event types there are",
                "responses": {"200": _ok("SubscriptionList")},
            },
            "post": {
                "operationId": "createWebhookSubscription",
                "tags": tags,
                "summary": "Subscribe a URL to event types (admins); the answer carries the signing secret",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("SubscriptionInput"),
                            "example": {
                                "url": "https://hooks.example.com/corridor",
                                "events": ["interaction.created", "conversation.assigned"],
                                "description": "CRM sync",
                            },
                        }
                    },
                },
                "responses": {"201": _ok("Subscription", "Subscribed")},
            },
        },
        "/api/subscriptions/{subscription_id}": {
            "get": {
                "operationId": "getWebhookSubscription",
                "tags": tags,
                "summary": "One subscription, with its secret",
                "parameters": [sid],
                "responses": {"200": _ok("Subscription")},
            },
            "patch": {
                "operationId": "updateWebhookSubscription",
                "tags": tags,
                "summary": "Change url, events, description; pause or resume",
                "parameters": [sid],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("SubscriptionChange"), "example": {"status": "paused"}}
                    },
                },
                "responses": {"200": _ok("Subscription")},
            },
            "delete": {
                "operationId": "deleteWebhookSubscription",
                "tags": tags,
                "summary": "Remove a subscription and its delivery log",
                "parameters": [sid],
                "responses": {"204": {"description": "Removed"}},
            },
        },
        "/api/subscriptions/{subscription_id}/deliveries": {
            "get": {
                "operationId": "listWebhookDeliveries",
                "tags": tags,
                "summary": "The delivery log, newest first: status, attempts, response code, latency, next retry",
                "parameters": [
                    sid,
                    _query(
                        "status",
                        "pending, delivered or failed",
                        {"type": "string", "enum": ["pending", "delivered", "failed"]},
                    ),
                    _query("limit", "1-200", {"type": "integer", "minimum": 1, "maximum": 200}),
                    _query("cursor", "From next_cursor"),
                ],
                "responses": {"200": _ok("DeliveryLog")},
            }
        },
        "/api/subscriptions/{subscription_id}/test": {
            "post": {
                "operationId": "sendWebhookTest",
                "tags": tags,
                "summary": "Send a webhook.test event now (also while paused); answers with the logged attempt",
                "parameters": [sid],
                "responses": {"200": _ok("Delivery", "Attempted; status says whether it was acknowledged")},
            }
        },
    }


def _listing_schemas() -> dict[str, Any]:
    return {
        "ConversationList": {
            "type": "object",
            "required": ["conversations", "next_cursor"],
            "properties": {
                "conversations": {"type": "array", "items": _ref("Conversation")},
                "next_cursor": {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page"},
            },
        },
        "InteractionList": {
            "type": "object",
            "required": ["interactions"],
            "properties": {"interactions": {"type": "array", "items": _ref("Interaction")}},
        },
        "JournalEntry": {
            "type": "object",
            "required": ["id", "source", "status", "received_at"],
            "properties": {
                "id": {"type": "integer"},
                "source": {"type": "string"},
                "channel": {"type": ["string", "null"]},
                "external_id": {"type": ["string", "null"]},
                "received_at": {"type": "string", "format": "date-time"},
                "content_type": {"type": "string"},
                "size": {"type": "integer", "description": "Bytes of the payload as it arrived"},
                "status": {"type": "string", "enum": [s.value for s in JournalStatus]},
                "error": {"type": ["string", "null"]},
                "attempts": {"type": "integer"},
                "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
                "interaction_id": {"type": ["integer", "null"]},
            },
        },
        "JournalList": {
            "type": "object",
            "required": ["entries", "next_cursor"],
            "properties": {
                "entries": {"type": "array", "items": _ref("JournalEntry")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
    }


def _listing_paths() -> dict[str, Any]:
    return {
        "/api/conversations": {
            "get": {
                "operationId": "listConversations",
                "tags": ["conversations"],
                "summary": "Conversations by status, customer, assignee and channel; most recent activity first",
                "description": (
                    "Keyset-paged on (last_activity_at, id). A conversation with new activity moves to the front "
                    "while you page: to sync changes, pass since= and page until next_cursor is null."
                ),
                "parameters": [
                    _query("status", "open, pending, closed; repeat or comma-separate"),
                    _query("customer", "Customer id (merged ids redirect)", {"type": "integer"}),
                    _query("assignee", "Agent id, or none for unassigned"),
                    _query("channel", "Conversations with an interaction on this channel", _enum(Channel)),
                    _query("since", "Last activity at or after (ISO 8601)", {"type": "string", "format": "date-time"}),
                    _query("limit", "1-200", {"type": "integer", "minimum": 1, "maximum": 200}),
                    _query("cursor", "From next_cursor"),
                ],
                "responses": {"200": _ok("ConversationList")},
            }
        },
        "/api/interactions": {
            "get": {
                "operationId": "findInteractionByExternalId",
                "tags": ["interactions"],
                "summary": "The interaction a provider knows by its id (MessageSid, CallSid, Message-ID): 0 or 1",
                "parameters": [
                    {**_query("channel", "The channel", _enum(Channel)), "required": True, "example": "sms"},
                    {
                        **_query("external_id", "The provider's id, exactly"),
                        "required": True,
                        "example": "SM8d2f0c0e5b9a4c4f9d0b6f1e2a3c4d5e",
                    },
                ],
                "responses": {"200": _ok("InteractionList")},
            }
        },
        "/api/journal": {
            "get": {
                "operationId": "listJournalEntries",
                "tags": ["journal"],
                "summary": "Journal entries by status (admins), newest first; failed by default",
                "description": "received lists the newest only (next_cursor is null): on SQLite they wait in "
                "the inbox, which has no order to page by.",
                "parameters": [
                    _query("status", "Default failed", {"type": "string", "enum": [s.value for s in JournalStatus]}),
                    _query("limit", "1-200", {"type": "integer", "minimum": 1, "maximum": 200}),
                    _query("cursor", "From next_cursor"),
                ],
                "responses": {"200": _ok("JournalList")},
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    party = {
        "type": "object",
        "required": ["address"],
        "properties": {
            "address": {"type": "string", "description": "Email, phone number, chat visitor id..."},
            "name": {"type": "string"},
            "kind": _enum(IdentityKind),
        },
    }
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["status", "field", "message"],
                    "properties": {
                        "status": {"type": "integer"},
                        "field": {"type": ["string", "null"], "description": "The field at fault"},
                        "message": {"type": "string"},
                    },
                }
            },
        },
        "Party": party,
        "Agent": {
            "type": "object",
            "required": ["id", "email", "name", "role"],
            "properties": {
                "id": {"type": "integer"},
                "email": {"type": "string"},
                "name": {"type": "string"},
                "role": {"type": "string", "enum": ["agent", "supervisor", "admin"]},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "journal"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]},
                "reason": {"type": ["string", "null"]},
                "journal": {
                    "type": "object",
                    "properties": {
                        "received": {"type": "integer"},
                        "oldest_received_seconds": {"type": "number"},
                        "failed": {"type": "integer"},
                    },
                },
                "webhooks": {
                    "type": "object",
                    "properties": {
                        "subscriptions": {"type": "integer"},
                        "paused": {"type": "array", "items": {"type": "integer"}, "description": "Paused ids"},
                        "oldest_pending_seconds": {"type": "number"},
                        "feed_behind": {"type": "integer", "description": "Feed events not yet dispatched"},
                        "feed_gap": {
                            "type": ["object", "null"],
                            "description": "Set when the feed was pruned past the dispatcher: events may be missing",
                        },
                    },
                },
            },
        },
        "LiveToken": {
            "type": "object",
            "required": ["token", "url", "topics", "position", "expires_in"],
            "properties": {
                "token": {"type": "string"},
                "url": {"type": "string", "description": "The server-sent events stream"},
                "topics": {"type": "array", "items": {"type": "string"}},
                "position": {"type": "integer", "description": "The newest event id now: pass it as last_event_id"},
                "expires_in": {"type": "integer"},
            },
        },
        "ChannelEvent": {
            "type": "object",
            "required": ["channel", "external_id", "occurred_at", "direction"],
            "additionalProperties": False,
            "properties": {
                "channel": _enum(Channel),
                "external_id": {
                    "type": "string",
                    "maxLength": 998,
                    "description": "Unique per channel; a repeat is a duplicate, not an error",
                },
                "occurred_at": {
                    "type": "string",
                    "format": "date-time",
                    "description": "With a time zone; at most a day after the server's time",
                },
                "direction": _enum(Direction),
                "kind": _enum(InteractionKind),
                "from": _ref("Party"),
                "to": {"type": "array", "items": _ref("Party")},
                "subject": {"type": "string"},
                "text": {"type": "string"},
                "html": {"type": "string", "description": "Sanitised before storage"},
                "thread_refs": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "External ids of earlier interactions this answers",
                },
                "session": {
                    "type": "string",
                    "description": "A provider session (a chat): a customer's interactions in it are one conversation",
                },
                "attachments": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["filename"],
                        "properties": {
                            "filename": {"type": "string"},
                            "content_type": {"type": "string"},
                            "content_base64": {"type": "string"},
                            "url": {"type": "string"},
                            "size": {"type": "integer"},
                        },
                    },
                },
                "metadata": {"type": "object"},
                "delivery_status": _enum(DeliveryStatus),
            },
        },
        "IngestResult": {
            "type": "object",
            "required": [
                "journal_id",
                "status",
                "interaction_id",
                "customer_id",
                "conversation_id",
                "duplicate",
                "error",
            ],
            "properties": {
                "journal_id": {"type": "integer"},
                "status": {"type": "string", "enum": [s.value for s in JournalStatus]},
                "interaction_id": {"type": ["integer", "null"]},
                "customer_id": {"type": ["integer", "null"]},
                "conversation_id": {"type": ["integer", "null"]},
                "duplicate": {"type": "boolean"},
                "error": {"type": ["string", "null"]},
            },
        },
        "Customer": {
            "type": "object",
            "required": ["id", "display_name"],
            "properties": {
                "created_at": {"type": "string", "format": "date-time"},
                "requested_id": {"type": "integer", "description": "The id asked for; differs from id after a merge"},
                "id": {"type": "integer"},
                "display_name": {"type": "string"},
                "identities": {"type": "array", "items": _ref("Identity")},
                "conversations": {"type": "array", "items": _ref("Conversation")},
                "interaction_count": {"type": "integer"},
            },
        },
        "CustomerList": {
            "type": "object",
            "required": ["customers"],
            "properties": {"customers": {"type": "array", "items": _ref("Customer")}},
        },
        "Identity": {
            "type": "object",
            "required": ["id", "kind", "value", "raw_value"],
            "properties": {
                "id": {"type": "integer"},
                "kind": _enum(IdentityKind),
                "value": {"type": "string"},
                "raw_value": {"type": "string"},
            },
        },
        "Conversation": {
            "type": "object",
            "required": ["id", "customer_id", "status", "subject", "opened_at", "last_activity_at", "assignee_id"],
            "properties": {
                "assignee_id": {"type": ["integer", "null"]},
                "id": {"type": "integer"},
                "customer_id": {"type": "integer"},
                "status": {"type": "string", "enum": ["open", "pending", "closed"]},
                "subject": {"type": "string"},
                "opened_at": {"type": "string", "format": "date-time"},
                "last_activity_at": {"type": "string", "format": "date-time"},
                "interactions": {"type": "array", "items": _ref("Interaction")},
            },
        },
        "Interaction": {
            "type": "object",
            "required": [
                "id",
                "customer_id",
                "conversation_id",
                "channel",
                "direction",
                "kind",
                "external_id",
                "occurred_at",
                "status",
            ],
            "properties": {
                "metadata": {"type": "object", "description": "What the provider sent besides"},
                "id": {"type": "integer"},
                "customer_id": {"type": "integer"},
                "conversation_id": {"type": ["integer", "null"]},
                "channel": _enum(Channel),
                "direction": _enum(Direction),
                "kind": _enum(InteractionKind),
                "external_id": {"type": "string"},
                "occurred_at": {"type": "string", "format": "date-time"},
                "from": {"type": "string"},
                "to": {"type": "string"},
                "subject": {"type": "string"},
                "text": {"type": "string"},
                "reply_text": {"type": "string"},
                "html": {"type": "string", "description": "Sanitised"},
                "status": {"type": ["string", "null"]},
                "error_code": {"type": ["string", "null"]},
                "error_message": {"type": ["string", "null"]},
                "duration_seconds": {"type": ["integer", "null"]},
                "defects": {"type": "array", "items": {"type": "string"}},
                "attachments": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Timeline": {
            "type": "object",
            "required": ["customer_id", "interactions", "next_cursor"],
            "properties": {
                "conversations": {
                    "type": "object",
                    "additionalProperties": _ref("Conversation"),
                    "description": "By id, those on this page",
                },
                "customer_id": {"type": "integer"},
                "interactions": {"type": "array", "items": _ref("Interaction")},
                "next_cursor": {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page"},
            },
        },
        "Merge": {
            "type": "object",
            "required": ["id", "source_id", "target_id", "merged_at", "undone_at", "moved"],
            "properties": {
                "id": {"type": "integer"},
                "source_id": {"type": "integer"},
                "target_id": {"type": "integer"},
                "merged_at": {"type": "string"},
                "undone_at": {"type": ["string", "null"]},
                "moved": {"type": "object"},
            },
        },
        "SearchResults": {
            "type": "object",
            "required": ["hits", "next_cursor"],
            "properties": {
                "hits": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "interaction_id": {"type": "integer"},
                            "customer_id": {"type": "integer"},
                            "conversation_id": {"type": ["integer", "null"]},
                            "channel": {"type": "string"},
                            "direction": {"type": "string"},
                            "occurred_at": {"type": "string"},
                            "subject": {"type": "string"},
                            "snippet": {"type": "string", "description": "Escaped HTML with <mark> around matches"},
                        },
                    },
                },
                "next_cursor": {"type": ["string", "null"]},
                "total": {"type": "integer", "description": "Every match (on an engine always; else with facets=1)"},
                "facets": {
                    "type": "object",
                    "description": "With facets=1: counts of the matches per value",
                    "properties": {
                        "total": {"type": "integer"},
                        "channel": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "direction": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "status": {
                            "type": "object",
                            "additionalProperties": {"type": "integer"},
                            "description": "'none' for interactions without a status",
                        },
                        "agent": {
                            "type": "object",
                            "additionalProperties": {"type": "integer"},
                            "description": "By the id of the agent who wrote it",
                        },
                        "histogram": {
                            "type": "object",
                            "properties": {
                                "interval": {"type": "string"},
                                "buckets": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "start": {"type": "string", "format": "date-time"},
                                            "count": {"type": "integer"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
        "Reply": {
            "type": "object",
            "required": ["text"],
            "properties": {
                "channel": {**_enum(Channel), "description": "Default: the channel the customer last used"},
                "text": {"type": "string"},
                "subject": {"type": "string"},
            },
        },
        "InboxPage": {
            "type": "object",
            "properties": {
                "conversations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "customer_id": {"type": "integer"},
                            "customer_name": {"type": "string"},
                            "status": {"type": "string"},
                            "subject": {"type": "string"},
                            "waiting_since": {"type": ["string", "null"], "format": "date-time"},
                            "last_activity_at": {"type": "string", "format": "date-time"},
                            "channels": {"type": "array", "items": {"type": "string"}},
                            "last_text": {"type": "string"},
                            "last_direction": {"type": ["string", "null"]},
                            "assignee_id": {"type": ["integer", "null"]},
                            "assignee_name": {"type": ["string", "null"]},
                        },
                    },
                },
                "next_cursor": {"type": ["string", "null"]},
                "counts": {
                    "type": "object",
                    "description": "Per status (open, pending): all, mine, unassigned",
                    "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
        },
        "ReplyResult": {
            "type": "object",
            "required": ["interaction_id", "status"],
            "properties": {
                "interaction_id": {"type": "integer"},
                "status": {"type": "string"},
                "error_code": {"type": ["string", "null"]},
                "error_message": {"type": ["string", "null"]},
                "will_retry": {"type": "boolean"},
            },
        },
    }
    schemas.update(_webhook_schemas())
    schemas.update(_listing_schemas())
    cid = _id_param("customer_id")
    paths: dict[str, Any] = {
        "/api/events": {
            "post": {
                "operationId": "postEvent",
                "tags": ["events"],
                "summary": "Push one event from any system onto a customer's timeline",
                "description": (
                    "Validated and journaled, then answered 202: the event is durable and appears on the "
                    "timeline once the journal processor has taken it (GET /api/events/{journal_id}, also "
                    "in the Location header). With wait=<seconds> the answer waits for processing instead, while "
                    "fewer than [journal] max_waiting requests are waiting already (else 202 at once)."
                ),
                "parameters": [
                    _query(
                        "wait",
                        "Seconds (0-30) to wait for processing; 0 answers at once",
                        {"type": "number", "minimum": 0, "maximum": 30},
                    )
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ChannelEvent"), "example": EVENT_EXAMPLE}},
                },
                "responses": {
                    "202": _ok("IngestResult", "Journaled; processing follows (or, after wait, failed or deferred)"),
                    "201": _ok("IngestResult", "Created (with wait)"),
                    "200": _ok("IngestResult", "Already there: a duplicate (with wait)"),
                },
            }
        },
        "/api/health": {
            "get": {
                "operationId": "getHealth",
                "tags": ["meta"],
                "summary": "Health for monitoring (no token): journal backlog and failures, webhook subscriptions; "
                "degraded when received events wait over a minute for the journal processor, and, on a search "
                "engine, when it is unavailable, the index lags more than [search] lag_threshold or documents "
                "failed to index",
                "security": [],
                "responses": {"200": _ok("Health")},
            }
        },
        "/api/events/{journal_id}": {
            "get": {
                "operationId": "getEventOutcome",
                "tags": ["events"],
                "summary": "What became of an event posted here: received, processed, duplicate, deferred or failed",
                "parameters": [_id_param("journal_id")],
                "responses": {"200": _ok("IngestResult")},
            }
        },
        "/api/attachments/{attachment_id}": {
            "get": {
                "operationId": "getAttachment",
                "tags": ["attachments"],
                "summary": "An attachment's bytes (images inline, the rest as a download); what inline cid: "
                "images in an interaction's html point to",
                "parameters": [_id_param("attachment_id")],
                "responses": {"200": {"description": "The bytes", "content": {"application/octet-stream": {}}}},
            }
        },
        "/api/journal/{entry_id}": {
            "get": {
                "operationId": "getJournalEntry",
                "tags": ["journal"],
                "summary": "Any journal entry, whatever delivered it (admins: journal.read)",
                "parameters": [_id_param("entry_id")],
                "responses": {"200": _ok("IngestResult")},
            }
        },
        "/api/customers": {
            "get": {
                "operationId": "findCustomers",
                "tags": ["customers"],
                "summary": "Find customers by email, phone or name",
                "parameters": [
                    {**_query("email", "Exact address, any case"), "example": "ana.lima@example.com"},
                    _query("phone", "Any format; E.164 best"),
                    _query("name", "Name prefix"),
                    _query("limit", "1-100", {"type": "integer", "minimum": 1, "maximum": 100}),
                ],
                "responses": {"200": _ok("CustomerList")},
            }
        },
        "/api/customers/{customer_id}": {
            "get": {
                "operationId": "getCustomer",
                "tags": ["customers"],
                "summary": "A customer with identities and conversations (merged ids redirect)",
                "parameters": [cid],
                "responses": {"200": _ok("Customer")},
            }
        },
        "/api/customers/{customer_id}/timeline": {
            "get": {
                "operationId": "getCustomerTimeline",
                "tags": ["customers"],
                "summary": "The customer's interactions on every channel, newest first",
                "parameters": [
                    cid,
                    _query("limit", "1-200", {"type": "integer", "minimum": 1, "maximum": 200}),
                    _query("cursor", "From next_cursor"),
                ],
                "responses": {"200": _ok("Timeline")},
            }
        },
        "/api/customers/{customer_id}/identities": {
            "post": {
                "operationId": "addCustomerIdentity",
                "tags": ["customers"],
                "summary": "Link an address (email, phone...) to the customer",
                "parameters": [cid],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["kind", "value"],
                                "properties": {"kind": _enum(IdentityKind), "value": {"type": "string"}},
                            },
                            "example": {"kind": "phone", "value": "+1 415 555 0100"},
                        }
                    },
                },
                "responses": {"201": _ok("Identity", "Linked"), "409": _error("Belongs to another customer")},
            }
        },
        "/api/customers/{customer_id}/identities/{identity_id}": {
            "delete": {
                "operationId": "removeCustomerIdentity",
                "tags": ["customers"],
                "summary": "Unlink an address; past interactions stay",
                "parameters": [cid, _id_param("identity_id")],
                "responses": {"204": {"description": "Unlinked"}},
            }
        },
        "/api/customers/{customer_id}/merge": {
            "post": {
                "operationId": "mergeCustomer",
                "tags": ["customers"],
                "summary": "Merge customer source_id into this one (supervisors)",
                "parameters": [cid],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["source_id"],
                                "properties": {"source_id": {"type": "integer"}},
                            },
                            "example": {"source_id": 2},
                        }
                    },
                },
                "responses": {"200": _ok("Merge"), "409": _error("Cannot merge these")},
            }
        },
        "/api/customers/{customer_id}/erase": {
            "post": {
                "operationId": "eraseCustomer",
                "tags": ["customers"],
                "summary": "GDPR erasure (admins): the person's interactions, identities, attachments, journal "
                "payloads, merges and search documents are deleted; an audit record of counts remains",
                "parameters": [cid],
                "responses": {"200": {"description": "Erased: the customer ids and what was removed, in counts"}},
            }
        },
        "/api/merges/{merge_id}/undo": {
            "post": {
                "operationId": "undoMerge",
                "tags": ["customers"],
                "summary": "Undo a merge: exactly what moved goes back",
                "parameters": [_id_param("merge_id")],
                "responses": {"200": _ok("Merge"), "409": _error("Undo the later merge first")},
            }
        },
        "/api/conversations/{conversation_id}": {
            "get": {
                "operationId": "getConversation",
                "tags": ["conversations"],
                "summary": "A conversation and its interactions, oldest first",
                "parameters": [_id_param("conversation_id")],
                "responses": {"200": _ok("Conversation")},
            }
        },
        "/api/conversations/{conversation_id}/replies": {
            "post": {
                "operationId": "postReply",
                "tags": ["conversations"],
                "summary": "Reply to the customer on a channel; sent after it is stored",
                "parameters": [_id_param("conversation_id")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("Reply"),
                            "example": {"channel": "email", "text": "It left our warehouse today."},
                        }
                    },
                },
                "responses": {
                    "201": _ok("ReplyResult", "Sent"),
                    "202": _ok("ReplyResult", "Queued; will retry"),
                    "422": {
                        "description": "No sender for that channel (an error), or the provider refused it "
                        "(a ReplyResult with status failed and an error, recorded on the interaction)",
                        "content": {"application/json": {"schema": {"anyOf": [_ref("ReplyResult"), _ref("Error")]}}},
                    },
                },
            }
        },
        "/api/inbox": {
            "get": {
                "operationId": "getInbox",
                "tags": ["inbox"],
                "summary": "Conversations that need someone, longest-waiting customer first",
                "parameters": [
                    _query("status", "open (default), pending or closed"),
                    _query("view", "all (default), mine or unassigned"),
                    _query("order", "waiting (default: waiting customers first, longest on top) or activity"),
                    _query("channel", "Conversations that used this channel"),
                    _query("assignee", "Agent id", {"type": "integer"}),
                    _query("customer", "Customer id", {"type": "integer"}),
                    _query("limit", "1-100", {"type": "integer", "minimum": 1, "maximum": 100}),
                    _query("cursor", "From next_cursor"),
                ],
                "responses": {"200": _ok("InboxPage")},
            }
        },
        "/api/conversations/{conversation_id}/notes": {
            "post": {
                "operationId": "addNote",
                "tags": ["inbox"],
                "summary": "An internal note with its author; never shown to the customer",
                "parameters": [_id_param("conversation_id")],
                "requestBody": _body(
                    {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
                    {"text": "Called the courier: delivery tomorrow morning."},
                ),
                "responses": {"201": {"description": "Stored; interaction_id"}},
            }
        },
        "/api/conversations/{conversation_id}/assign": {
            "post": {
                "operationId": "assignConversation",
                "tags": ["inbox"],
                "summary": "Assign to an agent, or unassign with null",
                "parameters": [_id_param("conversation_id")],
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["assignee_id"],
                        "properties": {"assignee_id": {"type": ["integer", "null"]}},
                    },
                    {"assignee_id": None},
                ),
                "responses": {"200": _ok("Conversation")},
            }
        },
        "/api/conversations/{conversation_id}/take": {
            "post": {
                "operationId": "takeConversation",
                "tags": ["inbox"],
                "summary": "Assign to yourself",
                "parameters": [_id_param("conversation_id")],
                "responses": {"200": _ok("Conversation")},
            }
        },
        "/api/conversations/{conversation_id}/status": {
            "post": {
                "operationId": "setConversationStatus",
                "tags": ["inbox"],
                "summary": "Open, pending or closed; open again reopens",
                "parameters": [_id_param("conversation_id")],
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["status"],
                        "properties": {"status": {"type": "string", "enum": ["open", "pending", "closed"]}},
                    },
                    {"status": "pending"},
                ),
                "responses": {"200": _ok("Conversation")},
            }
        },
        "/api/conversations/{conversation_id}/presence": {
            "post": {
                "operationId": "reportPresence",
                "tags": ["inbox"],
                "summary": "Show other agents you are viewing or replying (a `presence` live event)",
                "parameters": [_id_param("conversation_id")],
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["state"],
                        "properties": {"state": {"type": "string", "enum": ["viewing", "replying"]}},
                    },
                    {"state": "viewing"},
                ),
                "responses": {"204": {"description": "Announced"}},
            }
        },
        "/api/search": {
            "get": {
                "operationId": "searchInteractions",
                "tags": ["search"],
                "summary": "Full-text search over every interaction, with facets",
                "description": (
                    'Words, "phrases" and prefix* on every backend; every term is required and nothing typed is '
                    "a syntax error. On a search engine (elasticsearch, opensearch) a phone number matches however it "
                    "is typed ('+49 30 2312', '030 2312') and an address by its beginning ('maria.keller@'); pages "
                    "continue past 10,000 hits (search_after). Facets (facets=1) are counted by the engine, or by "
                    "the database on SQLite and PostgreSQL full text. Filtering by kind, status or agent needs an "
                    "engine (400 on the embedded backends). 503 while the engine is unavailable."
                ),
                "parameters": [
                    *_search_parameters(),
                    _query(
                        "order",
                        "newest (default) or relevance; on SQLite a word in more than 1,000 "
                        "interactions is ranked among its newest 1,000 matches",
                    ),
                    _query("limit", "1-100", {"type": "integer", "minimum": 1, "maximum": 100}),
                    _query("cursor", "From next_cursor"),
                    _query("facets", "1: add total and facets (channel, direction, status, agent, histogram)"),
                    _query(
                        "interval",
                        "The histogram's buckets: day (default), week (from Monday) or month",
                        {"type": "string", "enum": ["day", "week", "month"]},
                    ),
                ],
                "responses": {"200": _ok("SearchResults")},
            }
        },
        "/api/search/export": {
            "get": {
                "operationId": "exportSearch",
                "tags": ["search"],
                "summary": "Every match of a search as CSV, streamed (supervisors; audited)",
                "description": (
                    "All matches, newest first, not one page: read from the engine with a point in time where "
                    "it has one, else page by page; works on every backend. Columns: "
                    + ", ".join(EXPORT_COLUMNS)
                    + ". The audit log records who exported, the search, and how many rows were sent."
                ),
                "parameters": _search_parameters(),
                "responses": {"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}},
            }
        },
        "/api/live/token": {
            "get": {
                "operationId": "getLiveToken",
                "tags": ["live"],
                "summary": "A stream token for live updates, and the stream URL",
                "description": (
                    "Open `url?token=…&last_event_id=…` with EventSource. Events are "
                    '`{"id", "topic", "kind", "data", "at"}`; after a drop the stream replays from '
                    "Last-Event-ID. The token expires after `expires_in` seconds: fetch another."
                ),
                "responses": {"200": _ok("LiveToken")},
            }
        },
        "/api/me": {
            "get": {
                "operationId": "getMe",
                "tags": ["meta"],
                "summary": "Who the token belongs to",
                "responses": {"200": _ok("Agent")},
            }
        },
        **_webhook_paths(),
        **_listing_paths(),
        "/api/openapi.json": {
            "get": {
                "operationId": "getOpenApiDocument",
                "tags": ["meta"],
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/api/reports/dashboard": {
            "get": {
                "operationId": "getReportsDashboard",
                "tags": ["reports"],
                "summary": "Every dashboard figure (volume, backlog, response and resolution times, cross-channel, "
                "CSAT) for a date range; supervisors and admins. Definitions: README, Reports",
                "parameters": [
                    _query("since", "First day, YYYY-MM-DD (UTC)"),
                    _query("until", "Last day, YYYY-MM-DD, inclusive (default today)"),
                    _query("preset", "7d, 30d, 90d or 180d back from today, instead of since/until"),
                    _query("channel", "Only conversations that started on this channel", _enum(Channel)),
                    _query(
                        "agent", "Only this agent's conversations (assignee, else first responder)", {"type": "integer"}
                    ),
                ],
                "responses": {"200": _ok("Dashboard")},
            }
        },
        "/api/audit": {
            "get": {
                "operationId": "listAuditRecords",
                "tags": ["audit"],
                "summary": "The audit trail, newest first; supervisors and admins",
                "parameters": [
                    _query("actor", "Agent id", {"type": "integer"}),
                    _query("action", "An action (customer.merge), or a family ending in a dot (customer.)"),
                    _query("customer", "Records about this customer id", {"type": "integer"}),
                    _query("since", "ISO 8601 date or time, inclusive"),
                    _query("until", "ISO 8601 time, exclusive; a date includes that whole day"),
                    _query("limit", "1-200", {"type": "integer"}),
                    _query("cursor", "From next_cursor"),
                ],
                "responses": {"200": _ok("AuditPage")},
            }
        },
    }
    schemas["Dashboard"] = {
        "type": "object",
        "description": "Durations in seconds; shares from 0 to 1; null where there is nothing to measure",
        "properties": {
            name: {"type": ["object", "array"]}
            for name in ("filters", "volume", "volume_weekly", "backlog", "first_response", "resolution",
                         "cross_channel", "csat")
        },
    }  # fmt: skip
    schemas["AuditPage"] = {
        "type": "object",
        "properties": {
            "entries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "at": {"type": "string", "format": "date-time"},
                        "actor": {"type": ["object", "null"]},
                        "action": {"type": "string"},
                        "target": {"type": "object"},
                        "details": {"type": "object"},
                    },
                },
            },
            "next_cursor": {"type": ["string", "null"]},
        },
    }
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
