"""The API describing itself (/api/openapi.json) and the caller (/api/me)."""

from __future__ import annotations

from flask import abort, jsonify
from flask.typing import ResponseReturnValue

from hub.web.access import current_agent, requires
from hub.web.api.blueprint import api
from hub.web.api.openapi import openapi_document


@api.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document())


@api.get("/me")
@requires("customers.read")
def me() -> ResponseReturnValue:
    agent = current_agent()
    if agent is None:
        abort(401)
    return jsonify({"id": agent.id, "email": agent.email, "name": agent.name, "role": agent.role})
