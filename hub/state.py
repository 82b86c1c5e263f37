"""Connector state: cursors saved in the same transaction as the data they cover.

A mailbox folder's "last UID seen" is saved with the interactions fetched up to
it, so a crash between the two cannot happen: either both commit or neither,
and the next pass resumes exactly where the committed data ends.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.models import ConnectorState, utcnow


def load_state(session: Session, connector: str, key: str) -> dict[str, Any] | None:
    """The state saved under ``(connector, key)``, or None."""
    value = session.scalar(
        select(ConnectorState.value).where(ConnectorState.connector == connector, ConnectorState.key == key)
    )
    return dict(value) if value is not None else None


def save_state(session: Session, connector: str, key: str, value: dict[str, Any]) -> None:
    """Save state in the caller's transaction (it commits with the data it describes)."""
    row = session.get(ConnectorState, (connector, key), with_for_update=session.get_bind().dialect.name != "sqlite")
    if row is None:
        session.add(ConnectorState(connector=connector, key=key, value=dict(value)))
    else:
        row.value = dict(value)
        row.updated_at = utcnow()
    session.flush()


def replace_state(session: Session, connector: str, key: str, expected: dict[str, Any], value: dict[str, Any]) -> bool:
    """Save ``value`` only if the state is still ``expected``; False (nothing written) if it is not.

    For work several processes may find due at once: the one whose replace
    succeeds does it, the others see the state changed and leave it. Atomic
    in the caller's write transaction: SQLite's is BEGIN IMMEDIATE (one writer
    at a time), and on PostgreSQL the row is locked until it ends.
    """
    row = session.get(
        ConnectorState,
        (connector, key),
        with_for_update=session.get_bind().dialect.name != "sqlite",
        populate_existing=True,
    )
    if row is None or dict(row.value) != expected:
        return False
    row.value = dict(value)
    row.updated_at = utcnow()
    session.flush()
    return True


def delete_state(session: Session, connector: str, key: str) -> None:
    """Forget what was saved under ``(connector, key)``, in the caller's transaction."""
    session.execute(delete(ConnectorState).where(ConnectorState.connector == connector, ConnectorState.key == key))


def all_state(session: Session, connector: str) -> dict[str, dict[str, Any]]:
    """Every key a connector has saved (for status pages and resyncs)."""
    rows = session.execute(
        select(ConnectorState.key, ConnectorState.value).where(ConnectorState.connector == connector)
    )
    return {key: dict(value) for key, value in rows}
