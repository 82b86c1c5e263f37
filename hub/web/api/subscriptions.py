"""Outgoing webhook subscriptions (admins): create, change, pause/resume, remove, the delivery log, send test."""

from __future__ import annotations

import json
from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from hub.integrations import EVENT_TYPES, webhook_settings
from hub.integrations import subscriptions as service
from hub.integrations.delivery import send_test_now
from hub.models import WebhookDelivery, WebhookSubscription
from hub.runtime import current_runtime
from hub.web.access import requires
from hub.web.api.args import acting_agent_id, int_arg, json_body
from hub.web.api.blueprint import api
from hub.web.api.shapes import iso_time
from hub.web.errors import ApiError

DELIVERY_STATUSES = ("pending", "delivered", "failed")


def subscription_json(subscription: WebhookSubscription, *, secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": subscription.id,
        "url": subscription.url,
        "description": subscription.description,
        "events": list(subscription.event_types),
        "status": subscription.status,
        "paused_reason": subscription.paused_reason,
        "paused_at": iso_time(subscription.paused_at),
        "consecutive_failures": subscription.consecutive_failures,
        "created_at": iso_time(subscription.created_at),
    }
    if secret:
        body["secret"] = subscription.secret
    return body


def delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "subscription_id": delivery.subscription_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_code": delivery.response_code,
        "latency_ms": delivery.latency_ms,
        "last_error": delivery.last_error,
        "last_attempt_at": iso_time(delivery.last_attempt_at),
        "next_attempt_at": iso_time(delivery.next_attempt_at),
        "created_at": iso_time(delivery.created_at),
        "delivered_at": iso_time(delivery.delivered_at),
        "body": json.loads(delivery.body),
    }


def _invalid(exc: service.InvalidSubscription) -> ApiError:
    return ApiError(400, exc.field, exc.message)


@api.get("/subscriptions")
@requires("webhooks.manage")
def list_subscriptions() -> ResponseReturnValue:
    with current_runtime().database.read() as session:
        found = service.list_subscriptions(session)
        return jsonify({"subscriptions": [subscription_json(s) for s in found], "event_types": EVENT_TYPES})


@api.post("/subscriptions")
@requires("webhooks.manage")
def create_subscription() -> ResponseReturnValue:
    """A new subscription; the answer carries its signing secret (also readable later by admins)."""
    data = json_body()
    runtime = current_runtime()
    with runtime.database.write() as session:
        try:
            subscription = service.create_subscription(
                session, webhook_settings(runtime.settings), url=data.get("url"), events=data.get("events"),
                description=data.get("description", ""), actor_id=acting_agent_id(),
            )  # fmt: skip
        except service.InvalidSubscription as exc:
            raise _invalid(exc) from None
        return jsonify(subscription_json(subscription, secret=True)), 201


@api.get("/subscriptions/<int:subscription_id>")
@requires("webhooks.manage")
def get_subscription(subscription_id: int) -> ResponseReturnValue:
    with current_runtime().database.read() as session:
        return jsonify(subscription_json(service.get_subscription(session, subscription_id), secret=True))


@api.patch("/subscriptions/<int:subscription_id>")
@requires("webhooks.manage")
def update_subscription(subscription_id: int) -> ResponseReturnValue:
    """Change url, events, description; ``status`` "paused" pauses, "active" resumes (what waited is sent)."""
    data = json_body()
    runtime = current_runtime()
    with runtime.database.write() as session:
        try:
            subscription = service.update_subscription(
                session, webhook_settings(runtime.settings), subscription_id, data, actor_id=acting_agent_id()
            )
        except service.InvalidSubscription as exc:
            raise _invalid(exc) from None
        return jsonify(subscription_json(subscription))


@api.delete("/subscriptions/<int:subscription_id>")
@requires("webhooks.manage")
def delete_subscription(subscription_id: int) -> ResponseReturnValue:
    with current_runtime().database.write() as session:
        service.remove_subscription(session, subscription_id, actor_id=acting_agent_id())
    return "", 204


@api.get("/subscriptions/<int:subscription_id>/deliveries")
@requires("webhooks.manage")
def list_deliveries(subscription_id: int) -> ResponseReturnValue:
    """The delivery log, newest first: status, attempts, response code, latency, next retry."""
    status = request.args.get("status")
    if status and status not in DELIVERY_STATUSES:
        raise ApiError(400, "status", f"must be one of {', '.join(DELIVERY_STATUSES)}")
    raw_cursor = request.args.get("cursor")
    if raw_cursor is not None and not raw_cursor.isdigit():
        raise ApiError(400, "cursor", "not a cursor this server issued")
    with current_runtime().database.read() as session:
        page = service.delivery_log(
            session, subscription_id, status=status, limit=int_arg("limit", 50, 1, 200),
            before=int(raw_cursor) if raw_cursor else None,
        )  # fmt: skip
        return jsonify({"deliveries": [delivery_json(d) for d in page.deliveries], "next_cursor": page.next_cursor})


@api.post("/subscriptions/<int:subscription_id>/test")
@requires("webhooks.manage")
def send_test(subscription_id: int) -> ResponseReturnValue:
    """Send a ``webhook.test`` event now (even while paused) and answer with the logged attempt."""
    runtime = current_runtime()
    delivery_id = send_test_now(runtime.database, webhook_settings(runtime.settings), subscription_id)
    with runtime.database.read() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        return jsonify(delivery_json(delivery)), 200
