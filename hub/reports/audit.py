"""The audit trail, readable: filters, keyset pages newest first, retention.

Records are written where the change happens (``hub.customers.audit``); this
module reads them. Actions in use: ``agent.login``, ``agent.login_failed``,
``agent.logout``, ``customer.view`` (API and console), ``customer.merge``,
``customer.unmerge``, ``identity.add``, ``identity.remove``,
``agent.create``, ``agent.password``, ``agent.deactivate``, ``agent.logout_everywhere``,
``conversation.assign``, ``conversation.status``, ``customer.erase``,
``search.export`` (see the README's audit section for who writes which).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from hub.db import affected
from hub.models import Agent, AuditRecord, utcnow


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class AuditQuery:
    actor_id: int | None = None
    #: An action ("customer.merge"), or a family of them ending in a dot ("customer.").
    action: str | None = None
    customer_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_id: int | None
    actor_name: str | None
    action: str
    target_type: str
    target_id: int
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None


def _encode(at: datetime, record_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), record_id]).encode()).decode()


def _decode(cursor: str) -> tuple[datetime, int]:
    try:
        at, record_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), int(record_id)
    except (ValueError, TypeError) as exc:
        raise BadCursor("not a cursor this API gave out") from exc


def audit_page(session: Session, query: AuditQuery) -> AuditPage:
    """One page of the audit trail, newest first; each filter uses an index that ends in (at, id)."""
    statement = (
        select(AuditRecord, Agent.name)
        .outerjoin(Agent, Agent.id == AuditRecord.actor_id)
        .order_by(AuditRecord.at.desc(), AuditRecord.id.desc())
        .limit(query.limit + 1)
    )
    if query.actor_id is not None:
        statement = statement.where(AuditRecord.actor_id == query.actor_id)
    if query.action:
        if query.action.endswith("."):
            statement = statement.where(AuditRecord.action.startswith(query.action, autoescape=True))
        else:
            statement = statement.where(AuditRecord.action == query.action)
    if query.customer_id is not None:
        statement = statement.where(AuditRecord.target_type == "customer", AuditRecord.target_id == query.customer_id)
    if query.since is not None:
        statement = statement.where(AuditRecord.at >= query.since)
    if query.until is not None:
        statement = statement.where(AuditRecord.at < query.until)
    if query.cursor:
        at, record_id = _decode(query.cursor)
        statement = statement.where(or_(AuditRecord.at < at, and_(AuditRecord.at == at, AuditRecord.id < record_id)))
    rows = session.execute(statement).all()
    entries = [
        AuditEntry(r.id, r.at, r.actor_id, name, r.action, r.target_type, r.target_id, dict(r.details or {}))
        for r, name in rows[: query.limit]
    ]
    next_cursor = _encode(entries[-1].at, entries[-1].id) if len(rows) > query.limit and entries else None
    return AuditPage(entries, next_cursor)


def purge(session: Session, retention_days: int, now: datetime | None = None) -> int:
    """Delete audit records older than ``retention_days`` (0 keeps everything); how many went."""
    if retention_days <= 0:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    return affected(session.execute(delete(AuditRecord).where(AuditRecord.at < cutoff)))
