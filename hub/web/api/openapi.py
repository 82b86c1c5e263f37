"""The OpenAPI 3.1 description of /api, served at /api/openapi.json.

Kept beside the views it describes; a test walks the app's URL map and fails
when an /api route is missing here, so the document cannot fall behind.
"""

from __future__ import annotations

from typing import Any

from hub.events import Channel, DeliveryStatus, Direction, IdentityKind, InteractionKind
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
        "/api/conversations/{conversation_id}/chat/typing": {
            "post": {
                "operationId": "postChatTyping",
                "tags": ["chat"],
                "summary": "Tell the conversation's chat visitors that an agent is typing",
                "parameters": [_id_param("conversation_id")],
                "responses": {"200": {"description": "How many visitors' widgets were told"}, **_ERRORS},
            }
        },
        "/api/conversations/{conversation_id}/chat/read": {
            "post": {
                "operationId": "postChatRead",
                "tags": ["chat"],
                "summary": "Tell the conversation's chat visitors that their messages were read",
                "parameters": [_id_param("conversation_id")],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["interaction_id"],
                                "properties": {"interaction_id": {"type": "integer", "description": "Read up to here"}},
                            }
                        }
                    }
                },
                "responses": {"200": {"description": "How many visitors' widgets were told"}, **_ERRORS},
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
