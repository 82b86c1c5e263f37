"""Who is asking: API tokens for machines and scripts, a login for people.

Every view declares the permission it needs with ``@requires(...)``; the role
table lives in :mod:`hub.auth`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import abort, g, redirect, request, session, url_for

from hub.auth import AgentView, agent_for_token, allowed
from hub.customers import audit
from hub.models import Agent
from hub.runtime import current_runtime

F = TypeVar("F", bound=Callable[..., Any])


def current_agent() -> AgentView | None:
    if "agent" in g:
        return cast(AgentView | None, g.agent)
    agent: AgentView | None = None
    runtime = current_runtime()
    # From the WSGI environ: request.headers would build a header view
    # for this one lookup, on every API call and webhook.
    header = request.environ.get("HTTP_AUTHORIZATION", "")
    # RFC 9110: the scheme is case-insensitive ("bearer", "BEARER").
    scheme, _, credentials = header.partition(" ")
    if header and scheme.lower() == "bearer":
        token = credentials.strip()

        def load() -> AgentView | None:
            with runtime.database.read() as db:
                found = agent_for_token(db, token)
                return AgentView.of(found) if found is not None else None

        agent = runtime.tokens.get(token, load)
    elif session.get("agent_id"):
        agent = _session_agent(runtime.hub.auth.session_idle_minutes)
    g.agent = agent
    return agent


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None: where a login may send an agent back to.

    Browsers drop tabs and newlines from URLs and read a backslash as a
    slash, so ``/\t/evil.example/`` and ``/\\evil.example`` are other sites;
    any control character, backslash, scheme or host is refused, and so is a
    path that starts with two slashes after that.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return target


def start_session(agent: Agent) -> None:
    """Log ``agent`` in on this browser: a new cookie, in the agent's current session epoch."""
    session.clear()
    session["agent_id"] = agent.id
    session["role"] = agent.role
    session["epoch"] = agent.session_epoch
    session["seen"] = int(time.time())


def _session_agent(idle_minutes: int) -> AgentView | None:
    """The agent of this login cookie, while it is neither revoked nor idle too long.

    A cookie is signed, not stored: it is revoked by raising the agent's
    session epoch (logout, ``corridor user logout``, a new password), and it
    lapses ``[auth] session_idle_minutes`` after its last request.
    """
    now = int(time.time())
    seen = session.get("seen")
    if not isinstance(seen, int) or now - seen > idle_minutes * 60:
        session.clear()
        return None
    with current_runtime().database.read() as db:
        found = db.get(Agent, session["agent_id"])
        if (
            found is None
            or not found.active
            or session.get("role") != found.role
            or session.get("epoch") != found.session_epoch
        ):
            session.clear()
            return None
        if now - seen >= 60:  # a new cookie at most once a minute, not on every request
            session["seen"] = now
        return AgentView.of(found)


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


def record_view(customer_id: int, via: str, **details: Any) -> None:
    """Who looked at which customer, for the audit trail (its own short write: the view itself only reads)."""
    agent = current_agent()
    with current_runtime().database.write() as session:
        audit(session, agent.id if agent else None, "customer.view", "customer", customer_id, via=via, **details)
