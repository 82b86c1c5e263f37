"""A customer's addresses and merges in the console: link and unlink an address, merge with a preview, undo.

The same services as the API (``hub.customers``): an address that belongs to
someone else is never moved by linking (that would join two people without
saying so); the page offers the merge instead, to those whose role allows it.
A merge is previewed first (what moves, counted) and can be undone exactly
from the message that confirms it.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.console.views import pages
from hub.customers import (
    Conflict,
    NotFound,
    add_identity,
    find_customers,
    merge,
    remove_identity,
    resolve,
    summary,
    unmerge,
)
from hub.events import IdentityKind
from hub.identity import InvalidAddress
from hub.models import Conversation, Identity, Interaction
from hub.runtime import current_runtime
from hub.web.access import requires
from hub.web.api.args import acting_agent_id

#: What an agent links by hand.
LINKABLE = {"email": IdentityKind.EMAIL, "phone": IdentityKind.PHONE}


def _back(customer_id: int) -> ResponseReturnValue:
    return redirect(url_for("pages.customer_page", customer_id=customer_id) + "#addresses")


@pages.post("/customers/<int:customer_id>/identities")
@requires("identities.edit", page=True)
def link_identity(customer_id: int) -> ResponseReturnValue:
    runtime = current_runtime()
    kind = LINKABLE.get(request.form.get("kind", ""))
    value = request.form.get("value", "").strip()
    if kind is None or not value:
        flash("Not linked: choose email or phone and type the address.", "error")
        return _back(customer_id)
    try:
        with runtime.database.write() as db:
            add_identity(
                db, customer_id, kind, value, actor_id=acting_agent_id(), default_region=runtime.pipeline.default_region
            )
    except InvalidAddress as exc:
        flash(f"Not linked: {exc}.", "error")
    except Conflict:
        with runtime.database.read() as db:
            owner = _owner(db, kind, value, runtime.pipeline.default_region)
        if owner is not None:
            flash(f"Not linked: {value} is customer {owner}'s. If they are one person, merge them.", "error")
            return redirect(url_for("pages.merge_preview", customer_id=customer_id, source=owner))
        flash(f"Not linked: {value} belongs to another customer.", "error")
    else:
        flash(f"Linked {value}.", "ok")
    return _back(customer_id)


def _owner(db: Session, kind: IdentityKind, value: str, region: str) -> int | None:
    """The customer an address belongs to, as the customer directory reads it."""
    try:
        email, phone = (value, None) if kind is IdentityKind.EMAIL else (None, value)
        found = find_customers(db, email=email, phone=phone, default_region=region, limit=1)
    except (InvalidAddress, ValueError):
        return None
    return found[0].id if found else None


@pages.post("/customers/<int:customer_id>/identities/<int:identity_id>/delete")
@requires("identities.edit", page=True)
def unlink_identity(customer_id: int, identity_id: int) -> ResponseReturnValue:
    try:
        with current_runtime().database.write() as db:
            remove_identity(db, customer_id, identity_id, actor_id=acting_agent_id())
    except NotFound:
        flash("That address is not linked to this customer (any more).", "info")
    else:
        flash("Unlinked. Past interactions stay on the timeline.", "ok")
    return _back(customer_id)


@pages.get("/customers/<int:customer_id>/merge")
@requires("customers.merge", page=True)
def merge_preview(customer_id: int) -> ResponseReturnValue:
    """Which customer to merge into this one (by id, email or phone), and what would move."""
    runtime = current_runtime()
    raw = request.args.get("source", "").strip()
    with runtime.database.read() as db:
        target = summary(db, customer_id)
        source = None
        moves: dict[str, int] = {}
        error = None
        if raw:
            source_id = _source_id(db, raw, runtime.pipeline.default_region)
            if source_id is None:
                error = f"No customer matches {raw!r}: give their number, email address or phone."
            elif resolve(db, source_id).id == target.customer.id:
                error = "That is this customer already."
            else:
                source = summary(db, source_id)
                sid = source.customer.id
                moves = {
                    "addresses": db.scalar(select(func.count()).where(Identity.customer_id == sid)) or 0,
                    "conversations": db.scalar(select(func.count()).where(Conversation.customer_id == sid)) or 0,
                    "interactions": db.scalar(select(func.count()).where(Interaction.customer_id == sid)) or 0,
                }
        return render_template("merge.html", target=target, source=source, moves=moves, error=error, raw=raw), (
            400 if error else 200
        )


def _source_id(db: Session, raw: str, region: str) -> int | None:
    """The customer meant by a number, an email address or a phone number."""
    if raw.isascii() and raw.isdigit():
        try:
            return resolve(db, int(raw)).id
        except (NotFound, OverflowError):
            return None
    kind = IdentityKind.EMAIL if "@" in raw else IdentityKind.PHONE
    return _owner(db, kind, raw, region)


@pages.post("/customers/<int:customer_id>/merge")
@requires("customers.merge", page=True)
def merge_form(customer_id: int) -> ResponseReturnValue:
    raw = request.form.get("source_id", "")
    if not (raw.isascii() and raw.isdigit()):
        flash("Not merged: no customer chosen.", "error")
        return redirect(url_for("pages.merge_preview", customer_id=customer_id))
    try:
        with current_runtime().database.write() as db:
            record = merge(db, int(raw), customer_id, actor_id=acting_agent_id())
            merge_id, target_id = record.id, record.target_id
    except (Conflict, NotFound) as exc:
        flash(f"Not merged: {exc}.", "error")
        return redirect(url_for("pages.merge_preview", customer_id=customer_id, source=raw))
    flash(f"Merged customer {raw} into this one.", "ok")
    return redirect(url_for("pages.customer_page", customer_id=target_id, undo=merge_id))


@pages.post("/merges/<int:merge_id>/undo")
@requires("customers.merge", page=True)
def undo_merge_form(merge_id: int) -> ResponseReturnValue:
    try:
        with current_runtime().database.write() as db:
            record = unmerge(db, merge_id, actor_id=acting_agent_id())
            target_id = record.target_id
    except (Conflict, NotFound) as exc:
        flash(f"Not undone: {exc}.", "error")
        return redirect(url_for("pages.customer_list"))
    flash("Merge undone: both customers are as they were.", "ok")
    return redirect(url_for("pages.customer_page", customer_id=target_id))
