"""Every operation of /api, by path: what it takes, what it answers."""

from __future__ import annotations

from typing import Any

from hub.events import Channel, IdentityKind
from hub.web.api.openapi.blocks import (
    EVENT_EXAMPLE,
    _body,
    _enum,
    _error,
    _id_param,
    _ok,
    _query,
    _ref,
    _search_parameters,
)
from hub.web.api.openapi.integrations import _listing_paths, _webhook_paths
from hub.web.api.search import EXPORT_COLUMNS


def paths() -> dict[str, Any]:
    """Every path and its operations; the error answers are added by ``_complete``."""
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
                "images in an interaction's html point to. A recording or MMS file still at the provider is "
                "fetched with the account's credentials and kept",
                "parameters": [_id_param("attachment_id")],
                "responses": {
                    "200": {"description": "The bytes", "content": {"application/octet-stream": {}}},
                    "404": _error("No such attachment; or deleted at the provider, or no connector fetches it"),
                    "502": _error("The provider refused the credentials, failed or did not answer in time"),
                },
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
        "/api/canned-responses": {
            "get": {
                "operationId": "listCannedResponses",
                "tags": ["inbox"],
                "summary": "The team's reply snippets; with conversation_id, each also rendered for it",
                "parameters": [
                    _query(
                        "conversation_id",
                        "Fill each snippet's placeholders for this conversation and the caller",
                        {"type": "integer"},
                    ),
                ],
                "responses": {"200": _ok("CannedResponseList")},
            },
            "post": {
                "operationId": "createCannedResponse",
                "tags": ["inbox"],
                "summary": "A new snippet; placeholders are checked against the known ones",
                "requestBody": _body(
                    _ref("CannedResponseInput"),
                    {
                        "shortcut": "shipped",
                        "title": "Replacement shipped",
                        "text": "Hi {{customer.first_name}}, the replacement left today. {{agent.first_name}}",
                    },
                ),
                "responses": {"201": _ok("CannedResponse", "Saved"), "409": _error("The shortcut is taken")},
            },
        },
        "/api/canned-responses/{canned_id}": {
            "patch": {
                "operationId": "updateCannedResponse",
                "tags": ["inbox"],
                "summary": "Change a snippet's shortcut, title or text",
                "parameters": [_id_param("canned_id")],
                "requestBody": _body(_ref("CannedResponseChange"), {"title": "Thanks for your patience"}),
                "responses": {"200": _ok("CannedResponse"), "409": _error("The shortcut is taken")},
            },
            "delete": {
                "operationId": "deleteCannedResponse",
                "tags": ["inbox"],
                "summary": "Delete a snippet",
                "parameters": [_id_param("canned_id")],
                "responses": {"204": {"description": "Deleted"}},
            },
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
        "/api/conversations/{conversation_id}/chat/typing": {
            "post": {
                "operationId": "postChatTyping",
                "tags": ["chat"],
                "summary": "Tell the conversation's chat visitors that an agent is typing",
                "parameters": [_id_param("conversation_id")],
                "responses": {"200": {"description": "How many visitors' widgets were told"}},
            }
        },
        "/api/conversations/{conversation_id}/chat/read": {
            "post": {
                "operationId": "postChatRead",
                "tags": ["chat"],
                "summary": "Tell the conversation's chat visitors that their messages were read",
                "parameters": [_id_param("conversation_id")],
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["interaction_id"],
                        "properties": {"interaction_id": {"type": "integer", "description": "Read up to here"}},
                    },
                    {"interaction_id": 1},
                ),
                "responses": {"200": {"description": "How many visitors' widgets were told"}},
            }
        },
        "/api/search": {
            "get": {
                "operationId": "searchInteractions",
                "tags": ["search"],
                "summary": "Full-text search over every interaction, with facets",
                "description": (
                    'Words, "phrases" and prefix* on every backend; every term is required and nothing typed is '
                    "a syntax error. A phone number matches however it is typed ('030 2312 5042', '+49 30 2312' "
                    "for the start of numbers) and an email address whole, by its beginning ('maria.keller@') or "
                    "by its domain ('@example.com'): on a search engine (elasticsearch, opensearch) the addresses "
                    "and numbers of the interactions, on SQLite and PostgreSQL full text the customer identities "
                    "they name. Engine pages continue past 10,000 hits (search_after). Facets (facets=1) are "
                    "counted by the engine, or by the database. While the engine is unavailable the database answers "
                    "(marked by fallback): everything on PostgreSQL, phone numbers and addresses only on SQLite "
                    "(503 for words)."
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
    return paths
