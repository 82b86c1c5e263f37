"""The OpenAPI 3.1 description of /api, served at /api/openapi.json.

Kept beside the views it describes; a test walks the app's URL map and fails
when an /api route is missing here, so the document cannot fall behind.
"""

from __future__ import annotations

from typing import Any

from hub.events import Channel, DeliveryStatus, Direction, IdentityKind, InteractionKind
from hub.integrations import EVENT_TYPES
from hub.models import JournalStatus


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_ERRORS = {
    "400": {
        "description": "Invalid input; the error names the field",
        "content": {"application/json": {"schema": _ref("Error")}},
    },
    "401": {"description": "No or unknown API token", "content": {"application/json": {"schema": _ref("Error")}}},
    "403": {"description": "Your role may not do this", "content": {"application/json": {"schema": _ref("Error")}}},
}


def _id_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


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
        "DeliveryLog": {
            "type": "object",
            "required": ["deliveries", "next_cursor"],
            "properties": {
                "deliveries": {"type": "array", "items": _ref("Delivery")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
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
                "responses": {"200": _ok("SubscriptionList"), **_ERRORS},
            },
            "post": {
                "operationId": "createWebhookSubscription",
                "tags": tags,
                "summary": "Subscribe a URL to event types (admins); the answer carries the signing secret",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SubscriptionInput")}},
                },
                "responses": {"201": _ok("Subscription", "Subscribed"), **_ERRORS},
            },
        },
        "/api/subscriptions/{subscription_id}": {
            "get": {
                "operationId": "getWebhookSubscription",
                "tags": tags,
                "summary": "One subscription, with its secret",
                "parameters": [sid],
                "responses": {"200": _ok("Subscription"), **_ERRORS},
            },
            "patch": {
                "operationId": "updateWebhookSubscription",
                "tags": tags,
                "summary": "Change url, events, description; pause or resume",
                "parameters": [sid],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SubscriptionChange")}},
                },
                "responses": {"200": _ok("Subscription"), **_ERRORS},
            },
            "delete": {
                "operationId": "deleteWebhookSubscription",
                "tags": tags,
                "summary": "Remove a subscription and its delivery log",
                "parameters": [sid],
                "responses": {"204": {"description": "Removed"}, **_ERRORS},
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
                "responses": {"200": _ok("DeliveryLog"), **_ERRORS},
            }
        },
        "/api/subscriptions/{subscription_id}/test": {
            "post": {
                "operationId": "sendWebhookTest",
                "tags": tags,
                "summary": "Send a webhook.test event now (also while paused); answers with the logged attempt",
                "parameters": [sid],
                "responses": {"200": _ok("Delivery", "Attempted; status says whether it was acknowledged"), **_ERRORS},
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
                "responses": {"200": _ok("ConversationList"), **_ERRORS},
            }
        },
        "/api/interactions": {
            "get": {
                "operationId": "findInteractionByExternalId",
                "tags": ["interactions"],
                "summary": "The interaction a provider knows by its id (MessageSid, CallSid, Message-ID): 0 or 1",
                "parameters": [
                    {**_query("channel", "The channel", _enum(Channel)), "required": True},
                    {**_query("external_id", "The provider's id, exactly"), "required": True},
                ],
                "responses": {"200": _ok("InteractionList"), **_ERRORS},
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
                "responses": {"200": _ok("JournalList"), **_ERRORS},
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
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "integer"},
                        "field": {"type": ["string", "null"], "description": "The field at fault"},
                        "message": {"type": "string"},
                    },
                }
            },
        },
        "Party": party,
        "LiveToken": {
            "type": "object",
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
            "properties": {
                "id": {"type": "integer"},
                "display_name": {"type": "string"},
                "identities": {"type": "array", "items": _ref("Identity")},
                "conversations": {"type": "array", "items": _ref("Conversation")},
                "interaction_count": {"type": "integer"},
            },
        },
        "CustomerList": {"type": "object", "properties": {"customers": {"type": "array", "items": _ref("Customer")}}},
        "Identity": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "kind": _enum(IdentityKind),
                "value": {"type": "string"},
                "raw_value": {"type": "string"},
            },
        },
        "Conversation": {
            "type": "object",
            "properties": {
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
            "properties": {
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
            "properties": {
                "customer_id": {"type": "integer"},
                "interactions": {"type": "array", "items": _ref("Interaction")},
                "next_cursor": {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page"},
            },
        },
        "Merge": {
            "type": "object",
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
            },
        },
        "Reply": {
            "type": "object",
            "required": ["channel", "text"],
            "properties": {"channel": _enum(Channel), "text": {"type": "string"}, "subject": {"type": "string"}},
        },
        "ReplyResult": {
            "type": "object",
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
                "summary": "Push one event from any system onto a customer's timeline",
                "description": (
                    "Validated and journaled, then answered 202: the event is durable and appears on the "
                    "timeline once the journal processor has taken it (GET /api/journal/{journal_id}, also "
                    "in the Location header). With wait=<seconds> the answer waits for processing instead, while "
                    "fewer than [journal] max_waiting requests are waiting already (else 202 at once)."
                ),
                "parameters": [
                    _query("wait", "Seconds (0-30) to wait for processing; 0 answers at once", {"type": "number"})
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ChannelEvent")}}},
                "responses": {
                    "202": _ok("IngestResult", "Journaled; processing follows (or, after wait, failed or deferred)"),
                    "201": _ok("IngestResult", "Created (with wait)"),
                    "200": _ok("IngestResult", "Already there: a duplicate (with wait)"),
                    "413": {"description": "Body too large"},
                    "415": {"description": "Not JSON"},
                    **_ERRORS,
                },
            }
        },
        "/api/health": {
            "get": {
                "summary": "Health for monitoring (no token): journal backlog and failures; degraded when "
                "received events wait over a minute for the journal processor",
                "security": [],
                "responses": {"200": {"description": "status ok or degraded, with journal counts"}},
            }
        },
        "/api/journal/{entry_id}": {
            "get": {
                "summary": "What became of a journaled event: received, processed, duplicate, deferred or failed",
                "parameters": [_id_param("entry_id")],
                "responses": {"200": _ok("IngestResult"), **_ERRORS},
            }
        },
        "/api/customers": {
            "get": {
                "summary": "Find customers by email, phone or name",
                "parameters": [
                    _query("email", "Exact address, any case"),
                    _query("phone", "Any format; E.164 best"),
                    _query("name", "Name prefix"),
                    _query("limit", "1-100", {"type": "integer"}),
                ],
                "responses": {"200": _ok("CustomerList"), **_ERRORS},
            }
        },
        "/api/customers/{customer_id}": {
            "get": {
                "summary": "A customer with identities and conversations (merged ids redirect)",
                "parameters": [cid],
                "responses": {"200": _ok("Customer"), "404": {"description": "No such customer"}, **_ERRORS},
            }
        },
        "/api/customers/{customer_id}/timeline": {
            "get": {
                "summary": "The customer's interactions on every channel, newest first",
                "parameters": [
                    cid,
                    _query("limit", "1-200", {"type": "integer"}),
                    _query("cursor", "From next_cursor"),
                ],
                "responses": {"200": _ok("Timeline"), **_ERRORS},
            }
        },
        "/api/customers/{customer_id}/identities": {
            "post": {
                "summary": "Link an address (email, phone...) to the customer",
                "parameters": [cid],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["kind", "value"],
                                "properties": {"kind": _enum(IdentityKind), "value": {"type": "string"}},
                            }
                        }
                    }
                },
                "responses": {
                    "201": _ok("Identity", "Linked"),
                    "409": {"description": "Belongs to another customer"},
                    **_ERRORS,
                },
            }
        },
        "/api/customers/{customer_id}/identities/{identity_id}": {
            "delete": {
                "summary": "Unlink an address; past interactions stay",
                "parameters": [cid, _id_param("identity_id")],
                "responses": {"204": {"description": "Unlinked"}, **_ERRORS},
            }
        },
        "/api/customers/{customer_id}/merge": {
            "post": {
                "summary": "Merge customer source_id into this one (supervisors)",
                "parameters": [cid],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["source_id"],
                                "properties": {"source_id": {"type": "integer"}},
                            }
                        }
                    }
                },
                "responses": {"200": _ok("Merge"), "409": {"description": "Cannot merge these"}, **_ERRORS},
            }
        },
        "/api/merges/{merge_id}/undo": {
            "post": {
                "summary": "Undo a merge: exactly what moved goes back",
                "parameters": [_id_param("merge_id")],
                "responses": {"200": _ok("Merge"), **_ERRORS},
            }
        },
        "/api/conversations/{conversation_id}": {
            "get": {
                "summary": "A conversation and its interactions, oldest first",
                "parameters": [_id_param("conversation_id")],
                "responses": {"200": _ok("Conversation"), **_ERRORS},
            }
        },
        "/api/conversations/{conversation_id}/replies": {
            "post": {
                "summary": "Reply to the customer on a channel; sent after it is stored",
                "parameters": [_id_param("conversation_id")],
                "requestBody": {"content": {"application/json": {"schema": _ref("Reply")}}},
                "responses": {
                    "201": _ok("ReplyResult", "Sent"),
                    "202": _ok("ReplyResult", "Queued; will retry"),
                    "422": _ok("ReplyResult", "The provider refused it; recorded on the interaction"),
                    **_ERRORS,
                },
            }
        },
        "/api/search": {
            "get": {
                "summary": "Full-text search over every interaction",
                "parameters": [
                    _query("q", 'Words, "phrases", prefix*'),
                    _query("channel", "Repeat or comma-separate"),
                    _query("direction", "inbound, outbound, internal"),
                    _query("since", "ISO 8601"),
                    _query("until", "ISO 8601"),
                    _query("customer", "Customer id", {"type": "integer"}),
                    _query(
                        "order",
                        "newest (default) or relevance; on SQLite a word in more than 1,000 interactions is "
                        "ranked among its newest 1,000 matches",
                    ),
                    _query("limit", "1-100", {"type": "integer"}),
                    _query("cursor", "From next_cursor"),
                ],
                "responses": {"200": _ok("SearchResults"), **_ERRORS},
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
                "responses": {"200": _ok("LiveToken"), **_ERRORS},
            }
        },
        "/api/me": {
            "get": {
                "summary": "Who the token belongs to",
                "responses": {"200": {"description": "The agent"}, **_ERRORS},
            }
        },
        **_webhook_paths(),
        **_listing_paths(),
        "/api/openapi.json": {
            "get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI"}}}
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Corridor API",
            "version": "1",
            "description": "One timeline per customer across email, phone, SMS, WhatsApp and chat.",
        },
        "servers": [{"url": "/"}],
        "security": [{"token": []}],
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "`corridor user create` prints one"}
            },
            "schemas": schemas,
        },
        "paths": paths,
    }
