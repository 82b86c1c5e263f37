"""Sending deliveries: claim what is due, post it signed, record what the receiver said.

A delivery is claimed in a short transaction that commits a lease (its next
attempt moved past the longest an attempt can take) before any request is
made; the request runs outside any transaction; its outcome is recorded in
another. A worker killed mid-request leaves the lease to run out, and the
delivery is sent again: receivers may see an event twice only if Corridor
died between their 2xx and its record, and dedupe by the body's ``id``. Once
a 2xx is recorded the delivery is never sent again.

Order per conversation: a delivery is due only while no earlier delivery of
the same subscription and ordering key is still pending (waiting, leased or
retrying), so a conversation's events arrive in the order they happened, a
later one waiting for an earlier one's retries. A delivery given up after
[webhooks] retry_hours stops holding the others back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import urllib3
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased

from hub.db import Database
from hub.integrations import TEST_EVENT, WebhookSettings
from hub.integrations.signing import HEADER, signature
from hub.integrations.subscriptions import ACTIVE, pause, queue_test
from hub.integrations.targets import Resolver, TargetRefused, check_url
from hub.models import WebhookDelivery, WebhookSubscription, utcnow

log = logging.getLogger(__name__)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
#: Bytes of a receiver's answer kept in the delivery log.
RESPONSE_KEPT = 500
USER_AGENT = "Corridor-Webhooks/1"


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to this worker, with what sending it needs."""

    id: int
    subscription_id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    body: str
    attempt: int


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status code (or none), how long it took, and what went wrong."""

    delivery_id: int
    attempt: int
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def acknowledged(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(settings: WebhookSettings, attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt: doubling from retry_base_seconds."""
    seconds = settings.retry_base_seconds * 2 ** min(max(attempts - 1, 0), 30)
    return timedelta(seconds=min(seconds, settings.retry_max_seconds))


def lease(settings: WebhookSettings) -> timedelta:
    """Longer than any attempt can take (connect, then read, each up to timeout_seconds)."""
    return timedelta(seconds=2 * settings.timeout_seconds + 5)


def claim_due(session: Session, settings: WebhookSettings, *, limit: int, now: datetime | None = None) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries of active subscriptions (at most one per conversation)."""
    now = now or utcnow()
    delivery, earlier = WebhookDelivery, aliased(WebhookDelivery)
    # Given up: a day of failures. They no longer hold their conversation's later deliveries back.
    session.execute(
        update(delivery)
        .where(delivery.status == PENDING, delivery.expires_at < now, delivery.next_attempt_at.is_not(None))
        .where(delivery.subscription_id.in_(select(WebhookSubscription.id).where(WebhookSubscription.status == ACTIVE)))
        .values(status=FAILED, next_attempt_at=None)
    )
    blocked = exists().where(
        earlier.subscription_id == delivery.subscription_id,
        earlier.ordering_key == delivery.ordering_key,
        earlier.status == PENDING,
        earlier.id < delivery.id,
    )
    query = (
        select(delivery, WebhookSubscription.url, WebhookSubscription.secret)
        .join(WebhookSubscription, WebhookSubscription.id == delivery.subscription_id)
        .where(
            delivery.status == PENDING,
            delivery.next_attempt_at <= now,
            WebhookSubscription.status == ACTIVE,
            ~blocked,
        )
        .order_by(delivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Two workers never lease the same row; SQLite has one writer anyway.
        query = query.with_for_update(skip_locked=True, of=delivery)
    claimed: list[Claimed] = []
    until = now + lease(settings)
    for row, url, secret in session.execute(query):
        row.attempts += 1
        row.last_attempt_at = now
        row.next_attempt_at = until
        claimed.append(
            Claimed(row.id, row.subscription_id, url, secret, row.event_id, row.event_type, row.body, row.attempts)
        )
    session.flush()
    return claimed


def claim_test(session: Session, delivery: WebhookDelivery) -> Claimed:
    """A "send test" delivery, leased to the caller."""
    subscription = session.get(WebhookSubscription, delivery.subscription_id)
    assert subscription is not None
    delivery.attempts += 1
    delivery.last_attempt_at = utcnow()
    session.flush()
    return Claimed(
        delivery.id, subscription.id, subscription.url, subscription.secret,
        delivery.event_id, delivery.event_type, delivery.body, delivery.attempts,
    )  # fmt: skip


def send(claimed: Claimed, settings: WebhookSettings, resolver: Resolver | None = None) -> Outcome:
    """Post one delivery, signed, to the address its URL was checked to resolve to. Never raises."""
    started = time.monotonic()

    def outcome(status: int | None, error: str | None) -> Outcome:
        return Outcome(claimed.id, claimed.attempt, status, int((time.monotonic() - started) * 1000), error)

    try:
        target = check_url(claimed.url, settings.allowed_hosts, resolver)
    except TargetRefused as exc:
        return outcome(None, f"refused: {exc}")
    body = claimed.body.encode()
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        HEADER: signature(claimed.secret, int(time.time()), body),
        "X-Corridor-Event": claimed.event_type,
        "X-Corridor-Delivery": str(claimed.id),
        "X-Corridor-Event-Id": claimed.event_id,
    }
    timeout = urllib3.Timeout(connect=settings.timeout_seconds, read=settings.timeout_seconds)
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address, target.port, timeout=timeout, maxsize=1, retries=False,
            server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED",
        )  # fmt: skip
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, maxsize=1, retries=False)
    try:
        response = pool.urlopen(
            "POST", target.path, body=body, headers=headers, redirect=False, retries=False,
            assert_same_host=False, preload_content=False,
        )  # fmt: skip
        try:
            answer = response.read(RESPONSE_KEPT, decode_content=False)
        finally:
            response.release_conn()
        status = int(response.status)
        if 200 <= status < 300:
            return outcome(status, None)
        text = answer.decode("utf-8", "replace").strip()
        return outcome(status, f"HTTP {status}" + (f": {text}" if text else ""))
    except urllib3.exceptions.HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        # urllib3 makes a refused connection a kind of connect timeout: it is not one to the admin reading the log.
        if isinstance(exc, urllib3.exceptions.NewConnectionError) or isinstance(
            reason, urllib3.exceptions.NewConnectionError
        ):
            kind = "could not connect"
        elif isinstance(exc, urllib3.exceptions.TimeoutError):
            kind = "timed out"
        else:
            kind = "failed"
        return outcome(None, f"{kind}: {reason}")
    finally:
        pool.close()


def record(session: Session, settings: WebhookSettings, result: Outcome, *, now: datetime | None = None) -> None:
    """Write an attempt's outcome to the delivery log; retry, give up or pause as it says."""
    now = now or utcnow()
    delivery = session.get(WebhookDelivery, result.delivery_id, populate_existing=True)
    if delivery is None or delivery.status != PENDING:
        return  # removed with its subscription meanwhile, or recorded by a worker that retook the lease
    subscription = session.get(WebhookSubscription, delivery.subscription_id, populate_existing=True)
    assert subscription is not None
    delivery.response_code = result.status_code
    delivery.latency_ms = result.latency_ms
    delivery.last_error = result.error[:2000] if result.error else None
    test = delivery.event_type == TEST_EVENT
    if result.acknowledged:
        delivery.status = DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        if not test:
            subscription.consecutive_failures = 0
        session.flush()
        return
    retry_at = now + backoff(settings, delivery.attempts)
    if test or retry_at > delivery.expires_at:
        delivery.status = FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = retry_at
    if test:
        session.flush()
        return
    subscription.consecutive_failures += 1
    if subscription.status == ACTIVE and subscription.consecutive_failures >= settings.pause_after_failures:
        log.warning("webhook subscription %d paused after %d failed attempts in a row (last: %s)",
                    subscription.id, subscription.consecutive_failures, result.error)  # fmt: skip
        pause(
            session,
            subscription,
            f"{subscription.consecutive_failures} failed attempts in a row; last: {result.error}",
            actor_id=None,
        )
    session.flush()


def send_test_now(database: Database, settings: WebhookSettings, subscription_id: int) -> int:
    """Queue a ``webhook.test`` for the subscription, send it at once (even while paused), log it; its id.

    Three short transactions: the request is not made while holding the writer.
    """
    with database.write() as session:
        claimed = claim_test(session, queue_test(session, subscription_id))
    outcome = send(claimed, settings)
    with database.write() as session:
        record(session, settings, outcome)
    return claimed.id
