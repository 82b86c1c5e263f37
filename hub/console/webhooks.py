"""Outgoing webhooks in the console (admins): subscribe a URL, choose its events, watch its delivery log.

The same service as ``/api/subscriptions`` and ``corridor webhook``
(``hub.integrations.subscriptions``): the checks (events, SSRF refusals) and
the audit records are the same whichever door an admin uses. A failed
action changes nothing and says why; a new subscription's signing secret is
shown on its page, where the receiver's developer copies it.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from hub.console.views import pages
from hub.customers import NotFound
from hub.integrations import EVENT_TYPES, webhook_settings
from hub.integrations import subscriptions as service
from hub.integrations.delivery import send_test_now
from hub.models import WebhookDelivery
from hub.runtime import current_runtime
from hub.web.access import requires
from hub.web.api.args import acting_agent_id

#: Deliveries a page of the log.
LOG_PAGE = 50


@pages.get("/admin/webhooks")
@requires("webhooks.manage", page=True)
def webhooks_page() -> ResponseReturnValue:
    with current_runtime().database.read() as db:
        subscriptions = service.list_subscriptions(db)
        waiting = service.pending_counts(db)
        return render_template(
            "webhooks.html", subscriptions=subscriptions, waiting=waiting, event_types=EVENT_TYPES,
            form=request.args,
        )  # fmt: skip


@pages.post("/admin/webhooks")
@requires("webhooks.manage", page=True)
def create_webhook() -> ResponseReturnValue:
    runtime = current_runtime()
    url = request.form.get("url", "").strip()
    events = request.form.getlist("events")
    description = request.form.get("description", "").strip()
    try:
        with runtime.database.write() as db:
            subscription = service.create_subscription(
                db, webhook_settings(runtime.settings), url=url, events=events, description=description,
                actor_id=acting_agent_id(),
            )  # fmt: skip
            created = subscription.id
    except service.InvalidSubscription as exc:
        flash(f"Not subscribed: {exc.field} {exc.message}.", "error")
        return redirect(url_for("pages.webhooks_page", url=url, description=description, events=events))
    flash("Subscribed. Copy the signing secret below into the receiver; send a test to check it.", "ok")
    return redirect(url_for("pages.webhook_page", subscription_id=created))


@pages.get("/admin/webhooks/<int:subscription_id>")
@requires("webhooks.manage", page=True)
def webhook_page(subscription_id: int) -> ResponseReturnValue:
    status = request.args.get("status") or None
    if status not in (None, "pending", "delivered", "failed"):
        status = None
    before = request.args.get("before", type=int)
    with current_runtime().database.read() as db:
        subscription = service.get_subscription(db, subscription_id)
        log = service.delivery_log(db, subscription_id, status=status, limit=LOG_PAGE, before=before)
        return render_template(
            "webhook.html", subscription=subscription, log=log, status=status, event_types=EVENT_TYPES,
            waiting=service.pending_counts(db).get(subscription_id, 0),
        )  # fmt: skip


@pages.post("/admin/webhooks/<int:subscription_id>")
@requires("webhooks.manage", page=True)
def update_webhook(subscription_id: int) -> ResponseReturnValue:
    """Change the URL, events and description, or pause / resume (``status``)."""
    runtime = current_runtime()
    form = request.form
    changes: dict[str, object] = {}
    if "status" in form:
        changes["status"] = form["status"]
    else:
        changes = {"url": form.get("url", "").strip(), "events": form.getlist("events"),
                   "description": form.get("description", "").strip()}  # fmt: skip
    try:
        with runtime.database.write() as db:
            service.update_subscription(
                db, webhook_settings(runtime.settings), subscription_id, changes, actor_id=acting_agent_id()
            )
    except service.InvalidSubscription as exc:
        flash(f"Not changed: {exc.field} {exc.message}.", "error")
    else:
        said = {"paused": "Paused: events are kept and wait for you to resume.",
                "active": "Resumed: what waited is being sent."}  # fmt: skip
        flash(said.get(str(changes.get("status")), "Saved."), "ok")
    return redirect(url_for("pages.webhook_page", subscription_id=subscription_id))


@pages.post("/admin/webhooks/<int:subscription_id>/test")
@requires("webhooks.manage", page=True)
def test_webhook(subscription_id: int) -> ResponseReturnValue:
    runtime = current_runtime()
    with runtime.database.read() as db:
        service.get_subscription(db, subscription_id)  # a 404 before anything is sent
    delivery_id = send_test_now(runtime.database, webhook_settings(runtime.settings), subscription_id)
    with runtime.database.read() as db:
        delivery = db.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        if delivery.status == "delivered":
            flash(f"Test delivered: the receiver answered {delivery.response_code} in {delivery.latency_ms} ms.", "ok")
        else:
            answer = f"answered {delivery.response_code}" if delivery.response_code else "did not answer"
            flash(f"Test not delivered: the receiver {answer} ({delivery.last_error or 'no detail'}).", "error")
    return redirect(url_for("pages.webhook_page", subscription_id=subscription_id))


@pages.post("/admin/webhooks/<int:subscription_id>/delete")
@requires("webhooks.manage", page=True)
def delete_webhook(subscription_id: int) -> ResponseReturnValue:
    try:
        with current_runtime().database.write() as db:
            service.remove_subscription(db, subscription_id, actor_id=acting_agent_id())
    except NotFound:
        flash("That subscription does not exist (any more).", "info")
    else:
        flash("Unsubscribed; its delivery log is deleted with it.", "ok")
    return redirect(url_for("pages.webhooks_page"))
