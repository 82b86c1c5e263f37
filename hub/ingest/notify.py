"""Step 7, notify: live updates to agents' consoles, sent only after the transaction commits.

The steps collect what happened in the batch's state; the batch hands the
whole list to the notifier once, after commit, so a subscriber never hears
of data that was rolled back.
"""

from __future__ import annotations

from hub.db import after_commit
from hub.ingest.pipeline import BatchState, Pending
from hub.models import Interaction


def interaction_created(state: BatchState, p: Pending, interaction_id: int) -> None:
    """Announce a new interaction on the timeline."""
    state.notifications.append(
        {
            "type": "interaction.created",
            "interaction_id": interaction_id,
            "customer_id": p.customer_id,
            "conversation_id": p.conversation.id if p.conversation else None,
            "channel": p.event.channel.value,
            "kind": p.event.kind.value,
        }
    )


def interaction_updated(state: BatchState, interaction: Interaction) -> None:
    """Announce a change to an interaction (its status, a transcript)."""
    state.notifications.append(
        {
            "type": "interaction.updated",
            "interaction_id": interaction.id,
            "customer_id": interaction.customer_id,
            "conversation_id": interaction.conversation_id,
            "status": interaction.status,
        }
    )


def publish_after_commit(state: BatchState) -> None:
    """Publish the batch's notifications once its transaction has committed."""
    if not state.notifications:
        return
    notifier, notifications = state.config.notifier, state.notifications

    def publish() -> None:
        for notification in notifications:
            notifier.publish(notification)

    after_commit(state.session, publish)
