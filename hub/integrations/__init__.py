"""Outgoing webhooks: integrators subscribe a URL to what happens in Corridor.

How an event reaches a subscriber, and why nothing is lost on the way:

1. **The change feed is the outbox.** Every change announces itself in the
   ``live_event`` table in the transaction that makes it (:mod:`hub.live`), so
   a committed change always has its feed row and a rolled-back one never
   does. The feed is ordered: on PostgreSQL publishing transactions commit in
   id order (an advisory lock), on SQLite there is one writer. A reader that
   remembers the last id it handled therefore never skips a row.
2. **The dispatcher** (:mod:`hub.integrations.dispatch`, in ``corridor
   worker``) reads the feed after its cursor and writes one
   ``webhook_delivery`` row per matching subscription, advancing the cursor
   in the same transaction: a crash either keeps both or neither.
3. **The sender** (:mod:`hub.integrations.delivery`) claims due deliveries
   (a lease, committed before the request), posts them signed, and records
   the outcome. A 2xx marks the delivery delivered: it is never sent again.
   Anything else is retried with exponential backoff for [webhooks]
   retry_hours. Deliveries of one conversation go out one at a time, in order.

The feed must keep events longer than the dispatcher can lag behind it. The
worker that prunes the feed ([live] retention_hours, 48 by default) is the
process that dispatches, so a stopped worker prunes nothing; a dispatcher
that fell behind the oldest kept event says so in the log and in
``/api/health`` (``webhooks.feed_gap``).
"""

from __future__ import annotations

import dataclasses

from hub.config import Settings, SettingsError

#: What a subscription may ask for, and what each means.
EVENT_TYPES: dict[str, str] = {
    "interaction.created": "A message, call, note or chat message was added to a timeline",
    "interaction.delivery_status_changed": "A delivery or call status report updated an interaction",
    "conversation.opened": "A conversation started (with its first interaction)",
    "conversation.assigned": "A conversation was assigned to an agent, or unassigned",
    "conversation.status_changed": "A conversation was opened, set pending or closed",
    "customer.merged": "One customer was merged into another",
    "customer.unmerged": "A merge was undone",
    "customer.erased": "A customer's personal data was erased",
}
#: The body's ``version``: bumped when a field changes meaning or goes away (new fields do not bump it).
PAYLOAD_VERSION = 1
#: The one event a subscription gets without asking: its "send test".
TEST_EVENT = "webhook.test"


@dataclasses.dataclass(frozen=True)
class WebhookSettings:
    """[webhooks] in config/defaults.toml."""

    allowed_hosts: list[str]
    timeout_seconds: float
    retry_base_seconds: float
    retry_max_seconds: float
    retry_hours: int
    pause_after_failures: int
    poll_interval: float
    concurrency: int

    def validate(self) -> None:
        if not 0.1 <= self.timeout_seconds <= 60:
            raise SettingsError(f"HUB_WEBHOOKS_TIMEOUT_SECONDS: between 0.1 and 60, got {self.timeout_seconds}")
        if not 0 < self.retry_base_seconds <= self.retry_max_seconds:
            raise SettingsError("HUB_WEBHOOKS_RETRY_BASE_SECONDS: above 0 and at most retry_max_seconds")
        if self.retry_hours < 1:
            raise SettingsError(f"HUB_WEBHOOKS_RETRY_HOURS: at least 1, got {self.retry_hours}")
        if self.pause_after_failures < 1:
            raise SettingsError(f"HUB_WEBHOOKS_PAUSE_AFTER_FAILURES: at least 1, got {self.pause_after_failures}")
        if not 0.01 <= self.poll_interval <= 60:
            raise SettingsError(f"HUB_WEBHOOKS_POLL_INTERVAL: between 0.01 and 60, got {self.poll_interval}")
        if not 1 <= self.concurrency <= 64:
            raise SettingsError(f"HUB_WEBHOOKS_CONCURRENCY: between 1 and 64, got {self.concurrency}")


def webhook_settings(settings: Settings) -> WebhookSettings:
    """The [webhooks] section, checked."""
    return settings.section("webhooks", WebhookSettings)
