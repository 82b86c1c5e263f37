"""Errors as the caller can act on them.

API errors are JSON: ``{"error": {"status": 400, "field": "from.address",
"message": "is required"}}``. Bad input is a 4xx naming the field, never a 500.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, IntegerConverter, Map

from hub.conversations import ActionError
from hub.customers import NotFound
from hub.identity import InvalidAddress
from hub.pagination import InvalidCursor
from hub.search import InvalidQuery
from hub.storable import problem

log = logging.getLogger(__name__)


#: The largest id a database key holds (a signed 64-bit integer). A larger
#: one in a path is a 404 and in a body a 400, never an overflow in the driver.
MAX_ID = 2**63 - 1


class IdConverter(IntegerConverter):
    """``<int:...>`` in every route: only ids a database key can hold match.

    Installed as the app's ``int`` converter, so no route can forget it.
    """

    def __init__(self, map: Map, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)  # type: ignore[arg-type]


CONVERTERS: dict[str, type[BaseConverter]] = {"int": IdConverter}

_FORM = "application/x-www-form-urlencoded"


def refuse_unstorable_arguments() -> None:
    """Before every request: a query argument or form field no database stores is a 400 naming it.

    Lookups (``?email=a%00b``, the console's ``?q=``) and the login form reach
    the database with what they are given; PostgreSQL fails on a NUL. (A URL
    cannot carry a lone surrogate: percent-decoding replaces bad UTF-8.)
    Webhooks are left to their connectors, which repair and keep what a
    provider sent (hub.storable).
    """
    if b"%00" in request.query_string:
        for name, value in request.args.items(multi=True):
            found = problem(name) or problem(value)
            if found is not None:
                raise ApiError(400, name, found)
    if request.mimetype == _FORM and not request.path.startswith("/webhooks/"):
        for name, value in request.form.items(multi=True):
            found = problem(name) or problem(value)
            if found is not None:
                raise ApiError(400, name, found)


class ApiError(Exception):
    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.status = status
        self.field = field
        self.message = message


_FIELD_FOR_STATUS = {413: "body", 415: "body"}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/webhooks/")


def _error(status: int, field: str | None, message: str) -> ResponseReturnValue:
    if _wants_json():
        return jsonify({"error": {"status": status, "field": field, "message": message}}), status
    return render_template("error.html", status=status, message=message), status


def register_error_handlers(app: Flask) -> None:
    app.before_request(refuse_unstorable_arguments)

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> ResponseReturnValue:
        return _error(exc.status, exc.field, exc.message)

    @app.errorhandler(ActionError)
    def action_error(exc: ActionError) -> ResponseReturnValue:
        return _error(exc.status, exc.field, exc.message)

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound) -> ResponseReturnValue:
        return _error(404, None, str(exc))

    @app.errorhandler(InvalidCursor)
    def bad_cursor(exc: InvalidCursor) -> ResponseReturnValue:
        return _error(400, "cursor", "not a cursor this server issued")

    @app.errorhandler(InvalidQuery)
    def bad_query(exc: InvalidQuery) -> ResponseReturnValue:
        return _error(400, "q", str(exc).removeprefix("q: "))

    @app.errorhandler(InvalidAddress)
    def bad_address(exc: InvalidAddress) -> ResponseReturnValue:
        return _error(400, "value", str(exc))

    @app.errorhandler(OverflowError)
    def too_large(exc: OverflowError) -> ResponseReturnValue:
        # SQLite's driver cannot bind an integer past 2**63 - 1; the id
        # converter and id_value() keep such ids out of paths and bodies,
        # and this answers for any query argument that still carries one.
        return _error(400, None, "a number in this request is larger than any id Corridor stores")

    @app.errorhandler(DataError)
    def out_of_range(exc: DataError) -> ResponseReturnValue:
        # The same on PostgreSQL: "bigint out of range" (SQLSTATE 22003).
        if getattr(getattr(exc.orig, "diag", None), "sqlstate", None) == "22003":
            return _error(400, None, "a number in this request is larger than any id Corridor stores")
        return unexpected(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = f"the body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        if status == 401:
            message = "log in, or send Authorization: Bearer <API token>"
        return _error(status, _FIELD_FOR_STATUS.get(status), message)

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError) -> ResponseReturnValue:
        # PostgreSQL restarting or unreachable, SQLite locked past its busy timeout: the
        # request may succeed if repeated, which a client can only know from a 503.
        log.error("database unavailable on %s %s: %s", request.method, request.path, exc.orig)
        message = "the database is unavailable; try again shortly"
        if _wants_json():
            return jsonify({"error": {"status": 503, "field": None, "message": message}}), 503, {"Retry-After": "5"}
        return render_template("error.html", status=503, message=message), 503, {"Retry-After": "5"}

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return _error(500, None, "an unexpected error occurred; it has been logged")
