"""Step 7, notify: live updates to consoles and chat widgets, announced in the batch's transaction.

The steps collect what happened in the batch's state; the batch hands the
whole list to the live feed (``hub.live``) once, as its last step, inside the
transaction: a rollback takes the announcement back with it, and a commit
makes both durable at once, so a browser that reconnects with
``Last-Event-ID`` misses nothing. The same call keeps each conversation's
waiting clock (the inbox's order). Last, because on PostgreSQL announcing
takes the feed's ordering lock, held until the commit.
"""

from __future__ import annotations

from hub.ingest.pipeline import BatchState, Pending
from hub.models import Interaction
from hub.waiting import on_written


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


def announce(state: BatchState) -> None:
    """Announce the batch's new and changed interactions in its own transaction (one write for the batch)."""
    if state.notifications:
        on_written(state.session, state.notifications)
