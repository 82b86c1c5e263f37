"""Canned responses in the console: the team's reply snippets, listed, added, changed and deleted by any agent.

Inserting one happens in the reply box (``console.js``: ``/shortcut`` then
Tab, or the list beside it); the conversation page renders each snippet for
its customer and agent (``hub.canned.render``), so the browser only inserts text.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError

from hub import canned
from hub.console.views import pages
from hub.conversations import ActionError
from hub.runtime import current_runtime
from hub.web.access import requires
from hub.web.api.args import acting_agent_id


@pages.get("/canned")
@requires("replies.send", page=True)
def canned_page() -> ResponseReturnValue:
    with current_runtime().database.read() as db:
        return render_template(
            "canned.html", snippets=canned.list_canned(db), placeholders=canned.PLACEHOLDERS, form=request.args
        )


@pages.post("/canned")
@requires("replies.send", page=True)
def save_canned() -> ResponseReturnValue:
    """Add a snippet, or change one (``id`` in the form)."""
    form = request.form
    raw_id = form.get("id", "")
    fields = {"shortcut": form.get("shortcut", ""), "title": form.get("title", ""), "text": form.get("text", "")}
    try:
        with current_runtime().database.write() as db:
            if raw_id.isascii() and raw_id.isdigit():
                canned.update_canned(db, int(raw_id), **fields, actor_id=acting_agent_id())
            else:
                canned.create_canned(db, **fields, actor_id=acting_agent_id())
    except (ActionError, IntegrityError) as exc:
        if isinstance(exc, ActionError):
            flash(f"Not saved: {exc.field} {exc.message}.", "error")
        else:  # the same shortcut saved at the same moment elsewhere
            flash(f"Not saved: /{fields['shortcut']} was just taken by another snippet.", "error")
        # Back to the form with what was typed, so nothing is lost.
        back = url_for("pages.canned_page", id=raw_id, shortcut=fields["shortcut"], title=fields["title"],
                       text=fields["text"])  # fmt: skip
        return redirect(back + (f"#edit-{raw_id}" if raw_id else ""))
    flash(f"Snippet /{fields['shortcut'].strip().lstrip('/').lower()} saved.", "ok")
    return redirect(url_for("pages.canned_page"))


@pages.post("/canned/<int:canned_id>/delete")
@requires("replies.send", page=True)
def delete_canned(canned_id: int) -> ResponseReturnValue:
    try:
        with current_runtime().database.write() as db:
            canned.delete_canned(db, canned_id, actor_id=acting_agent_id())
    except ActionError:
        flash("That snippet does not exist (any more).", "info")
    else:
        flash("Snippet deleted.", "ok")
    return redirect(url_for("pages.canned_page"))
