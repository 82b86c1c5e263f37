"""The console's pages: log in, the inbox, customers, one customer's whole story with the actions.

The timeline reads down newest first, with a band where one conversation ends
and the next begins, so an agent sees at a glance that the email, the call and
the chat were one story. Views are entry points: each opens one transaction,
calls a service (hub.conversations), and redirects back with a message. A
failed action changes nothing (the transaction rolls back) and says why.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import lxml.html
from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from hub import canned, conversations, live, replies
from hub.auth import AgentView, LoginPolicy, attempt_login, end_sessions, mark_seen
from hub.console.words import delivery_problem
from hub.customers import audit, like_pattern, summary, typed_phone
from hub.events import Channel
from hub.media import MediaUnavailable, attachment_problem, open_attachment
from hub.models import (
    Agent,
    AttachmentRecord,
    ConversationStatus,
    Customer,
    Identity,
    Interaction,
    utcnow,
)
from hub.runtime import current_runtime
from hub.timeline import cursor_showing, customer_timeline
from hub.web.access import current_agent, local_path, record_view, requires, start_session

pages = Blueprint("pages", __name__, template_folder="templates", static_folder="static")

PAGE_SIZE = 50


@pages.get("/")
def index() -> ResponseReturnValue:
    return redirect(url_for("pages.inbox_page"))


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
                return redirect(local_path(request.args.get("next")) or url_for("pages.inbox_page"))
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
                audit(db, agent.id, "agent.logout", "agent", agent.id, address=request.remote_addr)
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
        fragment = bool(request.args.get("fragment"))
        html = render_template(
            "_timeline.html" if fragment else "timeline.html",
            found=found,
            page=page,
            agent=current_agent(),
            cursor=request.args.get("cursor"),
            authors=_authors(db, page.interactions),
            problem=delivery_problem,
            position=live.position(db),
            # Just merged here: the undo is offered with the confirmation.
            undo=request.args.get("undo", type=int),
        )
    if not fragment and not request.args.get("cursor"):  # a look at the customer, not a live refresh or a page of it
        record_view(customer_id, "console.customer")
    return html


# -- the inbox -------------------------------------------------------------------------------------


@pages.get("/inbox")
@requires("customers.read", page=True)
def inbox_page() -> ResponseReturnValue:
    agent = current_agent()
    assert agent is not None
    args = request.args
    choice = {
        "status": args.get("status", "open"),
        "view": args.get("view", "all"),
        "order": args.get("order", "waiting"),
        "channel": args.get("channel", ""),
        "assignee": args.get("assignee", ""),
    }
    with current_runtime().database.read() as db:
        page = conversations.inbox(
            db,
            agent_id=agent.id,
            status=choice["status"],
            view=choice["view"],
            order=choice["order"],
            channel=choice["channel"] or None,
            assignee_id=int(choice["assignee"]) if choice["assignee"].isdigit() else None,
            cursor=args.get("cursor") or None,
            limit=PAGE_SIZE,
        )
        agents = db.execute(select(Agent.id, Agent.name).where(Agent.active.is_(True)).order_by(Agent.name)).all()
        template = "inbox_rows.html" if args.get("fragment") else "inbox.html"
        return render_template(
            template,
            page=page,
            choice=choice,
            agents=agents,
            channels=[c.value for c in Channel],
            now=utcnow(),
            position=live.position(db),
        )


# -- one conversation, in the customer's whole story ------------------------------------------------


@pages.get("/conversations/<int:conversation_id>")
@requires("customers.read", page=True)
def conversation_page(conversation_id: int) -> ResponseReturnValue:
    runtime = current_runtime()
    with runtime.database.read() as db:
        conversation = conversations.get_conversation(db, conversation_id)
        found = summary(db, conversation.customer_id)
        cursor = request.args.get("cursor")
        at = request.args.get("at", type=int)
        if at and not cursor:  # opened from a search hit: the page that shows it
            cursor = cursor_showing(db, found.customer.id, at, limit=PAGE_SIZE)
        page = customer_timeline(db, found.customer.id, limit=PAGE_SIZE, cursor=cursor)
        assignee = db.get(Agent, conversation.assignee_id) if conversation.assignee_id else None
        options = conversations.reply_channels(db, conversation, runtime.registry.senders)
        authors = _authors(db, page.interactions)
        me = current_agent()
        context = canned.Context(found.customer.display_name or "", me.name if me else "", conversation.subject or "")
        snippets = [(s.shortcut, s.title, canned.render(s.text, context)) for s in canned.list_canned(db)]
        # Someone else who wrote in (a colleague forwarding): the agent may answer them instead.
        participants = [
            r
            for c in options.available
            for r in replies.reply_recipients(db, conversation, c)
            if r.role == "participant"
        ]
        fragment = bool(request.args.get("fragment"))
        template = "conversation_live.html" if fragment else "conversation.html"
        html = render_template(
            template,
            conversation=conversation,
            found=found,
            page=page,
            assignee=assignee,
            options=options,
            authors=authors,
            elsewhere=[
                c for c in found.conversations if c.id != conversation.id and c.status != ConversationStatus.CLOSED
            ],
            problem=delivery_problem,
            position=live.position(db),
            cursor=cursor,
            at=at,
            snippets=snippets,
            participants=participants,
        )
    if not fragment and not request.args.get("cursor"):
        record_view(found.customer.id, "console.conversation", conversation_id=conversation_id)
    return html


def _authors(db: Session, interactions: list[Interaction]) -> dict[int, str]:
    ids = {i.author_id for i in interactions if i.author_id}
    if not ids:
        return {}
    names: dict[int, str] = {}
    for agent_id, name in db.execute(select(Agent.id, Agent.name).where(Agent.id.in_(ids))):
        names[agent_id] = name
    return names


def _back(conversation_id: int) -> ResponseReturnValue:
    return redirect(url_for("pages.conversation_page", conversation_id=conversation_id))


def _acting() -> AgentView:
    agent = current_agent()
    assert agent is not None
    return agent


@pages.post("/conversations/<int:conversation_id>/reply")
@requires("replies.send", page=True)
def reply_form(conversation_id: int) -> ResponseReturnValue:
    runtime = current_runtime()
    senders = runtime.registry.senders
    try:
        with runtime.database.write() as db:
            interaction_id = conversations.reply(
                db, senders, conversation_id, text=request.form.get("text", ""),
                channel=request.form.get("channel") or None, subject=request.form.get("subject") or None,
                author=_acting(), to=request.form.get("to") or None,
            )  # fmt: skip
    except conversations.ActionError as exc:
        flash(f"Not sent: {exc.message}.", "error")
        session["draft"] = request.form.get("text", "")
        return _back(conversation_id)
    outcome = replies.deliver(runtime.database, senders, interaction_id)
    if outcome is not None and outcome.status == "failed":
        channel = request.form.get("channel") or ""
        flash(f"Not delivered: {delivery_problem(channel, outcome.error_code, outcome.error_message)}.", "error")
    elif outcome is not None and outcome.will_retry:
        flash("Saved; the provider did not take it yet, Corridor will try again.", "info")
    else:
        flash("Reply sent.", "ok")
    return _back(conversation_id)


@pages.post("/conversations/<int:conversation_id>/note")
@requires("replies.send", page=True)
def note_form(conversation_id: int) -> ResponseReturnValue:
    try:
        with current_runtime().database.write() as db:
            conversations.add_note(db, conversation_id, text=request.form.get("text", ""), author=_acting())
    except conversations.ActionError as exc:
        flash(f"Note not saved: {exc.message}.", "error")
    else:
        flash("Note added.", "ok")
    return _back(conversation_id)


@pages.post("/conversations/<int:conversation_id>/assign")
@requires("replies.send", page=True)
def assign_form(conversation_id: int) -> ResponseReturnValue:
    agent = _acting()
    raw = request.form.get("assignee_id", "")
    assignee = agent.id if raw == "me" else int(raw) if raw.isdigit() else None
    try:
        with current_runtime().database.write() as db:
            conversations.assign(db, conversation_id, assignee, actor=agent)
    except conversations.ActionError as exc:
        flash(f"Not assigned: {exc.message}.", "error")
    else:
        flash("Assigned to you." if assignee == agent.id else "Assigned." if assignee else "Unassigned.", "ok")
    return _back(conversation_id)


@pages.post("/conversations/<int:conversation_id>/status")
@requires("replies.send", page=True)
def status_form(conversation_id: int) -> ResponseReturnValue:
    status = request.form.get("status", "")
    try:
        with current_runtime().database.write() as db:
            conversations.set_status(db, conversation_id, status, actor=_acting())
    except conversations.ActionError as exc:
        flash(f"Status not changed: {exc.message}.", "error")
    else:
        flash({"open": "Reopened.", "pending": "Marked pending.", "closed": "Closed."}.get(status, "Done."), "ok")
    return _back(conversation_id)


@pages.post("/console/seen")
@requires("customers.read", page=True)
def console_seen() -> ResponseReturnValue:
    """A console page is open (console.js, every minute while visible): the web chat counts the agent online."""
    with current_runtime().database.write() as db:
        mark_seen(db, _acting().id)
    return "", 204


# -- what a page embeds: email bodies, attachments, the screen pop -----------------------------------

_REMOTE = ("http:", "https:", "//")


@pages.get("/interactions/<int:interaction_id>/body")
@requires("customers.read", page=True)
def email_body(interaction_id: int) -> ResponseReturnValue:
    """An email's sanitised HTML as a document of its own, for a sandboxed frame.

    Remote images (tracking pixels among them) are removed unless the agent
    asked for them (``?images=1``), and the frame's own policy blocks them
    besides: a pixel never loads on its own.
    """
    images = request.args.get("images") == "1"
    with current_runtime().database.read() as db:
        interaction = db.get(Interaction, interaction_id)
        if interaction is None or not interaction.html:
            abort(404, description="this interaction has no formatted body")
        inline = {
            a.content_id.strip("<>"): a.id
            for a in db.scalars(select(AttachmentRecord).where(AttachmentRecord.interaction_id == interaction_id))
            if a.content_id
        }
        html = interaction.html
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for img in root.iter("img"):
        src = (img.get("src") or "").strip()
        if src.startswith("cid:") and src[4:].strip("<>") in inline:
            img.set("src", url_for("pages.attachment", attachment_id=inline[src[4:].strip("<>")]))
        elif src.lower().startswith(_REMOTE) and not images:
            img.attrib.pop("src")
            img.set("alt", f"[image blocked: {img.get('alt') or 'remote picture'}]")
    body = lxml.html.tostring(root, encoding="unicode")
    document = (
        '<!doctype html><html><head><meta charset="utf-8"><base target="_blank">'
        "<style>body{font:14px/1.5 system-ui,sans-serif;margin:10px;color:#172033;background:#fff;"
        "overflow-wrap:anywhere}img{max-width:100%;height:auto}</style></head>"
        f"<body>{body}</body></html>"
    )
    response = make_response(document)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    sources = "'self' data: https: http:" if images else "'self' data:"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; img-src {sources}; style-src 'unsafe-inline'; frame-ancestors 'self'; "
        "sandbox allow-popups allow-popups-to-escape-sandbox"
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "private, no-store"
    return response


#: Types a browser may show inline: they cannot run script in our origin.
_SAFE_INLINE = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "audio/mpeg", "audio/wav",
                "audio/x-wav", "audio/ogg"}  # fmt: skip


@pages.get("/attachments/<int:attachment_id>")
@requires("customers.read", page=True)
def attachment(attachment_id: int) -> ResponseReturnValue:
    """An attachment's bytes through Corridor: downloaded unless a safe image, PDF or recording.

    A recording or MMS picture still at the provider is fetched now (hub.media)
    and kept, so the next play is local; when it cannot be, the agent gets a
    page saying why (the player asks ``attachment_problem`` instead).
    """
    runtime = current_runtime()
    try:
        stored = open_attachment(runtime.database, runtime.registry.media_fetchers, attachment_id)
    except MediaUnavailable as exc:
        abort(exc.http_status, description=exc.message)
    if stored is None:
        abort(404, description="no such file")
    content_type = stored.content_type.split(";")[0].strip().lower()
    response = make_response(stored.content)
    safe = content_type in _SAFE_INLINE
    response.headers["Content-Type"] = content_type if safe else "application/octet-stream"
    disposition = "inline" if safe else "attachment"
    response.headers["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(stored.filename)}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@pages.get("/attachments/<int:attachment_id>/problem")
@requires("customers.read", page=True)
def attachment_problem_note(attachment_id: int) -> ResponseReturnValue:
    """Why a file could not be fetched, for a player that failed to load it (console.js); asks no provider."""
    return {"problem": attachment_problem(current_runtime().database, attachment_id)}


@pages.get("/console/pop/<int:interaction_id>")
@requires("customers.read", page=True)
def screen_pop(interaction_id: int) -> ResponseReturnValue:
    """The caller of a ringing call and their latest history, as a fragment for the pop-up."""
    with current_runtime().database.read() as db:
        call = db.get(Interaction, interaction_id)
        if call is None:
            abort(404, description="no such call")
        found = summary(db, call.customer_id)
        history = customer_timeline(db, found.customer.id, limit=4).interactions
        known = found.interaction_count > 1
        return render_template("screen_pop.html", call=call, found=found, history=history, known=known)
