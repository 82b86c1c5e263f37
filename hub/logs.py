"""Logs: plain text or one JSON object a line, and the request id that follows an event.

Every request gets an id: the caller's ``X-Request-Id`` when it sends a
sensible one (a proxy or load balancer that made one up), a new one
otherwise. It is in every log line the request writes, in the response's
``X-Request-Id``, and in the context of every journal entry the request
received (``hub.ingest.receiving``), so the worker's line about the batch
that put the entry on the timeline names it too: webhook -> journal entry ->
interaction (whose ``journal_id`` is that entry).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
from typing import Any

from flask import Flask, Response

#: The id of the request this thread (or task) is serving, if any.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("corridor_request_id", default=None)

#: What a caller's id may look like to be kept: short, no spaces or quotes.
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

#: LogRecord attributes that are not extra fields.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            line["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def use_json_logs() -> None:
    """Write every log line (the root logger's handlers) as JSON."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())


def register_request_ids(app: Flask) -> None:
    """Give each request an id (kept from ``X-Request-Id`` when sensible) and answer with it."""
    wsgi_app = app.wsgi_app

    def with_request_id(environ: dict[str, Any], start_response: Any) -> Any:
        given = environ.get("HTTP_X_REQUEST_ID")
        rid = given if given is not None and _GIVEN_ID.fullmatch(given) else secrets.token_hex(8)
        environ["corridor.request_id"] = rid
        token = request_id.set(rid)
        try:
            return wsgi_app(environ, start_response)
        finally:
            request_id.reset(token)

    app.wsgi_app = with_request_id  # type: ignore[method-assign]

    @app.after_request
    def answer_with_id(response: Response) -> Response:
        from flask import request

        response.headers["X-Request-Id"] = request.environ.get("corridor.request_id", "")
        return response
