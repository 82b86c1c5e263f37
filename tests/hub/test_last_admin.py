"""The last console admin can be neither demoted nor deactivated, even by two admins at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from hub.auth import AgentChangeRefused, create_agent, set_active, set_role
from hub.models import Agent, Role
from hub.runtime import Runtime


def _admins(runtime: Runtime) -> tuple[int, int]:
    with runtime.database.write() as session:
        first, _ = create_agent(session, email="ada@corridor.example", name="Ada", role=Role.ADMIN, password="p" * 12)
        second, _ = create_agent(session, email="bo@corridor.example", name="Bo", role=Role.ADMIN, password="p" * 12)
        return first.id, second.id


def _active_admins(runtime: Runtime) -> int:
    with runtime.database.read() as session:
        return (
            session.scalar(
                select(func.count()).select_from(Agent).where(Agent.role == Role.ADMIN, Agent.active.is_(True))
            )
            or 0
        )


def test_the_only_admin_keeps_the_role_and_stays_active(runtime: Runtime) -> None:
    first, second = _admins(runtime)
    with runtime.database.write() as session:
        set_role(session, session.get(Agent, second), Role.AGENT, actor_id=first)
    with pytest.raises(AgentChangeRefused, match="only active admin"), runtime.database.write() as session:
        set_role(session, session.get(Agent, first), Role.SUPERVISOR, actor_id=first)
    with pytest.raises(AgentChangeRefused, match="only active admin"), runtime.database.write() as session:
        set_active(session, session.get(Agent, first), False, actor_id=first)
    assert _active_admins(runtime) == 1


def test_two_admins_demoting_each_other_at_once_leave_one_admin(runtime: Runtime) -> None:
    """The first change holds its transaction open after its check; the second starts then.

    Without a lock the second reads the first's target as still an admin (its
    change is not committed), passes its own check, and both commit: nobody
    is left to manage agents.
    """
    first, second = _admins(runtime)
    checked = threading.Event()
    outcomes: dict[str, str] = {}

    def demote(name: str, target: int, actor: int, wait: threading.Event | None) -> None:
        if wait is not None:
            wait.wait(10)
        try:
            with runtime.database.write() as session:
                set_role(session, session.get(Agent, target), Role.AGENT, actor_id=actor)
                if wait is None:
                    checked.set()
                    # Give the other change time to run its check while this one is open.
                    threading.Event().wait(0.5)
            outcomes[name] = "done"
        except AgentChangeRefused as refused:
            outcomes[name] = refused.message

    threads = [
        threading.Thread(target=demote, args=("ada demotes bo", second, first, None)),
        threading.Thread(target=demote, args=("bo demotes ada", first, second, checked)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert outcomes == {
        "ada demotes bo": "done",
        "bo demotes ada": "this is the only active admin; make another admin first",
    }
    assert _active_admins(runtime) == 1
