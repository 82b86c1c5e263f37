"""Pages for people: log in, a customer list, a customer's timeline (read-only).

The timeline reads down newest first, with a band where one conversation ends
and the next begins, so an agent sees at a glance that the email, the call and
the chat were one story.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import ColumnElement, func, select

from hub.auth import LoginPolicy, attempt_login, end_sessions
from hub.customers import like_pattern, summary, typed_phone
from hub.models import Agent, Customer, Identity, Interaction
from hub.runtime import current_runtime
from hub.timeline import customer_timeline
from hub.web.access import current_agent, local_path, requires, start_session

pages = Blueprint("pages", __name__, template_folder="../templates", static_folder="../static")

PAGE_SIZE = 50


@pages.get("/")
def index() -> ResponseReturnValue:
    return redirect(url_for("pages.customer_list"))


@pages.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    error = None
    status = 200
    if request.method == "POST":
        runtime = current_runtime()
        policy = LoginPolicy(
            runtime.hub.auth.login_max_failures, timedelta(minutes=runtime.hub.auth.login_block_minutes)
        )
        with runtime.database.write() as db:
            outcome = attempt_login(
                db, request.form.get("email", ""), request.form.get("password", ""), request.remote_addr, policy
            )
            if outcome.agent is not None:
                start_session(outcome.agent)
                # Only local paths: an open redirect would let a phishing link
                # bounce an agent to another site after logging in.
                return redirect(local_path(request.args.get("next")) or url_for("pages.customer_list"))
        error, status = outcome.message, 429 if outcome.throttled else 401
    return render_template("login.html", error=error), status


@pages.post("/logout")
def logout() -> ResponseReturnValue:
    """Log out: this cookie, and every other of this agent's, stops working (a copy too)."""
    agent = current_agent()
    if agent is not None and session.get("agent_id") == agent.id:
        with current_runtime().database.write() as db:
            found = db.get(Agent, agent.id)
            if found is not None:
                end_sessions(found)
    session.clear()
    return redirect(url_for("pages.login"))


@pages.get("/customers")
@requires("customers.read", page=True)
def customer_list() -> ResponseReturnValue:
    q = request.args.get("q", "").strip()
    after = request.args.get("after", type=int)
    with current_runtime().database.read() as db:
        latest = (
            select(Interaction.customer_id, func.max(Interaction.occurred_at).label("last_at"))
            .group_by(Interaction.customer_id)
            .subquery()
        )
        query = (
            select(Customer, latest.c.last_at)
            .outerjoin(latest, latest.c.customer_id == Customer.id)
            .where(Customer.merged_into_id.is_(None))
            .order_by(Customer.id)
            .limit(PAGE_SIZE + 1)
        )
        if q:
            pattern = like_pattern(q.lower(), anywhere=True)
            identity_matches: ColumnElement[bool] = func.lower(Identity.value).like(pattern, escape="\\")
            # Phone identities are stored in E.164; a number typed the way
            # people write it ("030 2312 5042") is matched in that form too.
            phone = typed_phone(q, current_runtime().pipeline.default_region)
            if phone is not None:
                identity_matches = identity_matches | (Identity.value == phone)
            matching = select(Identity.customer_id).where(identity_matches)
            query = query.where(
                func.lower(Customer.display_name).like(pattern, escape="\\") | Customer.id.in_(matching)
            )
        if after:
            query = query.where(Customer.id > after)
        rows = db.execute(query).all()
        customers = rows[:PAGE_SIZE]
        identities: dict[int, list[Identity]] = {}
        for identity in db.scalars(
            select(Identity).where(Identity.customer_id.in_([c.id for c, _ in customers])).order_by(Identity.id)
        ):
            identities.setdefault(identity.customer_id, []).append(identity)
        next_after = customers[-1][0].id if len(rows) > PAGE_SIZE else None
        return render_template(
            "customers.html",
            customers=customers,
            identities=identities,
            q=q,
            next_after=next_after,
            agent=current_agent(),
        )


@pages.get("/customers/<int:customer_id>")
@requires("customers.read", page=True)
def customer_page(customer_id: int) -> ResponseReturnValue:
    with current_runtime().database.read() as db:
        found = summary(db, customer_id)
        if found.customer.id != customer_id:
            return redirect(url_for("pages.customer_page", customer_id=found.customer.id))
        page = customer_timeline(db, customer_id, limit=PAGE_SIZE, cursor=request.args.get("cursor"))
        return render_template(
            "timeline.html", found=found, page=page, agent=current_agent(), cursor=request.args.get("cursor")
        )
