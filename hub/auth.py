"""Agents, their roles, passwords and API tokens.

API tokens are random 32-byte strings shown once; only their SHA-256 is
stored, so a leaked database does not leak working tokens. (A slow hash buys
nothing for 256 bits of randomness and would cost every API request.)
Passwords use werkzeug's salted PBKDF2/scrypt.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from hub.customers import audit
from hub.identity import normalise_email
from hub.models import Agent, LoginThrottle, Role, utcnow

# A fixed prefix lets secret scanners recognise a leaked Corridor token.
TOKEN_PREFIX = "cor_"  # noqa: S105

#: What each role may do. Roles include the ones before them.
PERMISSIONS: dict[str, Role] = {
    "customers.read": Role.AGENT,
    "events.write": Role.AGENT,
    "identities.edit": Role.AGENT,
    "replies.send": Role.AGENT,
    "search": Role.AGENT,
    "customers.merge": Role.SUPERVISOR,
    "customers.erase": Role.ADMIN,
    "search.export": Role.SUPERVISOR,
    "reports.read": Role.SUPERVISOR,
    "audit.read": Role.SUPERVISOR,
    "journal.read": Role.ADMIN,
    "agents.manage": Role.ADMIN,
    "webhooks.manage": Role.ADMIN,
}
_ORDER = [Role.AGENT, Role.SUPERVISOR, Role.ADMIN]
#: A role's place in _ORDER, by the role and by its stored value.
_RANK: dict[str, int] = {role.value: rank for rank, role in enumerate(_ORDER)}


@dataclass(frozen=True, slots=True)
class AgentView:
    """Who is making a request: an immutable snapshot, safe to share between threads."""

    id: int
    email: str
    name: str
    role: str
    active: bool

    @classmethod
    def of(cls, agent: Agent) -> AgentView:
        return cls(agent.id, agent.email, agent.name, agent.role, agent.active)


class TokenCache:
    """API tokens recently seen, so a busy integration does not cost a query per request.

    Entries live ``ttl`` seconds: a revoked token or a changed role takes
    effect within that time in every process, without cross-process signals.
    """

    def __init__(self, ttl: float = 10.0, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[float, AgentView | None]] = {}
        self._lock = threading.Lock()

    def get(self, token: str, load: Callable[[], AgentView | None]) -> AgentView | None:
        key = hash_token(token)
        now = time.monotonic()
        # Read without the lock (one dict lookup is atomic): every API request
        # comes here, and server threads must not queue on a lock to read.
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        agent = load()
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()  # crude, but bounded; a refill is one query per token
            self._entries[key] = (now + self.ttl, agent)
        return agent

    def forget(self) -> None:
        """Drop every entry: after a change to an agent, this process sees it at once (others within ``ttl``)."""
        with self._lock:
            self._entries.clear()


#: A console says it is open this often (console.js); a mark within it is not written again.
SEEN_EVERY = timedelta(seconds=30)
_seen_marked: dict[int, float] = {}


def mark_seen(session: Session, agent_id: int, now: datetime | None = None) -> bool:
    """Record that ``agent_id`` has a console open; written at most every SEEN_EVERY per process."""
    clock = time.monotonic()
    last = _seen_marked.get(agent_id)
    if last is not None and clock - last < SEEN_EVERY.total_seconds():
        return False
    _seen_marked[agent_id] = clock
    found = session.get(Agent, agent_id)
    if found is None:
        return False
    found.last_seen_at = now or utcnow()
    return True


def agents_online(session: Session, within: timedelta, now: datetime | None = None) -> int:
    """Active agents whose console said it was open within ``within``."""
    since = (now or utcnow()) - within
    count = session.scalar(
        select(func.count()).select_from(Agent).where(Agent.active.is_(True), Agent.last_seen_at >= since)
    )
    return int(count or 0)


def allowed(agent: Agent | AgentView, permission: str) -> bool:
    needed = PERMISSIONS[permission]
    return agent.active and _RANK[agent.role] >= _RANK[needed]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(agent: Agent) -> str:
    """A new API token for ``agent``, replacing the old one. Shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    agent.api_token_hash = hash_token(token)
    return token


def agent_for_token(session: Session, token: str) -> Agent | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    agent = session.scalar(select(Agent).where(Agent.api_token_hash == hash_token(token)))
    return agent if agent is not None and agent.active else None


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How many failed logins ([auth] login_max_failures) within ``window`` block further attempts for ``window``."""

    max_failures: int
    window: timedelta


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """An agent who logged in, or what to tell the person at the form."""

    agent: Agent | None
    message: str = ""
    #: True when attempts are refused for a while, whatever the password.
    throttled: bool = False


def _throttle_keys(email: str, address: str | None) -> list[str]:
    # Hashed: the table must hold no addresses (of agents or of clients)
    # in the clear, and keys stay short whatever was typed.
    try:
        account = normalise_email(email)
    except ValueError:
        account = email.strip().casefold()
    keys = ["account:" + hashlib.sha256(account.encode()).hexdigest()]
    if address:
        keys.append("address:" + hashlib.sha256(address.encode()).hexdigest())
    return keys


def attempt_login(
    session: Session, email: str, password: str, address: str | None, policy: LoginPolicy, *, logs_in: bool = True
) -> LoginOutcome:
    """Check a login, counting failures per account and per client address.

    ``logs_in=False`` checks a password again for someone logged in already
    (before changing it): throttled and its failures audited the same, but a
    success is no ``agent.login`` in the audit trail, since nobody logged in.

    After ``policy.max_failures`` failures within the window, for the
    account or from the address, every attempt is refused for the window,
    even with the right password: guessing costs an attacker the window per
    few tries, and the form says so plainly. A success clears the account's
    count.
    """
    now = utcnow()
    keys = _throttle_keys(email, address)
    rows = {row.key: row for row in session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))}
    blocked = [row.blocked_until for row in rows.values() if row.blocked_until is not None and row.blocked_until > now]
    if blocked:
        minutes = max(1, math.ceil((max(blocked) - now).total_seconds() / 60))
        # Not audited: refused unchecked, and anyone knowing an address could fill the trail with them.
        return LoginOutcome(
            None,
            f"Too many failed logins for this account or from this address. Try again in {minutes} minute"
            + ("s." if minutes != 1 else "."),
            throttled=True,
        )
    agent = agent_for_login(session, email, password)
    if agent is not None:
        session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))
        if logs_in:
            audit(session, agent.id, "agent.login", "agent", agent.id, address=address)
            agent.last_seen_at = utcnow()
        return LoginOutcome(agent)
    tripped = False
    for key in keys:
        row = rows.get(key)
        if row is None:
            try:
                with session.begin_nested():
                    session.add(LoginThrottle(key=key, failures=1, first_failure_at=now))
                continue
            except IntegrityError:  # a concurrent failure counted it first
                row = session.get(LoginThrottle, key)
                if row is None:
                    continue
        if row.first_failure_at < now - policy.window:
            row.failures, row.first_failure_at, row.blocked_until = 1, now, None
        else:
            row.failures += 1
        if row.failures >= policy.max_failures:
            row.blocked_until = now + policy.window
            tripped = True
    session.flush()
    _audit_failure(session, email, address, blocked=tripped)
    return LoginOutcome(None, "Unknown email or wrong password.")


def _audit_failure(session: Session, email: str, address: str | None, *, blocked: bool) -> None:
    """A wrong password for an existing account, in the audit trail (not the text typed: it may be a password).

    ``blocked``: this failure made the throttle refuse further attempts.
    Failures for addresses that are no account, and attempts the throttle
    refused unchecked, are counted by the throttle only: recording them
    would let anyone fill the audit trail.
    """
    try:
        known = session.scalar(select(Agent.id).where(Agent.email == normalise_email(email)))
    except ValueError:
        return
    if known is not None:
        audit(session, None, "agent.login_failed", "agent", known, address=address, blocked=blocked)


def end_sessions(agent: Agent) -> None:
    """Every login cookie of ``agent`` stops working (logout, log out everywhere, a new password)."""
    agent.session_epoch = (agent.session_epoch or 0) + 1


def set_password(session: Session, agent: Agent, password: str, *, actor_id: int | None = None) -> None:
    """A new console password; the agent's sessions end with the old one."""
    agent.password_hash = generate_password_hash(password)
    end_sessions(agent)
    session.flush()
    audit(session, actor_id, "agent.password", "agent", agent.id)


#: The shortest console password Corridor takes.
MIN_PASSWORD = 8


class AgentChangeRefused(ValueError):
    """A change to an agent that would do harm (lock every admin out), or bad input; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AgentChangeRefused("password", f"needs at least {MIN_PASSWORD} characters")


def _last_admin(session: Session, agent: Agent) -> bool:
    """Whether ``agent`` is the only active admin: nobody could manage agents without them."""
    if agent.role != Role.ADMIN or not agent.active:
        return False
    # The console admins' rows are locked (PostgreSQL; SQLite's writers take
    # turns anyway) until the change commits: two admins demoting each other
    # at the same moment would otherwise each count the other and both
    # succeed. The second waits, then reads the first's change. Ids, not a
    # count: FOR UPDATE cannot lock an aggregate's rows.
    admins = session.scalars(
        select(Agent.id)
        .where(Agent.role == Role.ADMIN, Agent.active.is_(True), Agent.password_hash != "")
        .order_by(Agent.id)
        .with_for_update()
    ).all()
    # Other admins who can log in to the console: an API-only admin cannot manage agents there.
    return not [admin for admin in admins if admin != agent.id]


def set_role(session: Session, agent: Agent, role: Role, *, actor_id: int | None) -> None:
    """A new role; it applies from the agent's next request (tokens within the token cache's few seconds)."""
    if role == agent.role:
        return
    if _last_admin(session, agent):
        raise AgentChangeRefused("role", "this is the only active admin; make another admin first")
    before = agent.role
    agent.role = role
    session.flush()
    audit(session, actor_id, "agent.role", "agent", agent.id, before=str(before), after=role.value)


def set_active(session: Session, agent: Agent, active: bool, *, actor_id: int | None) -> None:
    """Deactivate (sessions and API token stop working; history stays) or reactivate an agent."""
    if active == agent.active:
        return
    if not active and _last_admin(session, agent):
        raise AgentChangeRefused("active", "this is the only active admin; make another admin first")
    agent.active = active
    if not active:
        end_sessions(agent)
    session.flush()
    audit(session, actor_id, "agent.activate" if active else "agent.deactivate", "agent", agent.id)


def agent_for_login(session: Session, email: str, password: str) -> Agent | None:
    try:
        address = normalise_email(email)
    except ValueError:
        return None
    agent = session.scalar(select(Agent).where(Agent.email == address))
    if agent is None or not agent.active or not agent.password_hash:
        # Same work as a real check, so response time does not reveal who exists.
        check_password_hash(_DUMMY_HASH, password)
        return None
    return agent if check_password_hash(agent.password_hash, password) else None


_DUMMY_HASH = generate_password_hash("not a password")


def create_agent(
    session: Session,
    *,
    email: str,
    name: str,
    role: Role,
    password: str | None,
    actor_id: int | None = None,
) -> tuple[Agent, str]:
    """A new agent and their first API token."""
    address = normalise_email(email)
    if session.scalar(select(Agent.id).where(Agent.email == address)) is not None:
        raise ValueError(f"email: an agent with {address} exists already")
    agent = Agent(
        email=address,
        name=name or address,
        role=role,
        password_hash=generate_password_hash(password) if password else "",
    )
    token = issue_token(agent)
    session.add(agent)
    session.flush()
    audit(session, actor_id, "agent.create", "agent", agent.id, role=role.value)
    return agent, token
