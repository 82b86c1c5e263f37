"""What integrators use: outgoing webhook subscriptions, their deliveries, and the listing endpoints."""

from __future__ import annotations

from typing import Any

from hub.events import Channel
from hub.integrations import EVENT_TYPES
from hub.models import JournalStatus
from hub.web.api.openapi.blocks import (
    WEBHOOK_EXAMPLE,
    _enum,
    _id_param,
    _ok,
    _query,
    _ref,
)


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
