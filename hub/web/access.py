"""Who is asking: API tokens for machines and scripts, a login for people.

Every view declares the permission it needs with ``@requires(...)``; the role
table lives in :mod:`hub.auth`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, g, redirect, request, session, url_for

from hub.auth import agent_for_token, allowed
from hub.models import Agent
from hub.runtime import current_runtime

F = TypeVar("F", bound=Callable[..., Any])


def current_agent() -> Agent | None:
    if "agent" in g:
        return cast(Agent | None, g.agent)
    agent = None
    runtime = current_runtime()
    header = request.headers.get("Authorization", "")
    with runtime.database.read() as db:
        if header.startswith("Bearer "):
            agent = agent_for_token(db, header[len("Bearer ") :].strip())
        elif session.get("agent_id"):
            agent = db.get(Agent, session["agent_id"])
            if agent is not None and (not agent.active or session.get("role") != agent.role):
                agent = None
        if agent is not None:
            db.expunge(agent)
    g.agent = agent
    return agent


def requires(permission: str, *, page: bool = False) -> Callable[[F], F]:
    """Only agents whose role grants ``permission``; 401 without login, 403 without the role."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            agent = current_agent()
            if agent is None:
                if page:
                    return redirect(url_for("pages.login", next=request.full_path))
                abort(401)
            if not allowed(agent, permission):
                abort(403, description=f"your role ({agent.role}) may not do this ({permission})")
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate
