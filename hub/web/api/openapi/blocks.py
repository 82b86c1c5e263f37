"""The building blocks of the OpenAPI document: references, answers, parameters, the shared examples."""

from __future__ import annotations

from typing import Any

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
        {**_query("q", 'Words, "phrases", prefix*, phone numbers and email addresses as typed'), "example": "order"},
        _query("channel", "Repeat or comma-separate"),
        _query("direction", "inbound, outbound, internal"),
        _query("since", "ISO 8601"),
        _query("until", "ISO 8601"),
        _query("customer", "Customer id", {"type": "integer"}),
        _query("kind", "message, call, voicemail, note...; repeat or comma-separate"),
        _query("status", "Delivery or call status, or none; repeat or comma-separate"),
        _query("agent", "Id of the agent who wrote it; repeat or comma-separate"),
    ]


def _body(schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body with its example (the contract test sends it)."""
    return {"required": True, "content": {"application/json": {"schema": schema, "example": example}}}
