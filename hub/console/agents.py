"""Agents in the console: admins add, change the role of, deactivate, reactivate and reset agents; everyone
changes their own password.

The same services as ``corridor user`` (``hub.auth``), with the same audit
records. The one active admin cannot be demoted or deactivated: nobody could
manage agents after that. A new agent's API token is shown once, on the
page that answers the form (never in a flash message, which travels in the
cookie).
"""

from __future__ import annotations

from datetime import timedelta

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from hub.auth import (
    AgentChangeRefused,
    LoginPolicy,
    attempt_login,
    check_new_password,
    create_agent,
    end_sessions,
    set_active,
    set_password,
    set_role,
)
from hub.console.views import pages
from hub.customers import audit
from hub.models import Agent, Role
from hub.runtime import current_runtime
from hub.web.access import current_agent, requires, start_session
from hub.web.api.args import acting_agent_id


def _agents_page(status: int = 200, **extra: object) -> ResponseReturnValue:
    with current_runtime().database.read() as db:
        agents = list(db.scalars(select(Agent).order_by(Agent.active.desc(), Agent.name)))
        return render_template("agents.html", agents=agents, roles=[r.value for r in Role], **extra), status


@pages.get("/admin/agents")
@requires("agents.manage", page=True)
def agents_page() -> ResponseReturnValue:
    return _agents_page()


@pages.post("/admin/agents")
@requires("agents.manage", page=True)
def create_agent_form() -> ResponseReturnValue:
    form = request.form
    password = form.get("password", "")
    try:
        if password:
            check_new_password(password)
        role = Role(form.get("role", Role.AGENT.value))
        if len(form.get("name", "").strip()) > 200:
            raise AgentChangeRefused("name", "must be at most 200 characters")
        with current_runtime().database.write() as db:
            agent, token = create_agent(
                db, email=form.get("email", ""), name=form.get("name", "").strip(), role=role,
                password=password or None, actor_id=acting_agent_id(),
            )  # fmt: skip
            created = {"name": agent.name, "email": agent.email, "token": token}
    except (AgentChangeRefused, ValueError) as exc:
        message = exc.message if isinstance(exc, AgentChangeRefused) else str(exc).partition(": ")[2] or str(exc)
        return _agents_page(400, error=f"Not added: {message}.", form=form)
    return _agents_page(201, created=created)


@pages.post("/admin/agents/<int:agent_id>")
@requires("agents.manage", page=True)
def change_agent(agent_id: int) -> ResponseReturnValue:
    """One change per form: ``role``, ``active``, ``password`` (a reset) or ``logout`` (every session ends)."""
    form = request.form
    try:
        with current_runtime().database.write() as db:
            agent = db.get(Agent, agent_id)
            if agent is None:
                flash("That agent does not exist.", "error")
                return redirect(url_for("pages.agents_page"))
            name = agent.name
            if "role" in form:
                set_role(db, agent, Role(form["role"]), actor_id=acting_agent_id())
                said = f"{name} is now {form['role']}."
            elif "active" in form:
                set_active(db, agent, form["active"] == "1", actor_id=acting_agent_id())
                said = f"{name} can work again." if agent.active else f"{name} is deactivated: logged out, token off."
            elif "password" in form:
                check_new_password(form["password"])
                set_password(db, agent, form["password"], actor_id=acting_agent_id())
                said = f"New password set for {name}; their sessions have ended. Tell them in person, not by email."
            elif "logout" in form:
                end_sessions(agent)
                audit(db, acting_agent_id(), "agent.logout_everywhere", "agent", agent.id)
                said = f"{name} is logged out everywhere."
            else:
                said = "Nothing to change."
    except AgentChangeRefused as exc:
        flash(f"Not changed: {exc.message}.", "error")
    except ValueError:
        flash("Not changed: unknown role.", "error")
    else:
        current_runtime().tokens.forget()
        flash(said, "ok")
    return redirect(url_for("pages.agents_page") + f"#agent-{agent_id}")


@pages.route("/account", methods=["GET", "POST"])
@requires("customers.read", page=True)
def account_page() -> ResponseReturnValue:
    """Change one's own password: the current one first; every other session ends, this one carries on."""
    me = current_agent()
    assert me is not None
    if request.method == "GET":
        return render_template("account.html")
    form = request.form
    with current_runtime().database.write() as db:
        agent = db.get(Agent, me.id)
        assert agent is not None
        # Through the login's throttle: a stolen cookie must not be a way to guess the password at leisure.
        runtime = current_runtime()
        policy = LoginPolicy(
            runtime.hub.auth.login_max_failures, timedelta(minutes=runtime.hub.auth.login_block_minutes)
        )
        checked = attempt_login(db, agent.email, form.get("current", ""), request.remote_addr, policy, logs_in=False)
        if checked.agent is None or checked.agent.id != agent.id:
            said = checked.message if checked.throttled else "the current password is wrong."
            return render_template("account.html", error=f"Not changed: {said}"), 429 if checked.throttled else 400
        if form.get("password", "") != form.get("repeat", ""):
            return render_template("account.html", error="Not changed: the two new passwords differ."), 400
        try:
            check_new_password(form.get("password", ""))
        except AgentChangeRefused as exc:
            return render_template("account.html", error=f"Not changed: the new password {exc.message}."), 400
        set_password(db, agent, form["password"], actor_id=agent.id)
        start_session(agent)  # the new epoch: this browser stays logged in, every other one is out
    flash("Password changed; you are logged out everywhere else.", "ok")
    return redirect(url_for("pages.account_page"))
