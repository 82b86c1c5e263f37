"""``corridor webhook``: subscriptions from the command line (add, list, deliveries, test, pause, resume, remove)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from hub.integrations import EVENT_TYPES, webhook_settings
from hub.integrations import subscriptions as service
from hub.integrations.delivery import send_test_now
from hub.models import WebhookDelivery
from hub.runtime import current_runtime


@click.group("webhook")
def webhook() -> None:
    """Outgoing webhooks: subscribe URLs to Corridor's events (`corridor worker` delivers them)."""


def _fail(exc: service.InvalidSubscription) -> click.ClickException:
    return click.ClickException(f"{exc.field} {exc.message}")


@webhook.command("add")
@click.argument("url")
@click.option(
    "--event", "events", multiple=True, required=True, type=click.Choice(sorted(EVENT_TYPES)),
    help="An event type to send (repeat for several).",
)  # fmt: skip
@click.option("--description", default="", help="What the receiver is, for the log.")
@with_appcontext
def add(url: str, events: tuple[str, ...], description: str) -> None:
    """Subscribe URL to events; prints the signing secret."""
    runtime = current_runtime()
    with runtime.database.write() as session:
        try:
            subscription = service.create_subscription(
                session, webhook_settings(runtime.settings), url=url, events=list(events),
                description=description, actor_id=None,
            )  # fmt: skip
        except service.InvalidSubscription as exc:
            raise _fail(exc) from None
    click.echo(f"subscription {subscription.id}: {subscription.url} <- {', '.join(subscription.event_types)}")
    click.echo(f"signing secret: {subscription.secret}")


@webhook.command("list")
@with_appcontext
def list_() -> None:
    """Every subscription, with its status."""
    with current_runtime().database.read() as session:
        found = service.list_subscriptions(session)
    if not found:
        click.echo("no subscriptions")
    for s in found:
        paused = f" ({s.paused_reason})" if s.paused_reason else ""
        click.echo(f"#{s.id} {s.status}{paused} {s.url} <- {', '.join(s.event_types)}")


@webhook.command("deliveries")
@click.argument("subscription_id", type=int)
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]), default=None)
@click.option("--limit", default=20, show_default=True)
@with_appcontext
def deliveries(subscription_id: int, status: str | None, limit: int) -> None:
    """A subscription's delivery log, newest first."""
    with current_runtime().database.read() as session:
        page = service.delivery_log(session, subscription_id, status=status, limit=limit, before=None)
    if not page.deliveries:
        click.echo("no deliveries")
    for d in page.deliveries:
        retry = ""
        if d.status == "pending" and not d.attempts:
            retry = " queued: waits its turn behind earlier events of its conversation"
        elif d.status == "pending" and d.next_attempt_at:
            retry = f" next {d.next_attempt_at:%H:%M:%S}"
        latency = f" {d.latency_ms} ms" if d.latency_ms is not None else ""
        click.echo(
            f"#{d.id} {d.event_type} {d.event_id} {d.status} attempts={d.attempts} code={d.response_code}"
            f"{latency}{retry} {d.last_error or ''}".rstrip()
        )


@webhook.command("test")
@click.argument("subscription_id", type=int)
@with_appcontext
def test(subscription_id: int) -> None:
    """Send a webhook.test event now and say what the receiver answered."""
    runtime = current_runtime()
    delivery_id = send_test_now(runtime.database, webhook_settings(runtime.settings), subscription_id)
    with runtime.database.read() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
    if delivery.status == "delivered":
        click.echo(f"delivered: HTTP {delivery.response_code} in {delivery.latency_ms} ms")
    else:
        raise click.ClickException(f"not delivered: {delivery.last_error}")


def _set_status(subscription_id: int, status: str) -> None:
    runtime = current_runtime()
    with runtime.database.write() as session:
        subscription = service.update_subscription(
            session, webhook_settings(runtime.settings), subscription_id, {"status": status}, actor_id=None
        )
    click.echo(f"subscription {subscription.id} {subscription.status}")


@webhook.command("pause")
@click.argument("subscription_id", type=int)
@with_appcontext
def pause(subscription_id: int) -> None:
    """Stop sending; deliveries wait."""
    _set_status(subscription_id, service.PAUSED)


@webhook.command("resume")
@click.argument("subscription_id", type=int)
@with_appcontext
def resume(subscription_id: int) -> None:
    """Send again, starting with what waited."""
    _set_status(subscription_id, service.ACTIVE)


@webhook.command("remove")
@click.argument("subscription_id", type=int)
@with_appcontext
def remove(subscription_id: int) -> None:
    """Delete a subscription and its delivery log."""
    with current_runtime().database.write() as session:
        service.remove_subscription(session, subscription_id, actor_id=None)
    click.echo(f"subscription {subscription_id} removed")
