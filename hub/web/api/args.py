"""Reading a request: the JSON body, query arguments, the acting agent; errors name the argument."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import request

from hub.storable import Unstorable, check_storable
from hub.web.access import current_agent
from hub.web.errors import MAX_ID, ApiError


def json_body() -> dict[str, Any]:
    """The request's JSON object, every string in it storable on both databases.

    A NUL or a lone surrogate (from a ``\\u`` escape), or nesting deeper than
    anything Corridor takes, is a 400 naming the field.
    """
    if not request.is_json:
        raise ApiError(415, "body", "send Content-Type: application/json")
    try:
        data = json.loads(request.get_data(cache=True))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "body", "is not valid JSON") from None
    except RecursionError:
        raise ApiError(400, "body", "is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body", "must be a JSON object")
    try:
        check_storable(data, "")
    except Unstorable as exc:
        raise ApiError(400, exc.field or "body", exc.message) from None
    return data


def id_value(value: Any, field: str, what: str = "an id") -> int:
    """An id from a JSON body: a whole number a database key can hold, else 400 naming ``field``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise ApiError(400, field, f"must be {what}")
    return value


def int_arg(name: str, default: int, low: int, high: int, args: Mapping[str, str] | None = None) -> int:
    if args is not None:
        raw = args.get(name) or ""
        if not raw:
            return default
        if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
            raise ApiError(400, name, f"must be a whole number between {low} and {high}")
        return int(raw)
    return int(_number_arg(name, default, low, high, int, "a whole number"))


def float_arg(name: str, default: float, low: float, high: float) -> float:
    return _number_arg(name, default, low, high, float, "a number")


def _number_arg(name: str, default: float, low: float, high: float, parse: Callable[[str], float], what: str) -> float:
    # Most requests carry no query string; building request.args to find
    # that out was ~5 % of an event's time in the web process. (A name could
    # hide only behind percent-escapes.)
    query = request.query_string
    if name.encode() not in query and b"%" not in query:
        return default
    args = request.args
    # MultiDict.get finds a missing key by raising and catching an HTTP
    # exception: a measurable share of a webhook's budget.
    if name not in args:
        return default
    raw = args[name]
    try:
        value = parse(raw)
    except ValueError:
        raise ApiError(400, name, f"must be {what}, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, name, f"must be between {low:g} and {high:g}")
    return value


def time_arg(name: str, args: Mapping[str, str] | None = None) -> datetime | None:
    """An ISO 8601 time from the query (or ``args``), in UTC; a time without a zone is UTC."""
    raw = (request.args if args is None else args).get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, name, f"is not an ISO 8601 date or time: {raw!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC moment
        raise ApiError(400, name, f"is outside the range of dates Corridor stores: {raw!r}") from None


def acting_agent_id() -> int | None:
    agent = current_agent()
    return agent.id if agent else None
