"""Live updates: a stream token for the logged-in agent (the stream itself is ``corridor live``)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from hub.live import AGENTS, position
from hub.live.server import STREAM_PATH
from hub.live.tokens import issue_stream_token
from hub.runtime import Runtime, current_runtime
from hub.web.access import current_agent, requires
from hub.web.api.blueprint import api


def stream_url(runtime: Runtime) -> str:
    """Where this request's browser reaches the stream server ([live] public_url, else beside the page)."""
    configured = runtime.hub.live.public_url
    if configured:
        return configured
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return f"{request.scheme}://{host}:{runtime.hub.live.port}{STREAM_PATH}"


@api.get("/live/token")
@requires("customers.read")
def live_token() -> ResponseReturnValue:
    """A short-lived token for the console's stream of topic ``agents``, and where to open it."""
    runtime = current_runtime()
    agent = current_agent()
    assert agent is not None
    token = issue_stream_token(
        runtime.secret_key,
        subject=f"agent:{agent.id}",
        topics=[AGENTS],
        # The page asking may read the stream it is given, whatever origin it is served from.
        origins=[request.host_url.rstrip("/")],
    )
    with runtime.database.read() as session:
        current = position(session)
    return jsonify(
        {
            "token": token,
            "url": stream_url(runtime),
            "topics": [AGENTS],
            "position": current,
            "expires_in": runtime.hub.live.token_ttl_seconds,
        }
    )
