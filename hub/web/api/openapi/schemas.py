"""The schemas of every resource the API takes and gives."""

from __future__ import annotations

from typing import Any

from hub.canned import PLACEHOLDERS
from hub.events import Channel, DeliveryStatus, Direction, IdentityKind, InteractionKind
from hub.models import JournalStatus
from hub.web.api.openapi.blocks import (
    _enum,
    _ref,
)
from hub.web.api.openapi.integrations import _listing_schemas, _webhook_schemas


def schemas() -> dict[str, Any]:
    """Every schema, by name (components/schemas)."""
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
                "fallback": {
                    "type": "object",
                    "description": "Only when the search engine failed and the database answered instead",
                    "properties": {
                        "reason": {"type": "string", "enum": ["engine-failed", "circuit-open"]},
                        "problem": {"type": "string", "description": "What the engine said when it last failed"},
                        "backend": {
                            "type": "string",
                            "enum": ["postgres", "identities"],
                            "description": "postgres: full text; identities: phone numbers and addresses only",
                        },
                        "order": {"type": "string", "enum": ["newest", "relevance"]},
                        "retry_in_seconds": {"type": "number"},
                    },
                },
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
                "to": {
                    "type": "string",
                    "description": "Default: the conversation's customer (never a participant who wrote in it). "
                    "Another of the customer's addresses, or a participant's, to send there instead",
                },
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
    canned_fields = {
        "shortcut": {"type": "string", "pattern": "^/?[a-z0-9][a-z0-9_-]{0,39}$", "description": "typed as /shortcut"},
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "text": {"type": "string", "minLength": 1, "maxLength": 10000,
                 "description": "Placeholders: " + ", ".join("{{" + p + "}}" for p in PLACEHOLDERS)},
    }  # fmt: skip
    schemas["CannedResponseInput"] = {
        "type": "object", "required": ["shortcut", "title", "text"], "additionalProperties": False,
        "properties": canned_fields,
    }  # fmt: skip
    schemas["CannedResponseChange"] = {"type": "object", "additionalProperties": False, "properties": canned_fields}
    schemas["CannedResponse"] = {
        "type": "object",
        "required": ["id", "shortcut", "title", "text", "updated_at"],
        "properties": {
            "id": {"type": "integer"},
            **canned_fields,
            "updated_at": {"type": "string", "format": "date-time"},
            "rendered": {"type": "string", "description": "with conversation_id: the text as it would be inserted"},
        },
    }
    schemas["CannedResponseList"] = {
        "type": "object",
        "required": ["canned_responses"],
        "properties": {"canned_responses": {"type": "array", "items": _ref("CannedResponse")}},
    }
    schemas.update(_webhook_schemas())
    schemas.update(_listing_schemas())
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
    return schemas
