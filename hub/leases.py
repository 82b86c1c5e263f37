"""Leases: one owner at a time for work that any of several processes could do.

A mailbox folder must be read by one worker at a time, whichever of the
``corridor worker`` processes on one database that is. Its intake takes the
folder's lease (a ``lease`` row: owner, expires_at), renews it well before it
expires while it works, and gives it up when it stops. A worker that dies
(kill -9, a lost machine) stops renewing; once ``expires_at`` has passed,
another worker's attempt takes the lease over, so the folder is read again
within one lease period.

A lease alone cannot stop a paused owner (a long GC pause, a network
partition) from writing after it lapsed, so the owner also checks it holds
the lease in the transaction that commits its work (:func:`holds_lease`,
which locks the row on PostgreSQL): a successor's take-over and a stale
owner's commit are serialised, and the stale one rolls back.

Times are the processes' clocks: keep machines NTP-synchronised; a skew of a
few seconds only shortens or lengthens a take-over by as much.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db import Database, affected
from hub.models import Lease, utcnow


class LeaseLost(RuntimeError):
    """This process no longer holds a lease it was working under."""


def new_owner() -> str:
    """A name for one holder: host, process id and a random part (a restarted process is someone else)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def take_lease(database: Database, name: str, owner: str, period: timedelta) -> bool:
    """Take, renew or take over the lease ``name`` for ``period``; whether ``owner`` holds it now.

    Renews it when ``owner`` holds it, takes it over when its holder let it
    lapse, and takes it when nobody ever held it. False: someone else holds it.
    """
    now = utcnow()
    with database.write() as session:
        renewed = affected(
            session.execute(
                update(Lease)
                .where(Lease.name == name, or_(Lease.owner == owner, Lease.expires_at < now))
                .values(owner=owner, expires_at=now + period)
            )
        )
        if renewed:
            return True
        try:
            # A savepoint: a concurrent first taker makes this insert fail
            # without ending the transaction.
            with session.begin_nested():
                session.add(Lease(name=name, owner=owner, expires_at=now + period))
        except IntegrityError:
            return False
        return True


def holds_lease(session: Session, name: str, owner: str) -> bool:
    """Whether ``owner`` holds ``name`` unexpired, in the caller's transaction.

    Locks the row on PostgreSQL until the transaction ends, so nobody takes it
    over between this check and the caller's commit (on SQLite the write
    lock the transaction holds does the same).
    """
    query = select(Lease.owner, Lease.expires_at).where(Lease.name == name)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    row = session.execute(query).one_or_none()
    return row is not None and row.owner == owner and row.expires_at > utcnow()


def release_lease(database: Database, name: str, owner: str) -> None:
    """Give the lease up at once (a clean stop), so another process need not wait for it to lapse."""
    with database.write() as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))


def lease_holder(database: Database, name: str) -> str | None:
    """Who holds ``name`` now, if anyone (for status output and tests)."""
    with database.read() as session:
        row = session.execute(select(Lease.owner, Lease.expires_at).where(Lease.name == name)).one_or_none()
    return row.owner if row is not None and row.expires_at > utcnow() else None
